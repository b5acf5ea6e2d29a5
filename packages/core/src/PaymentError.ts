/**
 * The typed errors of the payment pipeline: `PaymentRequired`, `VerifyFailed`, `SettleFailed`, and
 * what they carry as cause (`FacilitatorError`, `InvalidCredits`).
 *
 * None of them ever holds an API key or an access token: messages are built from reasons, codes and
 * statuses only.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as X402 from "./X402.js"

/**
 * The operations of the Nevermined backend.
 *
 * @since 0.1.0
 * @category models
 */
export const FacilitatorOperation = /* @__PURE__ */ Schema.Literal(
  "verify",
  "settle",
  "permissions",
  "delegation",
  "balance",
  "plan"
)

/**
 * @since 0.1.0
 * @category models
 */
export type FacilitatorOperation = typeof FacilitatorOperation.Type

/**
 * The backend's code for a settle of a single-use (v3) access token that an earlier settle already
 * consumed. Neither a decline nor a forgery: the remedy is to mint a new token, never to retry.
 *
 * @since 0.2.0
 * @category constants
 */
export const TOKEN_ALREADY_USED_CODE = "BCK.X402.0059"

/**
 * A transport failure talking to the facilitator. `requestSent` tells whether the request may
 * have reached it: only a request that provably never left may be retried for settle (and a 429,
 * which says the request was not applied).
 *
 * `kind` `TooLarge`: the answer was longer than the configured cap and was not read (the request
 * was sent, so for settle the outcome is unknown). `reason` `TokenAlreadyUsed` (since 0.2.0): the
 * backend refused a single-use token that was already settled (`BCK.X402.0059`).
 *
 * @since 0.1.0
 * @category errors
 */
export class FacilitatorError
  extends /* @__PURE__ */ Schema.TaggedError<FacilitatorError>("@effect-x402/core/FacilitatorError")(
    "FacilitatorError",
    {
      operation: FacilitatorOperation,
      kind: /* @__PURE__ */ Schema.Literal(
        "Timeout",
        "Unreachable",
        "ConnectionDropped",
        "HttpStatus",
        "MalformedResponse",
        "TooLarge"
      ),
      requestSent: Schema.Boolean,
      status: /* @__PURE__ */ Schema.optional(Schema.Number),
      code: /* @__PURE__ */ Schema.optional(Schema.String),
      detail: /* @__PURE__ */ Schema.optional(Schema.String),
      reason: /* @__PURE__ */ Schema.optional(/* @__PURE__ */ Schema.Literal("TokenAlreadyUsed"))
    }
  )
{
  override get message(): string {
    const status = this.status !== undefined ? ` ${this.status}` : ""
    const code = this.code !== undefined ? ` (${this.code})` : ""
    const detail = this.detail !== undefined ? `: ${this.detail}` : ""
    return `Facilitator ${this.operation} failed: ${this.kind}${status}${code}${detail}`
  }
}

/**
 * A credit amount that is not a non-negative safe integer (or a decimal string of one), or a
 * credits policy that failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidCredits
  extends /* @__PURE__ */ Schema.TaggedError<InvalidCredits>("@effect-x402/core/InvalidCredits")(
    "InvalidCredits",
    {
      reason: /* @__PURE__ */ Schema.Literal("NotAnAmount", "Negative", "NotInteger", "TooLarge", "PolicyFailed"),
      source: Schema.String,
      detail: Schema.String
    }
  )
{
  override get message(): string {
    return `Invalid credits from ${this.source}: ${this.detail}`
  }
}

// The `cause` of `VerifyFailed` and `SettleFailed`: one property signature, built once at import.
const optionalCause = /* @__PURE__ */ Schema.optional(/* @__PURE__ */ Schema.Union(FacilitatorError, InvalidCredits))

/**
 * The caller sent no access token: answer with the PaymentRequired it carries. The facilitator was
 * not called.
 *
 * @since 0.1.0
 * @category errors
 */
export class PaymentRequired
  extends /* @__PURE__ */ Schema.TaggedError<PaymentRequired>("@effect-x402/core/PaymentRequired")(
    "PaymentRequired",
    {
      reason: /* @__PURE__ */ Schema.Literal("MissingToken"),
      paymentRequired: X402.PaymentRequired,
      description: Schema.String
    }
  )
{
  override get message(): string {
    return this.description
  }
}

