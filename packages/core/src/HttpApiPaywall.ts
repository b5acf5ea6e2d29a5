/**
 * x402 payments for `HttpApi` endpoints (`@effect/platform`): the ready-made `Paid` middleware tag
 * and its layer, the options of a tag of your own, and the middleware implementation. It verifies
 * before the handler runs and provides `PaymentContext`; once the response is ready it settles and
 * adds the receipt, with the same answers as `HttpPaywall.middleware` (docs/protocol.md §8).
 *
 * @since 0.2.0
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Credits from "./Credits.js"
import type { Facilitator } from "./Facilitator.js"
import type * as HttpPaywall from "./HttpPaywall.js"
import { type Answer, failedSettlement, failureAnswer, isChargeable, tokenHeaderNames } from "./internal/answers.js"
import { callOf, chargeSource, failureResponse, forRequest, guardStream, withReceipt } from "./internal/httpServer.js"
import { redact } from "./internal/internalFailure.js"
import { redactTokenHeaders } from "./internal/serverSpan.js"
import * as PaymentContext from "./PaymentContext.js"
import { SettleFailed } from "./PaymentError.js"
import * as Paywall from "./Paywall.js"
import type * as X402 from "./X402.js"

/**
 * The failure an `HttpApi` paywall middleware declares: a payment that did not go through. The
 * answer actually sent is the canonical one of `failureAnswer` (status, `payment-required` and
 * `payment-response` headers, `{"error","message"}` body); this schema documents it in the API.
 *
 * @since 0.1.0
 * @category middleware
 */
export class PaymentFailed extends Schema.TaggedError<PaymentFailed>("@effect-x402/core/HttpPaywall/PaymentFailed")(
  "PaymentFailed",
  { error: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 402, description: "Payment Required" })
) {}

/**
 * The ready-made `HttpApiMiddleware` of a paid endpoint: add it to endpoints or groups with
 * `.middleware(HttpApiPaywall.Paid)`, provide it with `HttpApiPaywall.layer(options)`, and read
 * the payment in the handler with `PaymentContext`. For several prices in one API, declare one
 * tag per price with the same options object and provide each with `httpApiMiddleware`.
 *
 * @since 0.1.0
 * @category middleware
 */
export class Paid extends HttpApiMiddleware.Tag<Paid>()("@effect-x402/core/HttpPaywall/Paid", {
  provides: PaymentContext.PaymentContext,
  failure: PaymentFailed
}) {}

/**
 * The options of a paid `HttpApiMiddleware` tag: it provides `PaymentContext` and fails with
 * `PaymentFailed`.
 *
 * @example
 * ```ts
 * import { HttpApiMiddleware } from "@effect/platform"
 * import { HttpApiPaywall } from "@effect-x402/core"
 *
 * class Premium extends HttpApiMiddleware.Tag<Premium>()("Premium", HttpApiPaywall.paidTagOptions) {}
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const paidTagOptions = {
  provides: PaymentContext.PaymentContext,
  failure: PaymentFailed
} as const

/**
 * The implementation of a paid `HttpApiMiddleware`: it verifies before the handler runs and
 * provides `PaymentContext`; once the response is ready it settles (only a status < 400) and adds
 * the receipt, or withholds the output when settlement fails (see `failureAnswer`). A refused
 * payment answers the canonical 402 / 502 / 500 of `failureAnswer`.
 *
 * @since 0.1.0
 * @category middleware
 */
export const httpApiMiddleware = <R = never>(
  options: HttpPaywall.Options<R>
): Effect.Effect<
  Effect.Effect<PaymentContext.PaymentContext.Service, PaymentFailed, HttpServerRequest.HttpServerRequest>,
  never,
  Facilitator | R
> => {
  const paywall = Paywall.make(options)
  const names = tokenHeaderNames(options.tokenHeaders)
  return Effect.map(
    Effect.context<Facilitator | R>(),
    (context) =>
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
        const configured = forRequest(paywall, request)
        return Effect.zipRight(
          redactTokenHeaders(request.headers, names),
          Paywall.verify(configured, callOf(request, names))
        ).pipe(
          Effect.matchEffect({
            onFailure: (error) =>
              Effect.zipRight(
                // The declared failure only documents the API: the answer sent is the canonical one.
                Effect.flatMap(failureResponse(configured, error), (response) =>
                  HttpApp.appendPreResponseHandler((_request, encoded) =>
                    Effect.succeed(replacing(encoded, response))
                  )),
                Effect.fail(new PaymentFailed(pick(failureAnswer(error).body)))
              ),
            onSuccess: (verified) => {
              const payment = PaymentContext.make(verified)
              let settled = false
              return Effect.as(
                HttpApp.appendPreResponseHandler((_request, response) => {
                  if (settled || !isChargeable(response.status)) return Effect.succeed(response)
                  settled = true
                  return settleAnswer(configured, verified, response, payment.requestedCharge()).pipe(
                    Effect.map((answer) => guardStream(answer, request)),
                    Effect.provide(context)
                  )
                }),
                payment.service
              )
            }
          }),
          Effect.provide(context),
          Effect.withSpan("HttpPaywall.httpApiMiddleware", { attributes: { "http.method": request.method } })
        )
      })
  )
}

const pick = (body: Answer["body"]) => ({ error: body.error, message: body.message })

// Headers other middleware put on the encoded error (CORS, tracing) survive the replacement.
const replacing = (
  encoded: HttpServerResponse.HttpServerResponse,
  response: HttpServerResponse.HttpServerResponse
): HttpServerResponse.HttpServerResponse => {
  const kept: Record<string, string> = {}
  for (const [name, value] of Object.entries(encoded.headers)) {
    if (name.startsWith("content-") || Headers.has(response.headers, name)) continue
    kept[name] = value
  }
  return HttpServerResponse.setHeaders(response, kept)
}

const settleAnswer = <R>(
  paywall: Paywall.Paywall<HttpServerRequest.HttpServerRequest, R, HttpServerResponse.HttpServerResponse>,
  verified: Paywall.Verified,
  response: HttpServerResponse.HttpServerResponse,
  requested: Option.Option<number>
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, Facilitator> =>
  Either.match(Credits.settleAmount(chargeSource(response, requested), verified.credits), {
    onLeft: (cause): Effect.Effect<X402.SettleResponse, SettleFailed, Facilitator> =>
      Effect.fail(
        new SettleFailed({ reason: "InvalidAmount", paymentRequired: verified.paymentRequired, credits: 0, cause })
      ),
    onRight: (credits) => Paywall.settle(paywall, { ...verified, credits })
  }).pipe(
    Effect.matchEffect({
      onSuccess: (settlement) => Effect.succeed(withReceipt(response, settlement)),
      onFailure: (error) =>
        Paywall.releases(paywall, error)
          ? Effect.as(
            Effect.logWarning(`x402 settlement failed, output released by policy: ${redact(error.message)}`),
            withReceipt(response, failedSettlement(error))
          )
          : failureResponse(paywall, error)
    })
  )

/**
 * Provides `HttpApiPaywall.Paid` with the given options.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = <R = never>(options: HttpPaywall.Options<R>): Layer.Layer<Paid, never, Facilitator | R> =>
  Layer.effect(Paid, httpApiMiddleware(options))
