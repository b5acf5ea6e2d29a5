/**
 * x402 over plain HTTP for Lambdas behind API Gateway HTTP APIs (payload v2) and Lambda Function
 * URLs: a real 402 with `payment-required`, 502 when the facilitator fails, and the
 * `payment-response` receipt on a paid answer (docs/protocol.md §8).
 *
 * @since 0.1.0
 */
import * as Adapter from "@effect-x402/core/Adapter"
import * as Bounds from "@effect-x402/core/Bounds"
import * as CallSpan from "@effect-x402/core/CallSpan"
import * as Credits from "@effect-x402/core/Credits"
import type { Facilitator } from "@effect-x402/core/Facilitator"
import * as Idempotency from "@effect-x402/core/Idempotency"
import * as PaymentContext from "@effect-x402/core/PaymentContext"
import { isPaymentFailure, type PaymentFailure } from "@effect-x402/core/PaymentError"
import * as Paywall from "@effect-x402/core/Paywall"
import * as SettlementLedger from "@effect-x402/core/SettlementLedger"
import * as X402 from "@effect-x402/core/X402"
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as AgentCore from "./AgentCore.js"
import { type HandlerFailed, invoke } from "./internal/handler.js"
import * as HttpEvents from "./internal/httpEvent.js"
import * as Json from "./internal/json.js"
import { formatError } from "./internal/json.js"
import { settleResponseHeader } from "./internal/receipt.js"
import { redact, redactCause, redactedPolicy, requestIdOf } from "./internal/redact.js"
import * as LambdaRuntime from "./LambdaRuntime.js"

/**
 * The event API Gateway HTTP APIs (payload v2) and Function URLs send, re-exported from
 * `@types/aws-lambda`.
 *
 * @since 0.1.0
 * @category models
 */
export type HttpEvent = APIGatewayProxyEventV2

/**
 * The structured result of a v2 handler, re-exported from `@types/aws-lambda`.
 *
 * @since 0.1.0
 * @category models
 */
export type HttpResult = APIGatewayProxyStructuredResultV2

/**
 * The part of a v2 event the paywall reads. Tolerant: every other field is ignored.
 *
 * @since 0.1.0
 * @category schemas
 */
export const HttpEventSchema = Schema.Struct({
  rawPath: Schema.optional(Schema.String),
  headers: Schema.optional(Schema.NullOr(AgentCore.Headers)),
  requestContext: Schema.Struct({
    domainName: Schema.optional(Schema.String),
    http: Schema.Struct({ method: Schema.String, path: Schema.optional(Schema.String) })
  }),
  body: Schema.optional(Schema.NullOr(Schema.String)),
  isBase64Encoded: Schema.optional(Schema.Boolean)
})

/**
 * What the wrapped handler receives. It may return an Effect (which may use `PaymentContext`), a
 * Promise or a plain value: a structured result (`statusCode`, `headers`, `body`) or anything else,
 * which is sent as JSON with status 200, as API Gateway does.
 *
 * @since 0.1.0
 * @category models
 */
export type Handler = (event: HttpEvent, context: LambdaRuntime.LambdaContext) => unknown

/**
 * Options of `httpHandler`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<R = never, LE = never, SE = never>
  extends Paywall.Options<HttpEvent, R, HttpResult | Record<string, unknown>>, LambdaRuntime.RuntimeOptions<R, LE, SE>
{
  /** The header(s) carrying the token, tried in order, any case. Default `payment-signature`. */
  readonly tokenHeader?: string | ReadonlyArray<string> | undefined
}

const JSON_HEADERS = { "content-type": "application/json" }

