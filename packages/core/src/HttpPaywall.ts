/**
 * The x402 HTTP transport (docs/protocol.md §8) for agents served over HTTP with `@effect/platform`: a
 * middleware for any `HttpApp` or router route, and the pure mapping between the payment pipeline
 * and HTTP (token from headers, failure to status, headers and body, receipt header) that other
 * HTTP adapters reuse. `HttpApi` endpoints use `HttpApiPaywall`.
 *
 * @since 0.1.0
 */
import * as Headers from "@effect/platform/Headers"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { Facilitator } from "./Facilitator.js"
import * as HttpApiPaywall from "./HttpApiPaywall.js"
import * as Idempotency from "./Idempotency.js"
import * as answers from "./internal/answers.js"
import * as httpServer from "./internal/httpServer.js"
import type { InternalFailure } from "./internal/internalFailure.js"
import { answerInternal, INTERNAL_MESSAGE, sealFailures } from "./internal/internalFailure.js"
import { redactTokenHeaders } from "./internal/serverSpan.js"
import * as PaymentContext from "./PaymentContext.js"
import { isPaymentFailure } from "./PaymentError.js"
import * as Paywall from "./Paywall.js"
import * as SettlementLedger from "./SettlementLedger.js"
import * as X402 from "./X402.js"

const { callOf, chargeSource, failureResponse, forRequest, guardStream, withoutChargeHeader, withReceipt } = httpServer

// ---------------------------------------------------------------------------
// The x402 HTTP mapping, pure (implemented in internal/answers.ts, shared with the MCP transports)
// ---------------------------------------------------------------------------

/**
 * Request headers as they come: a platform `Headers`, a Node `IncomingHttpHeaders`, an API
 * Gateway event's `headers`. Names are matched case-insensitively.
 *
 * @since 0.1.0
 * @category models
 */
export type HeadersInput = answers.HeadersInput

/**
 * The header names tried for the token when none are configured.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_TOKEN_HEADERS: typeof answers.DEFAULT_TOKEN_HEADERS = answers.DEFAULT_TOKEN_HEADERS

/**
 * Validates the `tokenHeaders` option: at least one name, none empty, and never `Authorization`.
 * Behind a gateway or an authorizer, `Authorization` carries the caller's identity token (itself a
 * `Bearer` value, so no prefix check can tell it from an x402 token), which would go to the
 * facilitator as the payment. Throws a `RangeError` at construction, not at the first call.
 *
 * @since 0.2.0
 * @category mapping
 */
export const tokenHeaderNames: typeof answers.tokenHeaderNames = answers.tokenHeaderNames

/**
 * The caller's token: the configured header names are tried in order, each matched
 * case-insensitively, and the first non-blank value wins. Only own properties are read, and never
 * `Authorization` (see `tokenHeaderNames`), whatever the names say.
 *
 * @since 0.1.0
 * @category mapping
 */
export const tokenFromHeaders: typeof answers.tokenFromHeaders = answers.tokenFromHeaders

/**
 * Whether a response of this status is paid for: x402 settles only successful answers, so a
 * status >= 400 passes through unsettled.
 *
 * @since 0.1.0
 * @category mapping
 */
export const isChargeable: typeof answers.isChargeable = answers.isChargeable

/**
 * A transport-neutral HTTP answer: status, headers and JSON body. `requestId` (since 0.2.0) is the
 * correlation id of a failure inside the server, whose detail is in the log only.
 *
 * @since 0.1.0
 * @category models
 */
export type Answer = answers.Answer

/**
 * The `success: false` settlement that goes in the `payment-response` of a failed settlement: the
 * facilitator's own answer when it gave one, else one that names the failure.
 *
 * @since 0.1.0
 * @category mapping
 */
export const failedSettlement: typeof answers.failedSettlement = answers.failedSettlement

/**
 * The `payment-response` header of a settlement (base64 of the settle response).
 *
 * @since 0.1.0
 * @category mapping
 */
export const receiptHeaders: typeof answers.receiptHeaders = answers.receiptHeaders

/**
 * The answer to a payment failure:
 * - no token, or a token the facilitator refused: **402** with `payment-required`;
 * - facilitator unreachable, timed out or answering garbage: **502**;
 * - the credits policy gave no valid amount (a bug of the server, not of the payment): **500**;
 * - settlement failed after the work ran (the `withhold` policy): the output is withheld and the
 *   answer carries a `payment-response` saying `success: false`; **402** with `payment-required`
 *   when the facilitator refused the settlement, **502** when its outcome is unknown or it could not
 *   be reached, **500** when the amount to settle was invalid.
 *
 * The body is always `{"error": ..., "message": ...}`; no secret ever appears in it, and a 500 says
 * nothing of its cause (the adapters log it, redacted, and add a correlation id).
 *
 * @since 0.1.0
 * @category mapping
 */
export const failureAnswer: typeof answers.failureAnswer = answers.failureAnswer

// ---------------------------------------------------------------------------
// @effect/platform
// ---------------------------------------------------------------------------