/**
 * Verification did not pass: the facilitator refused the token (`Invalid`), could not be reached
 * or answered garbage (`Unavailable`, cause `FacilitatorError`), or the credits policy gave no valid
 * amount (`InvalidAmount`, cause `InvalidCredits`). Never followed by a settle.
 *
 * @since 0.1.0
 * @category errors
 */
export class VerifyFailed extends /* @__PURE__ */ Schema.TaggedError<VerifyFailed>("@effect-x402/core/VerifyFailed")(
  "VerifyFailed",
  {
    reason: /* @__PURE__ */ Schema.Literal("Invalid", "Unavailable", "InvalidAmount"),
    paymentRequired: X402.PaymentRequired,
    verification: /* @__PURE__ */ Schema.optional(X402.VerifyResponse),
    cause: optionalCause
  }
) {
  override get message(): string {
    switch (this.reason) {
      case "Invalid":
        return `Verification failed: ${this.verification?.invalidReason ?? "payment not valid"}`
      case "Unavailable":
        return `Verification failed: facilitator unavailable${this.cause ? ` (${this.cause.message})` : ""}`
      case "InvalidAmount":
        return `Verification failed: ${this.cause?.message ?? "invalid credits"}`
    }
  }
}

/**
 * Settlement did not happen, or its outcome is unknown:
 * - `Rejected`: the facilitator answered no (`success: false`, or a 4xx);
 * - `Indeterminate`: the request left but no usable answer came back (timeout, dropped
 *   connection, 5xx, garbage): the credits may or may not have been burned, so it is never retried;
 * - `Unavailable`: the request provably never reached the facilitator;
 * - `InvalidAmount`: the amount to burn was not valid, so nothing was sent.
 *
 * @since 0.1.0
 * @category errors
 */
export class SettleFailed extends /* @__PURE__ */ Schema.TaggedError<SettleFailed>("@effect-x402/core/SettleFailed")(
  "SettleFailed",
  {
    reason: /* @__PURE__ */ Schema.Literal("Rejected", "Indeterminate", "Unavailable", "InvalidAmount"),
    paymentRequired: X402.PaymentRequired,
    credits: Schema.Number,
    settlement: /* @__PURE__ */ Schema.optional(X402.SettleResponse),
    cause: optionalCause
  }
) {
  override get message(): string {
    switch (this.reason) {
      case "Rejected":
        return `Settlement rejected: ${
          this.settlement?.errorReason ?? (this.cause ? this.cause.message : "facilitator refused")
        }`
      case "Indeterminate":
        return `Settlement outcome unknown${this.cause ? ` (${this.cause.message})` : ""}`
      case "Unavailable":
        return `Settlement not attempted: facilitator unreachable${this.cause ? ` (${this.cause.message})` : ""}`
      case "InvalidAmount":
        return `Settlement not attempted: ${this.cause?.message ?? "invalid credits"}`
    }
  }
}

/**
 * The errors of the payment pipeline that a transport turns into an answer.
 *
 * @since 0.1.0
 * @category models
 */
export type PaymentFailure = PaymentRequired | VerifyFailed | SettleFailed

/**
 * Schema of {@link PaymentFailure}.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PaymentFailure: Schema.Union<[typeof PaymentRequired, typeof VerifyFailed, typeof SettleFailed]> =
  /* @__PURE__ */ Schema.Union(
    PaymentRequired,
    VerifyFailed,
    SettleFailed
  )

/**
 * Whether a value is one of the pipeline's payment errors.
 *
 * @since 0.1.0
 * @category guards
 */
export const isPaymentFailure = (u: unknown): u is PaymentFailure =>
  u instanceof PaymentRequired || u instanceof VerifyFailed || u instanceof SettleFailed

/**
 * Whether an error says that a single-use access token was already spent (`BCK.X402.0059`): a
 * `FacilitatorError`, or a `SettleFailed` / `VerifyFailed` (or any error) whose `cause` is one. Reads
 * the wire code, so it also answers for an error that crossed a serialisation boundary.
 *
 * @since 0.2.0
 * @category guards
 */
export const isTokenAlreadyUsed = (u: unknown): boolean => {
  let current: unknown = u
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const record = current as { readonly code?: unknown; readonly reason?: unknown; readonly cause?: unknown }
    if (record.code === TOKEN_ALREADY_USED_CODE || record.reason === "TokenAlreadyUsed") return true
    current = record.cause
  }
  return false
}
