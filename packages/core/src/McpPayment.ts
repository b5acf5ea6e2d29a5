/**
 * The x402 MCP in-band transport (docs/mcp.md): the payment arrives in the tool call's
 * `params._meta["x402/payment"]` or the `payment-signature` header of the MCP HTTP request (both,
 * disagreeing, is refused); the receipt goes to `result._meta["x402/payment-response"]` and
 * `result._meta.x402`; a payment-required answer is an error result carrying the PaymentRequired as
 * `structuredContent` and as the JSON text of `content[0]`.
 *
 * Independent of any MCP library: results are plain `CallToolResult`-shaped objects.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { Facilitator } from "./Facilitator.js"
import * as Answers from "./internal/answers.js"
import {
  answerInternal,
  correlationId,
  INTERNAL_MESSAGE,
  logInternal,
  sealFailures
} from "./internal/internalFailure.js"
import { own } from "./internal/json.js"
import * as InBand from "./McpInBand.js"
import * as PaymentContext from "./PaymentContext.js"
import { isPaymentFailure, type PaymentFailure } from "./PaymentError.js"
import * as Paywall from "./Paywall.js"
import * as X402 from "./X402.js"

/**
 * The `_meta` key of the payment in a request's params.
 *
 * @since 0.1.0
 * @category constants
 */
export const PAYMENT_META_KEY: "x402/payment" = InBand.PAYMENT_META_KEY

/**
 * The `_meta` key of the receipt in a result.
 *
 * @since 0.1.0
 * @category constants
 */
export const PAYMENT_RESPONSE_META_KEY: "x402/payment-response" = InBand.PAYMENT_RESPONSE_META_KEY

/**
 * An MCP `CallToolResult`, as plain data.
 *
 * @since 0.1.0
 * @category models
 */
export interface ToolResult {
  readonly content: ReadonlyArray<unknown>
  readonly structuredContent?: unknown
  readonly isError?: boolean | undefined
  readonly _meta?: { readonly [key: string]: unknown } | undefined
}

/**
 * A text content block.
 *
 * @since 0.1.0
 * @category models
 */
export interface TextContent {
  readonly type: "text"
  readonly text: string
}

/**
 * The error result of a payment that did not go through.
 *
 * @since 0.1.0
 * @category models
 */
export interface PaymentResult extends ToolResult {
  readonly isError: true
  readonly content: ReadonlyArray<TextContent>
  readonly structuredContent?: { readonly [key: string]: unknown } | undefined
}

/**
 * The caller's token carried in band, in a request's `_meta`: a string is the access token itself; an
 * object is an x402 PaymentPayload, whose access token is the base64 of its JSON (as Nevermined
 * encodes it). Anything else, or a payload larger than a header could be, is no token (and `protect`
 * refuses the call without asking the facilitator).
 *
 * @since 0.1.0
 * @category tokens
 */
export const tokenFromMeta = (meta: unknown): Option.Option<Redacted.Redacted<string>> => {
  const token = InBand.metaToken(meta)
  return typeof token === "string" ? Paywall.token(token) : Option.none()
}

/**
 * The caller's token, from `_meta` or the request's headers. Fails closed (docs/mcp.md): a malformed
 * in-band payment, or an in-band payment and a header token that differ, give no token.
 *
 * @since 0.1.0
 * @category tokens
 */
export const tokenOf = (
  request: { readonly meta?: unknown; readonly headers?: Answers.HeadersInput },
  tokenHeaders: ReadonlyArray<string> = Answers.DEFAULT_TOKEN_HEADERS
): Option.Option<Redacted.Redacted<string>> => {
  const resolved = resolve(request, tokenHeaders)
  return resolved._tag === "Token" ? Paywall.token(resolved.token) : Option.none()
}

const resolve = (
  request: { readonly meta?: unknown; readonly headers?: Answers.HeadersInput },
  tokenHeaders: ReadonlyArray<string>
): InBand.Resolved =>
  InBand.resolveToken(
    request.meta,
    Option.getOrUndefined(Option.map(Answers.tokenFromHeaders(request.headers, tokenHeaders), Redacted.value))
  )