const json = (statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult => ({
  statusCode,
  headers: { ...JSON_HEADERS, ...headers },
  body: JSON.stringify(body)
})

const fromAnswer = (answer: Adapter.Answer): HttpResult => json(answer.status, answer.body, { ...answer.headers })

/**
 * The generic answer to a failure inside the server (a handler that threw, a credits policy that
 * failed): what went wrong stays in the log, the caller gets the request id to quote.
 */
const internalError = (requestId: string, message = "Internal error"): HttpResult =>
  json(500, { error: "Internal Server Error", message, requestId })

// A body nested beyond the bound is refused before verify: it cannot be served in bounded work.
const tooDeep = (body: string | null | undefined, isBase64Encoded: boolean | undefined): boolean => {
  if (typeof body !== "string" || body.length === 0) return false
  let text = body
  if (isBase64Encoded === true) {
    try {
      text = Buffer.from(body, "base64").toString("utf8")
    } catch {
      return false
    }
  }
  const first = text.trimStart()[0]
  if (first !== "{" && first !== "[") return false
  // Read from the text: no parse and no tree walk (the same answer for JSON, and for text the
  // parser refuses an unclosed bracket still counts).
  return Bounds.jsonTextDepthExceeds(text)
}

/**
 * Turns what a handler returned into a structured result: a value with a numeric `statusCode` is
 * one (its headers made strings); anything else is sent as JSON with status 200, as API Gateway
 * does. `undefined` and a bad status are not answers.
 *
 * @since 0.1.0
 * @category handler results
 */
export const normalize = (value: unknown): Either.Either<HttpResult, string> => {
  if (value === undefined) return Either.left("the handler returned nothing")
  if (!Json.isRecord(value) || Json.own(value, "statusCode") === undefined) {
    return Either.right(json(200, value))
  }
  const statusCode = Json.own(value, "statusCode")
  if (typeof statusCode !== "number" || !Number.isInteger(statusCode) || statusCode < 100 || statusCode > 599) {
    return Either.left("the handler returned an invalid statusCode")
  }
  const body = Json.own(value, "body")
  const cookies = Json.own(value, "cookies")
  const isBase64Encoded = Json.own(value, "isBase64Encoded")
  return Either.right({
    statusCode,
    headers: AgentCore.copyHeaders(Json.own(value, "headers")),
    ...(body === undefined || body === null ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    ...(Array.isArray(cookies) ? { cookies: cookies.filter((c): c is string => typeof c === "string") } : {}),
    ...(typeof isBase64Encoded === "boolean" ? { isBase64Encoded } : {})
  })
}

// The override header is an instruction to the paywall, not part of the answer.
// The receipt is `HttpPaywall.receiptHeaders`' header, written once per answer without the Schema
// encoder (`internal/receipt.ts`, bytes pinned by HttpHandlerReceipt.test.ts).
const RECEIPT_OVERRIDDEN = [Credits.CREDITS_HEADER, X402.PAYMENT_RESPONSE_HEADER]
const withReceipt = (result: HttpResult, settlement: X402.SettleResponse): HttpResult => {
  // A fresh object of checked headers: the receipt is set on it, no second copy.
  const headers = AgentCore.copyHeaders(result.headers, RECEIPT_OVERRIDDEN)
  headers[X402.PAYMENT_RESPONSE_HEADER] = settleResponseHeader(settlement)
  return { ...result, headers }
}

// A failed settlement's receipt, with an `errorReason` the caller may read (see `AgentCore.safeSettlement`).
const safeHeaders = (
  error: PaymentFailure,
  headers: { readonly [name: string]: string }
): Record<string, string> =>
  error._tag === "SettleFailed"
    ? {
      ...AgentCore.copyHeaders(headers, Object.keys(Adapter.receiptHeaders(Adapter.failedSettlement(error)))),
      ...Adapter.receiptHeaders(AgentCore.safeSettlement(Adapter.failedSettlement(error)))
    }
    : AgentCore.copyHeaders(headers)

const CHARGE_HEADER = [Credits.CREDITS_HEADER]
const withoutChargeHeader = (result: HttpResult): HttpResult =>
  result.headers === undefined
    ? result
    : { ...result, headers: AgentCore.copyHeaders(result.headers, CHARGE_HEADER) }

// The answer of each outcome of the paywall.
const answerOf = (outcome: Idempotency.Outcome<HttpResult>): HttpResult => {
  switch (outcome._tag) {
    case "Replayed":
      // An earlier attempt's answer under this idempotency key: nothing run or charged now.
      return withReceipt(outcome.value, outcome.settlement)
    case "Settled":
      return withReceipt(outcome.value, outcome.settlement)
    case "Released":
      return withReceipt(outcome.value, AgentCore.safeSettlement(Adapter.failedSettlement(outcome.error)))
    case "NotCharged":
      return withoutChargeHeader(outcome.value)
  }
}

// How a paid result is kept in the ledger: its JSON, and back (only an object with a numeric status).
const resultCodec: Idempotency.Codec<HttpResult> = {
  encode: (result) => Idempotency.jsonCodec.encode(result),
  decode: (stored) =>
    Option.filter(
      Idempotency.jsonCodec.decode(stored),
      (u): u is HttpResult => Json.isRecord(u) && typeof u.statusCode === "number"
    ) as Option.Option<HttpResult>
}

// A refused retry: 409 (already paid, in progress, key of an uncharged attempt), 400 (invalid key)
// or 503 (ledger down); "already paid" carries the earlier receipt.
const idempotencyFailure = (error: Idempotency.IdempotencyError, requestId: string): HttpResult => {
  const settlement = error.settlement
  const receipt = error.reason === "AlreadyPaid" && Json.isRecord(settlement)
    ? Adapter.receiptHeaders(settlement as unknown as X402.SettleResponse)
    : {}
  return json(error.status, {
    error: error.status === 409 ? "Conflict" : error.status === 400 ? "Bad Request" : "Service Unavailable",
    reason: error.reason,
    message: error.message,
    ...(error.reason === "Unavailable" ? { requestId } : {})
  }, receipt)
}

const decodeEventSchema = Schema.decodeUnknownEither(HttpEventSchema, {
  errors: "first",
  onExcessProperty: "ignore"
})

// The usual event read by hand (`internal/httpEvent.ts`), anything else by the schema.
const decodeEvent = (event: unknown): Either.Either<typeof HttpEventSchema.Type, ParseResult.ParseError> => {
  const fast = HttpEvents.decodeV2Event(event)
  return fast !== undefined ? Either.right(fast) : decodeEventSchema(event)
}

/**
 * The paid HTTP handler as an Effect handler, for use with another Lambda runtime (e.g.
 * `@effect-aws/lambda`). Every failure is already an answer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const effectHandler = <R = never, LE = never, SE = never>(options: Options<R, LE, SE>) => {
  // The credits policy's failures reach spans and errors as `InvalidCredits` details: redacted first.
  const paywall = Paywall.make({ ...options, credits: redactedPolicy(options.credits) })
  // One paywall per HTTP method, made once: what Paywall computes once per paywall stays computed.
  const byMethod = new Map<string, Paywall.Paywall<HttpEvent, R, HttpResult>>()
  const paywallFor = (method: string): Paywall.Paywall<HttpEvent, R, HttpResult> => {
    if (options.httpVerb !== undefined) return paywall
    let found = byMethod.get(method)
    if (found === undefined) {
      found = { ...paywall, options: { ...paywall.options, httpVerb: method } }
      // Methods come from the request: keep the usual few, build any other per call.
      if (byMethod.size < 16) byMethod.set(method, found)
    }
    return found
  }
  const tokenHeaders = AgentCore.tokenHeaders(options.tokenHeader)
  // Idempotent retries use the context's SettlementLedger, else this one (one per cold start).
  const ledger = SettlementLedger.contextOrMemory()
  const failure = (configured: typeof paywall, error: PaymentFailure, requestId: string): Effect.Effect<HttpResult> =>
    Effect.gen(function*() {
      yield* error._tag === "PaymentRequired" || (error._tag === "VerifyFailed" && error.reason === "Invalid")
        ? Effect.logDebug(`x402: ${error.message}`)
        : Effect.logWarning(`x402: ${redact(error.message)} (request ${requestId})`)
      const replacement = yield* Paywall.replacementFor(configured, error)
      if (Option.isSome(replacement)) {
        const result = normalize(replacement.value)
        if (Either.isRight(result)) return result.right
      }
      const answer = Adapter.failureAnswer(error)
      // A credits policy that failed is the server's bug: its detail is for the log, not the caller.
      if (answer.status === 500) {
        return { ...internalError(requestId), headers: { ...safeHeaders(error, answer.headers), ...JSON_HEADERS } }
      }
      // The facilitator's trouble (a transport error, a 5xx body, a free-text refusal) is named in
      // fixed words; its detail stays in the log under the request id.
      if (error._tag === "SettleFailed") {
        return json(answer.status, {
          error: answer.status === 402 ? "Payment Required" : "Bad Gateway",
          message: AgentCore.settleFailureMessage(error),
          ...(answer.status !== 402 ? { requestId } : {})
        }, safeHeaders(error, answer.headers))
      }
      if (answer.status === 502) {
        return json(502, {
          error: "Bad Gateway",
          message: "The payment facilitator could not be reached; nothing was charged",
          requestId
        })
      }
      return fromAnswer(answer)
    })
  const handlerFailure = (error: HandlerFailed, requestId: string): Effect.Effect<HttpResult> =>
    Effect.as(
      Effect.annotateLogs(
        Effect.logError(
          `x402: handler failed (request ${requestId}): ${error.message}`,
          error.detail
        ),
        "requestId",
        requestId
      ),
      internalError(requestId, "The handler failed; nothing was charged")
    )

  return <H extends Handler>(handler: H) =>
  (
    event: unknown,
    context: LambdaRuntime.LambdaContext
  ): Effect.Effect<
    HttpResult,
    never,
    Facilitator | R | Exclude<LambdaRuntime.RequirementsOf<ReturnType<H>>, PaymentContext.PaymentContext>
  > =>
    // A plain function on the fiber's clock rather than a generator: one step before the paywall.
    Effect.clockWith((clock) => {
      const decoded = decodeEvent(event)
      if (Either.isLeft(decoded)) {
        const message = `Not an API Gateway v2 / Function URL event: ${formatError(decoded.left)}`
        return Effect.as(Effect.logWarning(`x402: ${message}`), json(400, { error: "Bad Request", message }))
      }
      const request = decoded.right
      if (tooDeep(request.body, request.isBase64Encoded)) {
        return Effect.as(
          Effect.logWarning(`x402: request body nested deeper than ${Bounds.MAX_JSON_DEPTH} refused`),
          json(400, {
            error: "Bad Request",
            message: `The request body nests deeper than ${Bounds.MAX_JSON_DEPTH} levels`
          })
        )
      }
      const now = clock.unsafeCurrentTimeMillis()
      const remaining = typeof context?.getRemainingTimeInMillis === "function"
        ? context.getRemainingTimeInMillis()
        : undefined
      const method = request.requestContext.http.method
      const domain = request.requestContext.domainName
      const path = request.rawPath ?? request.requestContext.http.path ?? "/"
      // Single-use tokens bind the resource URL and the verb: both follow the request unless fixed.
      const configured = paywallFor(method)
      let requested = (): Option.Option<number> => Option.none()
      const key = Idempotency.validateKey(Json.headerValue(request.headers, Idempotency.IDEMPOTENCY_KEY_HEADER))
      if (Either.isLeft(key)) return Effect.succeed(idempotencyFailure(key.left, requestIdOf(context)))
      return Idempotency.protect(
        configured,
        {
          request: event as HttpEvent,
          token: AgentCore.tokenOf(request.headers, tokenHeaders),
          resourceUrl: domain !== undefined && domain.length > 0 ? `https://${domain}${path}` : undefined,
          // Verify and settle end before AWS ends the function, so the library's own answer goes out.
          deadline: typeof remaining === "number" && Number.isFinite(remaining)
            ? Paywall.deadlineOf(now, remaining)
            : undefined
        },
        key.right,
        (verified) =>
          // The handler, run and its result read as one step. `PaymentContext` is an Effect service:
          // provided to an Effect handler only (providing it copies the fiber's context), made then.
          invoke<HttpResult, Exclude<LambdaRuntime.RequirementsOf<ReturnType<H>>, PaymentContext.PaymentContext>>(
            () => {
              const out = handler(event as HttpEvent, context)
              if (!Effect.isEffect(out)) return out
              const payment = PaymentContext.make(verified)
              requested = payment.requestedCharge
              return Effect.provideService(out, PaymentContext.PaymentContext, payment.service)
            },
            normalize
          ),
        {
          isError: (result) => !Adapter.isChargeable(result.statusCode ?? 200),
          chargeOf: (result) =>
            Option.match(requested(), {
              onNone: () => ({ headers: result.headers }),
              onSome: (credits) => ({ requested: credits })
            }),
          codec: resultCodec,
          // Only resolved with a key (`Idempotency.protect` without one is exactly `Paywall.protect`).
          ledger
        }
      ).pipe(
        Effect.matchEffect({
          onSuccess: (outcome) => Effect.succeed(answerOf(outcome)),
          // The request id (the Lambda's, else a fresh one) only for an answer that names it.
          onFailure: (error) =>
            isPaymentFailure(error)
              ? failure(configured, error, requestIdOf(context))
              : error._tag === "IdempotencyError"
              ? Effect.succeed(idempotencyFailure(error, requestIdOf(context)))
              : handlerFailure(error, requestIdOf(context))
        })
      )
    }).pipe(
      Effect.catchAllCause((cause) => {
        const requestId = requestIdOf(context)
        return Effect.as(
          Effect.logError(`x402: internal failure (request ${requestId})`, redactCause(cause)),
          internalError(requestId)
        )
      }),
      // One span per call when a tracer listens (Paywall sets its attributes on it), none otherwise.
      (effect) => CallSpan.wrap(effect, "HttpHandler.handle")
    )
}

/**
 * Wraps a Lambda handler behind API Gateway (HTTP API, payload v2) or a Function URL with the x402
 * HTTP transport:
 *
 * - no token, or a token the facilitator refuses: **402** with `payment-required` and
 *   `{"error":"Payment Required","message":...}`;
 * - the facilitator unreachable, timing out or answering garbage: **502**;
 * - the handler answers status >= 400 (or fails): passed through (or 500), nothing settled;
 * - otherwise the credits are settled (the handler may ask for another amount with
 *   `PaymentContext.chargeCredits` or an `X-Credits-To-Charge` header) and the answer carries
 *   `payment-response`.
 *
 * `resource.url` is `https://<domainName><rawPath>` and `extra.httpVerb` the request's method,
 * unless `endpoint` / `httpVerb` fix them.
 *
 * @example
 * ```ts
 * import { httpHandler } from "@effect-x402/lambda/HttpHandler"
 *
 * export const handler = httpHandler({ planId: process.env.NVM_PLAN_ID!, credits: 1 })(
 *   async (event) => ({ statusCode: 200, body: JSON.stringify({ answer: 42 }) })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const httpHandler = <R = never, LE = never, SE = never>(options: Options<R, LE, SE>) => {
  const make = effectHandler(options)
  const layer = LambdaRuntime.layerOf(options)
  return <H extends Handler>(
    handler: LambdaRuntime.Checked<H, R | PaymentContext.PaymentContext>
  ): LambdaRuntime.Handler<unknown, HttpResult> & {
    readonly runtime: LambdaRuntime.LambdaRuntime<Facilitator | R>
  } => {
    // `Checked` proved that the handler needs nothing beyond `R` and `PaymentContext`.
    const effect = make(handler) as (
      event: unknown,
      context: LambdaRuntime.LambdaContext
    ) => Effect.Effect<HttpResult, never, Facilitator | R>
    const runtime = LambdaRuntime.make(layer, { memoMap: options.memoMap })
    const lambda = (event: unknown, context: LambdaRuntime.LambdaContext): Promise<HttpResult> =>
      // `effect` only describes the call (its first step is `Effect.clockWith`): nothing runs here.
      runtime.run(effect(event, context), () => internalError(requestIdOf(context)))
    return Object.assign(lambda, { runtime })
  }
}