/**
 * How a route is priced and advertised: the paywall options, with the request as what a credits
 * function receives.
 *
 * Unless the options name them, the advertised `resource.url` is the request's URL (without its
 * query) and `extra.httpVerb` its method, so that single-use tokens bound to both keep working.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<R = never> extends
  Paywall.Options<
    HttpServerRequest.HttpServerRequest,
    R,
    HttpServerResponse.HttpServerResponse
  >
{
  /**
   * Headers that may carry the token, tried in order. Default `payment-signature`. `Authorization`
   * is refused with a `RangeError` (see `tokenHeaderNames`).
   */
  readonly tokenHeaders?: ReadonlyArray<string> | undefined
}

/**
 * The platform response of an answer.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toResponse: (answer: Answer) => HttpServerResponse.HttpServerResponse = httpServer.toResponse

const internalResponse = (requestId: string) =>
  HttpServerResponse.unsafeJson({ error: "Internal Server Error", message: INTERNAL_MESSAGE, requestId }, {
    status: 500
  })

// A failure of the app that it chose to render (an `HttpServerRespondable` error: 404, 400, ...)
// keeps its answer; anything else is logged, redacted, and becomes an `InternalFailure`: the
// original never reaches the answer, the spans or the platform's logs.
const sealApp = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, InternalFailure, R> =>
  sealFailures(
    app,
    "the paid handler failed; nothing was charged",
    (cause) =>
      Effect.map(
        HttpServerError.causeResponse(cause),
        ([rendered]) => rendered.status === 500 ? Option.none() : Option.some(rendered)
      )
  )

// How a paid response is kept in the ledger: status, headers and a byte body (base64). A streamed
// or otherwise unbuffered body is not kept (a retry then gets 409 "already paid").
const StoredResponse = Schema.Struct({
  status: Schema.Int,
  headers: Schema.Record({ key: Schema.String, value: Schema.String }),
  contentType: Schema.optional(Schema.String),
  body: Schema.String
})
const decodeStored = Schema.decodeUnknownOption(Schema.parseJson(StoredResponse))

const responseCodec: Idempotency.Codec<HttpServerResponse.HttpServerResponse> = {
  encode: (response) => {
    const body = response.body
    if (body._tag !== "Uint8Array" && body._tag !== "Empty") return undefined
    return JSON.stringify({
      status: response.status,
      headers: { ...response.headers },
      ...(body._tag === "Uint8Array" ? { contentType: body.contentType } : {}),
      body: body._tag === "Uint8Array" ? Encoding.encodeBase64(body.body) : ""
    })
  },
  decode: (stored) =>
    Option.flatMap(decodeStored(stored), (kept) =>
      Option.map(
        Either.getRight(Encoding.decodeBase64(kept.body)),
        (bytes) =>
          HttpServerResponse.uint8Array(bytes, {
            status: kept.status,
            headers: Headers.fromInput(kept.headers),
            ...(kept.contentType !== undefined ? { contentType: kept.contentType } : {})
          })
      ))
}

// A refused retry: 409 (already paid, in progress, key of an uncharged attempt), 400 (invalid key)
// or 503 (ledger down); "already paid" carries the earlier receipt.
const idempotencyResponse = (error: Idempotency.IdempotencyError): HttpServerResponse.HttpServerResponse => {
  const settlement = error.reason === "AlreadyPaid"
    ? Schema.decodeUnknownOption(X402.SettleResponse)(error.settlement)
    : Option.none()
  return HttpServerResponse.unsafeJson({
    error: error.status === 409 ? "Conflict" : error.status === 400 ? "Bad Request" : "Service Unavailable",
    reason: error.reason,
    message: error.message
  }, {
    status: error.status,
    ...(Option.isSome(settlement) ? { headers: Headers.fromInput(receiptHeaders(settlement.value)) } : {})
  })
}

/**
 * Protects an `HttpApp` (or a router route's handler): verify → run the app → settle, the x402 HTTP
 * transport. The app may read the verified payment, and charge another amount, through
 * `PaymentContext`; it may also answer an `X-Credits-To-Charge` header (removed from the answer).
 *
 * Answers with status >= 400, failures and defects of the app are not settled; a successful
 * answer gets the `payment-response` header. See `failureAnswer` for the answers to payment
 * failures; `onPaymentError` may replace them. A failure of the app that is an
 * `HttpServerRespondable` gets its own answer (404, 400, ...); any other failure or defect answers a
 * generic 500 `{"error","message","requestId"}`: the detail goes to the log only, redacted.
 *
 * A streamed body is never buffered: settlement happens once the app has produced its response,
 * before the first byte of the body, so the full price is charged when the headers go out. A
 * stream that fails after that is never ended as if complete: an event stream
 * (`text/event-stream`) gets an `event: error` frame, and the connection is aborted (on a Node
 * server), so the client's read fails; the charge stands.
 *
 * Throws a `RangeError` at construction on options that can never work (no plan, bad price) or
 * that would leak (`Authorization` in `tokenHeaders`).
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { HttpPaywall } from "@effect-x402/core"
 *
 * const router = HttpRouter.empty.pipe(
 *   HttpRouter.post("/summarize", HttpServerResponse.text("done").pipe(HttpPaywall.middleware({ planId: "plan-1", credits: 2 })))
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware = <R = never>(options: Options<R>) => {
  const paywall = Paywall.make(options)
  const names = tokenHeaderNames(options.tokenHeaders)
  // Idempotent retries use the context's SettlementLedger, else one in memory per paywall.
  const ledger = SettlementLedger.contextOrMemory()
  return <E, AR>(
    app: HttpApp.Default<E, AR>
  ): HttpApp.Default<never, Exclude<AR, PaymentContext.PaymentContext> | Facilitator | R> =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const key = Idempotency.validateKey(request.headers[Idempotency.IDEMPOTENCY_KEY_HEADER])
      if (Either.isLeft(key)) return Effect.succeed(idempotencyResponse(key.left))
      const configured = forRequest(paywall, request)
      let requested = (): Option.Option<number> => Option.none()
      return Effect.zipRight(
        redactTokenHeaders(request.headers, names),
        Idempotency.protect(configured, callOf(request, names), key.right, (verified) => {
          const context = PaymentContext.make(verified)
          requested = context.requestedCharge
          return sealApp(Effect.provideService(app, PaymentContext.PaymentContext, context.service))
        }, {
          isError: (response) => !isChargeable(response.status),
          chargeOf: (response) => chargeSource(response, requested()),
          codec: responseCodec,
          ledger
        }).pipe(
          Effect.map((outcome) => {
            switch (outcome._tag) {
              case "Replayed":
                // An earlier attempt's answer under this idempotency key: nothing run or charged now.
                return withReceipt(outcome.value, outcome.settlement)
              case "Settled":
                return guardStream(withReceipt(outcome.value, outcome.settlement), request)
              case "Released":
                return guardStream(withReceipt(outcome.value, failedSettlement(outcome.error)), request)
              case "NotCharged":
                return withoutChargeHeader(outcome.value)
            }
          }),
          Effect.catchIf(isPaymentFailure, (error) => failureResponse(configured, error)),
          Effect.catchIf(
            (error): error is Idempotency.IdempotencyError => error instanceof Idempotency.IdempotencyError,
            (error) =>
              Effect.as(
                error.reason === "Unavailable" ? Effect.logError(`x402: ${error.message}`) : Effect.void,
                idempotencyResponse(error)
              )
          ),
          // What is left: the app's sealed failure, or a defect of the pipeline itself.
          Effect.catchAllCause((cause) => answerInternal(cause, internalResponse, "the paywall failed")),
          Effect.withSpan("HttpPaywall.middleware", { attributes: { "http.method": request.method } })
        )
      )
    })
}

/**
 * Adds the token headers to the names the platform redacts (`Headers.currentRedactedNames`) for
 * everything a layer runs: wrap the layer that serves HTTP with it, and no server span, log or
 * client span records a token, on any route. The paywalls already redact the token on the spans of
 * the requests they serve; this covers the requests they do not see.
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { HttpPaywall } from "@effect-x402/core"
 *
 * const ServerLive = HttpRouter.Default.serve().pipe(HttpPaywall.withTokenRedaction())
 * ```
 *
 * @since 0.1.0
 * @category redaction
 */
