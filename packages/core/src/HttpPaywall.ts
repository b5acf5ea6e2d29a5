/**
 * The x402 HTTP transport (wire.md §8) for agents served over HTTP with `@effect/platform`: a
 * middleware for any `HttpApp` or router route, an `HttpApiMiddleware` for `HttpApi` endpoints, and
 * the pure mapping between the payment pipeline and HTTP (token from headers, failure to status,
 * headers and body, receipt header) that other HTTP adapters reuse.
 *
 * @since 0.1.0
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Credits from "./Credits.js"
import type { Facilitator } from "./Facilitator.js"
import * as Idempotency from "./Idempotency.js"
import {
  answerInternal,
  correlationId,
  INTERNAL_MESSAGE,
  InternalFailure,
  logInternal,
  redact,
  sealFailures
} from "./internal/internalFailure.js"
import { redactTokenHeaders } from "./internal/serverSpan.js"
import * as PaymentContext from "./PaymentContext.js"
import { isPaymentFailure, type PaymentFailure, SettleFailed } from "./PaymentError.js"
import * as Paywall from "./Paywall.js"
import * as SettlementLedger from "./SettlementLedger.js"
import * as X402 from "./X402.js"

// ---------------------------------------------------------------------------
// The x402 HTTP mapping, pure
// ---------------------------------------------------------------------------

/**
 * Request headers as they come: a platform `Headers`, a Node `IncomingHttpHeaders`, an API
 * Gateway event's `headers`. Names are matched case-insensitively.
 *
 * @since 0.1.0
 * @category models
 */
export type HeadersInput =
  | { readonly [name: string]: string | ReadonlyArray<string> | undefined | null }
  | null
  | undefined

/**
 * The header names tried for the token when none are configured.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_TOKEN_HEADERS: ReadonlyArray<string> = [X402.PAYMENT_SIGNATURE_HEADER]

/**
 * Validates the `tokenHeaders` option: at least one name, none empty, and never `Authorization`.
 * Behind a gateway or an authorizer, `Authorization` carries the caller's identity token (itself a
 * `Bearer` value, so no prefix check can tell it from an x402 token), which would go to the
 * facilitator as the payment. Throws a `RangeError` at construction, not at the first call.
 *
 * @since 0.2.0
 * @category mapping
 */
export const tokenHeaderNames = (option: ReadonlyArray<string> | undefined): ReadonlyArray<string> => {
  if (option === undefined) return DEFAULT_TOKEN_HEADERS
  const names = Array.isArray(option) ? option.map((name) => typeof name === "string" ? name.trim() : "") : []
  if (names.length === 0 || names.some((name) => name.length === 0)) {
    throw new RangeError("tokenHeaders must name at least one header, and no empty one")
  }
  if (names.some((name) => name.toLowerCase() === "authorization")) {
    throw new RangeError(
      "tokenHeaders must not include Authorization: behind a gateway it carries the caller's identity token, " +
        "which would be sent to the facilitator; use payment-signature or a dedicated header such as X-Payment"
    )
  }
  return names
}

/**
 * The caller's token: the configured header names are tried in order, each matched
 * case-insensitively, and the first non-blank value wins. Only own properties are read, and never
 * `Authorization` (see `tokenHeaderNames`), whatever the names say.
 *
 * @since 0.1.0
 * @category mapping
 */
export const tokenFromHeaders = (
  headers: HeadersInput,
  names: ReadonlyArray<string> = DEFAULT_TOKEN_HEADERS
): Option.Option<Redacted.Redacted<string>> => {
  if (typeof headers !== "object" || headers === null) return Option.none()
  const keys = Object.keys(headers)
  for (const name of names) {
    const wanted = name.toLowerCase()
    if (wanted === "authorization") continue
    for (const key of keys) {
      if (key.toLowerCase() !== wanted) continue
      const raw = (headers as Record<string, unknown>)[key]
      const value = typeof raw === "string" ? raw : Array.isArray(raw) && typeof raw[0] === "string" ? raw[0] : null
      const token = Paywall.token(value)
      if (Option.isSome(token)) return token
    }
  }
  return Option.none()
}

/**
 * Whether a response of this status is paid for: x402 settles only successful answers, so a
 * status >= 400 passes through unsettled.
 *
 * @since 0.1.0
 * @category mapping
 */
export const isChargeable = (status: number): boolean => status < 400

/**
 * A transport-neutral HTTP answer: status, headers and JSON body. `requestId` (since 0.2.0) is the
 * correlation id of a failure inside the server, whose detail is in the log only.
 *
 * @since 0.1.0
 * @category models
 */
export interface Answer {
  readonly status: number
  readonly headers: { readonly [name: string]: string }
  readonly body: { readonly error: string; readonly message: string; readonly requestId?: string }
}

const answer = (
  status: number,
  error: string,
  message: string,
  headers: { readonly [name: string]: string }
): Answer => ({ status, headers: { "content-type": "application/json", ...headers }, body: { error, message } })