const encodePaymentRequired = Schema.encodeSync(X402.PaymentRequired)

const text = (value: unknown): TextContent => ({ type: "text", text: JSON.stringify(value) })

/**
 * The payment-required result: `isError`, the PaymentRequired (with an `error` that says why) as
 * `structuredContent` and as the JSON text of `content[0]`.
 *
 * @since 0.1.0
 * @category results
 */
export const paymentRequiredResult = (paymentRequired: X402.PaymentRequired, message?: string): PaymentResult => {
  const structuredContent = InBand.paymentRequiredContent(encodePaymentRequired(paymentRequired), message)
  return { isError: true, structuredContent, content: [text(structuredContent)] }
}

/**
 * A result with the receipt of a settlement in `_meta["x402/payment-response"]` and, for the Python
 * SDK's clients, `_meta.x402`, merged into any existing `_meta`.
 *
 * @since 0.1.0
 * @category results
 */
export const withReceipt = <A extends ToolResult>(result: A, settlement: X402.SettleResponse): A =>
  InBand.resultWithReceipt(result, settlement)

const errorResult = (code: number, message: string, requestId?: string): PaymentResult => ({
  isError: true,
  content: [text({ error: message, code, ...(requestId !== undefined ? { requestId } : {}) })]
})

/**
 * The result of a failure inside the server (the tool failed or died, a credits policy failed):
 * `{"error": "Internal error; nothing was charged", "code": 500, "requestId": id}`; the detail is in
 * the log under the same id.
 *
 * @since 0.2.0
 * @category results
 */
export const internalErrorResult = (requestId: string): PaymentResult => errorResult(500, INTERNAL_MESSAGE, requestId)

/**
 * The result of a payment failure:
 * - no token, a token the facilitator refused, a settlement the facilitator refused: the
 *   payment-required result (the client may pay and call again);
 * - facilitator unreachable, timed out, answering garbage, or a settlement of unknown outcome: an
 *   error result `{"error": message, "code": 502}`;
 * - an invalid amount (a credits policy that failed, an invalid override: a bug of the server, not
 *   of the payment): an error result with code 500 and a generic message (the detail is for the log).
 *
 * A failed settlement withholds the output and adds a `success: false` receipt.
 *
 * @since 0.1.0
 * @category results
 */
export const failureResult = (error: PaymentFailure): PaymentResult => {
  switch (error._tag) {
    case "PaymentRequired":
      return paymentRequiredResult(error.paymentRequired, error.message)
    case "VerifyFailed":
      return error.reason === "Invalid"
        ? paymentRequiredResult(error.paymentRequired, error.message)
        : error.reason === "Unavailable"
        ? errorResult(502, error.message)
        : errorResult(500, INTERNAL_MESSAGE)
    case "SettleFailed": {
      const result = error.reason === "Rejected"
        ? paymentRequiredResult(error.paymentRequired, error.message)
        : error.reason === "InvalidAmount"
        ? errorResult(500, INTERNAL_MESSAGE)
        : errorResult(502, error.message)
      return withReceipt(result, Answers.failedSettlement(error))
    }
  }
}

// The canonical result, with a 500's detail logged (redacted) under the id the caller gets.
const canonicalResult = (error: PaymentFailure): Effect.Effect<ToolResult> => {
  const internal = error._tag !== "PaymentRequired" && error.reason === "InvalidAmount"
  if (!internal) return Effect.succeed(failureResult(error))
  return Effect.flatMap(correlationId, (requestId) =>
    Effect.as(
      logInternal("the amount of a paid call could not be determined", requestId, Cause.fail(error)),
      error._tag === "SettleFailed"
        ? withReceipt(internalErrorResult(requestId), Answers.failedSettlement(error))
        : internalErrorResult(requestId)
    ))
}

/**
 * One tool call to protect.
 *
 * @since 0.1.0
 * @category models
 */