export const withTokenRedaction =
  (tokenHeaders: ReadonlyArray<string> = DEFAULT_TOKEN_HEADERS) =>
  <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, E, R> =>
    Layer.locallyWith(layer, Headers.currentRedactedNames, (names) => [
      ...names,
      ...tokenHeaders.filter((name) => !names.includes(name))
    ])

// ---------------------------------------------------------------------------
// HttpApi: moved to HttpApiPaywall, kept here for the code that imports them from this module
// ---------------------------------------------------------------------------

/**
 * The failure an `HttpApi` paywall middleware declares (`HttpApiPaywall.PaymentFailed`).
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const PaymentFailed = HttpApiPaywall.PaymentFailed

/**
 * The failure an `HttpApi` paywall middleware declares (`HttpApiPaywall.PaymentFailed`).
 *
 * @since 0.1.0
 * @category HttpApi
 */
export type PaymentFailed = HttpApiPaywall.PaymentFailed

/**
 * The ready-made `HttpApiMiddleware` of a paid endpoint (`HttpApiPaywall.Paid`).
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const Paid = HttpApiPaywall.Paid

/**
 * The ready-made `HttpApiMiddleware` of a paid endpoint (`HttpApiPaywall.Paid`).
 *
 * @since 0.1.0
 * @category HttpApi
 */
export type Paid = HttpApiPaywall.Paid

/**
 * The options of a paid `HttpApiMiddleware` tag (`HttpApiPaywall.paidTagOptions`).
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const paidTagOptions = HttpApiPaywall.paidTagOptions

/**
 * The implementation of a paid `HttpApiMiddleware` (`HttpApiPaywall.httpApiMiddleware`).
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const httpApiMiddleware = HttpApiPaywall.httpApiMiddleware

/**
 * Provides `Paid` with the given options (`HttpApiPaywall.layer`).
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const layerHttpApi = HttpApiPaywall.layer