const requiredHeader = (paymentRequired: X402.PaymentRequired) => ({
  [X402.PAYMENT_REQUIRED_HEADER]: X402.PaymentRequiredHeader.encode(paymentRequired)
})

const settleErrorReason = (error: SettleFailed): string => {
  switch (error.reason) {
    case "Rejected":
      return error.cause?._tag === "FacilitatorError" && error.cause.code !== undefined
        ? error.cause.code
        : "unexpected_settle_error"
    case "InvalidAmount":
      return "invalid_payload"
    case "Indeterminate":
    case "Unavailable":
      return "unexpected_settle_error"
  }
}

/**
 * The `success: false` settlement that goes in the `payment-response` of a failed settlement: the
 * facilitator's own answer when it gave one, else one that names the failure.
 *
 * @since 0.1.0
 * @category mapping
 */
export const failedSettlement = (error: SettleFailed): X402.SettleResponse =>
  error.settlement ?? {
    success: false,
    errorReason: settleErrorReason(error),
    transaction: "",
    network: error.paymentRequired.accepts[0].network
  }

/**
 * The `payment-response` header of a settlement (base64 of the settle response).
 *
 * @since 0.1.0
 * @category mapping
 */
export const receiptHeaders = (settlement: X402.SettleResponse): { readonly [name: string]: string } => ({
  [X402.PAYMENT_RESPONSE_HEADER]: X402.SettleResponseHeader.encode(settlement)
})

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
export const failureAnswer = (error: PaymentFailure): Answer => {
  switch (error._tag) {
    case "PaymentRequired":
      return answer(402, "Payment Required", error.message, requiredHeader(error.paymentRequired))
    case "VerifyFailed":
      switch (error.reason) {
        case "Invalid":
          return answer(402, "Payment Required", error.message, requiredHeader(error.paymentRequired))
        case "Unavailable":
          return answer(502, "Bad Gateway", error.message, {})
        case "InvalidAmount":
          return answer(500, "Internal Server Error", INTERNAL_MESSAGE, {})
      }
    case "SettleFailed": {
      const receipt = receiptHeaders(failedSettlement(error))
      switch (error.reason) {
        case "Rejected":
          return answer(402, "Payment Required", error.message, {
            ...requiredHeader(error.paymentRequired),
            ...receipt
          })
        case "Indeterminate":
        case "Unavailable":
          return answer(502, "Bad Gateway", error.message, receipt)
        case "InvalidAmount":
          return answer(500, "Internal Server Error", INTERNAL_MESSAGE, receipt)
      }
    }
  }
}

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
export const toResponse = (answer: Answer): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(answer.body, { status: answer.status, headers: answer.headers })

const resourceUrlOf = (request: HttpServerRequest.HttpServerRequest): string | undefined =>
  Option.match(HttpServerRequest.toURL(request), {
    onNone: () => undefined,
    onSome: (url) => `${url.origin}${url.pathname}`
  })

const forRequest = <R>(
  paywall: Paywall.Paywall<HttpServerRequest.HttpServerRequest, R, HttpServerResponse.HttpServerResponse>,
  request: HttpServerRequest.HttpServerRequest
) =>
  paywall.options.httpVerb === undefined
    ? { ...paywall, options: { ...paywall.options, httpVerb: request.method } }
    : paywall

const callOf = (
  request: HttpServerRequest.HttpServerRequest,
  names: ReadonlyArray<string>
): Paywall.Call<HttpServerRequest.HttpServerRequest> => ({
  request,
  token: Option.getOrUndefined(tokenFromHeaders(request.headers, names)),
  resourceUrl: resourceUrlOf(request)
})

// The handler's explicit `chargeCredits` wins over its `X-Credits-To-Charge` header. The body is
// never read: that would mean buffering streams, and the header says the same thing for free.
const chargeSource = (
  response: HttpServerResponse.HttpServerResponse,
  requested: Option.Option<number>
): Credits.ChargeSource => Option.isSome(requested) ? { requested: requested.value } : { headers: response.headers }

// The override header is an instruction to the paywall, not part of the answer.
const withoutChargeHeader = (response: HttpServerResponse.HttpServerResponse) =>
  Headers.has(response.headers, Credits.CREDITS_HEADER)
    ? HttpServerResponse.setBody(
      HttpServerResponse.empty({
        status: response.status,
        statusText: response.statusText,
        headers: Headers.remove(response.headers, Credits.CREDITS_HEADER),
        cookies: response.cookies
      }),
      response.body
    )
    : response

const withReceipt = (response: HttpServerResponse.HttpServerResponse, settlement: X402.SettleResponse) =>
  HttpServerResponse.setHeaders(withoutChargeHeader(response), receiptHeaders(settlement))

