/**
 * The x402 answers of a paid call, transport-neutral and pure: the token from request headers, the
 * answer to a payment failure (status, headers, JSON body), the `payment-required` and
 * `payment-response` headers, and the failed settlement of a withheld or released answer. The HTTP
 * middleware (`HttpPaywall`), the `HttpApi` middleware, the MCP transports and the Lambda adapters
 * all answer through these, so that one failure reads the same on every transport
 * (docs/protocol.md §8, §9). Public through `HttpPaywall` and `Adapter`.
 *
 * @internal
 */
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type { PaymentFailure, SettleFailed } from "../PaymentError.js"
import * as Paywall from "../Paywall.js"
import * as X402 from "../X402.js"
import { INTERNAL_MESSAGE } from "./internalFailure.js"

/**
 * Request headers as they come: a platform `Headers`, a Node `IncomingHttpHeaders`, an API
 * Gateway event's `headers`. Names are matched case-insensitively.
 *
 * @internal
 */
export type HeadersInput =
  | { readonly [name: string]: string | ReadonlyArray<string> | undefined | null }
  | null
  | undefined

/**
 * The header names tried for the token when none are configured.
 *
 * @internal
 */
export const DEFAULT_TOKEN_HEADERS: ReadonlyArray<string> = [X402.PAYMENT_SIGNATURE_HEADER]

/**
 * Validates the `tokenHeaders` option: at least one name, none empty, and never `Authorization`.
 * Behind a gateway or an authorizer, `Authorization` carries the caller's identity token (itself a
 * `Bearer` value, so no prefix check can tell it from an x402 token), which would go to the
 * facilitator as the payment. Throws a `RangeError` at construction, not at the first call.
 *
 * @internal
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
 * @internal
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
 * @internal
 */
export const isChargeable = (status: number): boolean => status < 400

/**
 * A transport-neutral HTTP answer: status, headers and JSON body. `requestId` (since 0.2.0) is the
 * correlation id of a failure inside the server, whose detail is in the log only.
 *
 * @internal
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
 * @internal
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
 * @internal
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
 * @internal
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