export interface Call<Req> {
  /** What a credits function receives. */
  readonly request: Req
  /** The request's `params._meta`. */
  readonly meta?: unknown
  /** The MCP HTTP request's headers, when there is one. */
  readonly headers?: Answers.HeadersInput
  /** Header names that may carry the token; default `payment-signature`. `Authorization` is never read. */
  readonly tokenHeaders?: ReadonlyArray<string> | undefined
  /** The tool's name, for the payment-required message. */
  readonly toolName?: string | undefined
  /** The resource URL when the options name no `endpoint`. */
  readonly resourceUrl?: string | undefined
}

/**
 * Runs a tool call behind the paywall, in band: verify → run the tool → settle, exactly once per
 * verified call. The tool may read the payment, and charge another amount, through
 * `PaymentContext`; it may also ask for an amount in its result (`_meta.creditsToCharge`, or a JSON
 * text item with `creditsToCharge`, see `Credits.findCharge`).
 *
 * Only a result with `isError: true` (the boolean) goes unsettled: any other answer (no content,
 * string content, `isError: "true"` or `null`, not even an object) is settled like a success, or
 * withheld when settlement fails; never released unsettled.
 *
 * A failure or a defect of the tool is not settled, and its detail never reaches the caller: it is
 * logged (redacted) and answered with `internalErrorResult` (a generic message and a correlation
 * id, the current trace id). Payment failures become results (see `failureResult`; a 500 gets the
 * correlation id of its log line); `onPaymentError` may return another.
 *
 * @since 0.1.0
 * @category pipeline
 */
export const protect = <Req, R, A extends ToolResult, E, R2>(
  paywall: Paywall.Paywall<Req, R, ToolResult>,
  call: Call<Req>,
  tool: Effect.Effect<A, E, R2>
): Effect.Effect<ToolResult, never, Facilitator | R | Exclude<R2, PaymentContext.PaymentContext>> =>
  Effect.suspend(() => {
    let requested = (): Option.Option<number> => Option.none()
    // A refused token (malformed in `_meta`, or `_meta` and a header disagreeing) is answered as
    // payment required, the facilitator never asked: neither token is verified nor settled.
    const resolved = resolve(call, call.tokenHeaders ?? Answers.DEFAULT_TOKEN_HEADERS)
    return Paywall.protect(paywall, {
      request: call.request,
      token: resolved._tag === "Token" ? resolved.token : undefined,
      resourceUrl: call.resourceUrl,
      paymentRequiredMessage: resolved._tag === "Refused"
        ? resolved.message
        : call.toolName !== undefined
        ? `Payment required for tool: ${call.toolName}`
        : undefined
    }, (verified) => {
      const context = PaymentContext.make(verified)
      requested = context.requestedCharge
      return sealFailures(
        Effect.provideService(tool, PaymentContext.PaymentContext, context.service),
        "the paid tool failed; nothing was charged"
      )
    }, {
      isError: (result) => own(result, "isError") === true,
      chargeOf: (result) =>
        Option.match(requested(), {
          onNone: () => ({ result }),
          onSome: (creditsToCharge) => ({ requested: creditsToCharge })
        })
    }).pipe(
      Effect.map((outcome): ToolResult => {
        switch (outcome._tag) {
          case "Settled":
            return withReceipt(outcome.value, outcome.settlement)
          case "Released":
            return withReceipt(outcome.value, Answers.failedSettlement(outcome.error))
          case "NotCharged":
            return outcome.value
        }
      }),
      Effect.catchIf(isPaymentFailure, (error) =>
        Effect.flatMap(
          Paywall.replacementFor(paywall, error),
          Option.match({ onSome: Effect.succeed, onNone: () => canonicalResult(error) })
        )),
      // What is left: the tool's sealed failure, or a defect of the pipeline itself.
      Effect.catchAllCause((cause) =>
        answerInternal(cause, (requestId): ToolResult => internalErrorResult(requestId), "the paywall failed")
      ),
      Effect.withSpan("McpPayment.protect", {
        attributes: call.toolName !== undefined ? { "mcp.tool": call.toolName } : {}
      })
    )
  })