const failureResponse = <R>(
  paywall: Paywall.Paywall<HttpServerRequest.HttpServerRequest, R, HttpServerResponse.HttpServerResponse>,
  error: PaymentFailure
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.flatMap(
    Paywall.replacementFor(paywall, error),
    Option.match({ onSome: Effect.succeed, onNone: () => Effect.map(canonicalAnswer(error), toResponse) })
  )

// The canonical answer, with a 500's detail logged (redacted) under the id the caller gets.
const canonicalAnswer = (error: PaymentFailure): Effect.Effect<Answer> => {
  const canonical = failureAnswer(error)
  if (canonical.status !== 500) return Effect.succeed(canonical)
  return Effect.flatMap(correlationId, (requestId) =>
    Effect.as(
      logInternal("the amount of a paid call could not be determined", requestId, Cause.fail(error)),
      { ...canonical, body: { ...canonical.body, requestId } }
    ))
}

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

const SSE = /^\s*text\/event-stream/i
const encoder = new TextEncoder()

/**
 * A paid answer's streamed body that fails midway must not look complete: the platform would end
 * it cleanly (a truncated answer that reads as whole). The failure is logged (redacted) under a
 * correlation id; an event stream gets an `event: error` frame; then the connection is aborted, so
 * that the client's read fails. The settlement stands: it happened when the headers went out.
 */
const guardStream = (
  response: HttpServerResponse.HttpServerResponse,
  request: HttpServerRequest.HttpServerRequest
): HttpServerResponse.HttpServerResponse => {
  const body = response.body
  if (body._tag !== "Stream") return response
  const sse = SSE.test(body.contentType) || SSE.test(response.headers["content-type"] ?? "")
  const guarded = Stream.catchAllCause(
    body.stream,
    (cause) =>
      Cause.isInterruptedOnly(cause) ? Stream.failCause(cause) : Stream.unwrap(
        Effect.map(correlationId, (requestId) =>
          Stream.concat(
            sse
              ? Stream.make(encoder.encode(
                `event: error\ndata: ${
                  JSON.stringify({
                    error: "Internal Server Error",
                    message: "The answer failed while streaming",
                    requestId
                  })
                }\n\n`
              ))
              : Stream.empty,
            Stream.fromEffect(
              Effect.zipRight(
                logInternal("a paid answer failed while streaming; the connection was aborted", requestId, cause),
                abortConnection(request)
              )
            ).pipe(
              Stream.drain,
              // The platform sees a failure (it must not end the body as complete), never the original.
              Stream.concat(Stream.fail(new InternalFailure({ requestId, what: "the answer failed while streaming" })))
            )
          ))
      )
  )
  return HttpServerResponse.setBody(response, HttpBody.stream(guarded, body.contentType, body.contentLength))
}

interface NodeSocketLike {
  readonly destroyed: boolean
  readonly write: (data: string, callback: (error?: unknown) => void) => boolean
  readonly destroy: () => void
}

const socketOf = (request: HttpServerRequest.HttpServerRequest): NodeSocketLike | undefined => {
  const socket = typeof request.source === "object" && request.source !== null
    ? (request.source as { readonly socket?: unknown }).socket
    : undefined
  return typeof socket === "object" && socket !== null &&
      typeof (socket as NodeSocketLike).write === "function" && typeof (socket as NodeSocketLike).destroy === "function"
    ? socket as NodeSocketLike
    : undefined
}

// Destroys the connection once what was already written is flushed (the error frame), before the
// platform could end the body cleanly. A server without a Node socket cannot abort a body: there the
// stream's failure is left to the platform.
const abortConnection = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const socket = socketOf(request)
    if (socket === undefined || socket.destroyed) return resume(Effect.void)
    try {
      socket.write("", () => {
        socket.destroy()
        resume(Effect.void)
      })
    } catch {
      socket.destroy()
      resume(Effect.void)
    }
  })

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

/**
 * The failure an `HttpApi` paywall middleware declares: a payment that did not go through. The
 * answer actually sent is the canonical one of `failureAnswer` (status, `payment-required` and
 * `payment-response` headers, `{"error","message"}` body); this schema documents it in the API.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export class PaymentFailed extends Schema.TaggedError<PaymentFailed>("@effect-x402/core/HttpPaywall/PaymentFailed")(
  "PaymentFailed",
  { error: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 402, description: "Payment Required" })
) {}

/**
 * The ready-made `HttpApiMiddleware` of a paid endpoint: add it to endpoints or groups with
 * `.middleware(HttpPaywall.Paid)`, provide it with `HttpPaywall.layerHttpApi(options)`, and read
 * the payment in the handler with `PaymentContext`. For several prices in one API, declare one
 * tag per price with the same options object and provide each with `httpApiMiddleware`.
 *
 * @since 0.1.0
 * @category HttpApi
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
 * import { HttpPaywall } from "@effect-x402/core"
 *
 * class Premium extends HttpApiMiddleware.Tag<Premium>()("Premium", HttpPaywall.paidTagOptions) {}
 * ```
 *
 * @since 0.1.0
 * @category HttpApi
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
 * @category HttpApi
 */
export const httpApiMiddleware = <R = never>(
  options: Options<R>
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
 * Provides `HttpPaywall.Paid` with the given options.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const layerHttpApi = <R = never>(options: Options<R>): Layer.Layer<Paid, never, Facilitator | R> =>
  Layer.effect(Paid, httpApiMiddleware(options))
