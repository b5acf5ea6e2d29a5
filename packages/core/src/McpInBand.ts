/**
 * The x402 MCP in-band format, read and written in one place for every adapter (`requiresPayment`,
 * `McpPayment`, `PaidMcpTool`); docs/mcp.md describes it:
 *
 * - the payment comes in `params._meta["x402/payment"]` (a PaymentPayload object, or the access
 *   token as a string) or in a token header; both, disagreeing, is refused;
 * - a payment-required answer is an `isError` tool result carrying the PaymentRequired as
 *   `structuredContent` (and, where the adapter has no other text to keep, as `content[0].text`);
 * - a receipt goes to the result's `_meta["x402/payment-response"]` and, for the Python SDK's
 *   clients, `_meta.x402`.
 *
 * Public for adapter authors (another MCP transport speaks the same format through it). No Schema
 * runs here: this sits on the hot path of every paid call, and reading an absent `_meta` costs one
 * property lookup.
 *
 * @since 0.3.0
 */
import { isRecord, own } from "./internal/json.js"
import * as X402 from "./X402.js"

/**
 * The `_meta` key of the payment in a request's params.
 *
 * @since 0.3.0
 */
export const PAYMENT_META_KEY = "x402/payment"

/**
 * The `_meta` key of the receipt in a result.
 *
 * @since 0.3.0
 */
export const PAYMENT_RESPONSE_META_KEY = "x402/payment-response"

/**
 * The `_meta` key of the receipt for the Python SDK's clients.
 *
 * @since 0.3.0
 */
export const PYTHON_META_KEY = "x402"

/**
 * The token a request carries, from `_meta` and a header together:
 * - `Token`: the one token to verify and settle;
 * - `None`: no payment anywhere;
 * - `Refused`: a payment that must not be used (malformed or oversize in `_meta`, or a `_meta`
 *   payment and a header token that disagree). It is answered as "payment required" with `message`,
 *   without asking the facilitator: never verify one token and settle another.
 *
 * @since 0.3.0
 */
export type Resolved =
  | { readonly _tag: "Token"; readonly token: string }
  | { readonly _tag: "None" }
  | { readonly _tag: "Refused"; readonly message: string }

const NONE: Resolved = { _tag: "None" }

/**
 * Why an in-band payment was refused: fixed words, never the caller's text.
 *
 * @since 0.3.0
 */
export const REFUSED_INVALID =
  `Invalid payment in _meta["${PAYMENT_META_KEY}"]: expected a PaymentPayload object or a token`
export const REFUSED_OVERSIZE = `Invalid payment in _meta["${PAYMENT_META_KEY}"]: too large`
export const REFUSED_AMBIGUOUS =
  `Ambiguous payment: _meta["${PAYMENT_META_KEY}"] and the payment header carry different tokens; send one`

// An object counts as an x402 PaymentPayload when it has one of its own fields; one carrying only
// extensions (a `payment-identifier` beside a header token) is metadata, not a payment.
const isPaymentPayload = (u: { readonly [key: string]: unknown }): boolean =>
  Object.prototype.hasOwnProperty.call(u, "x402Version") || Object.prototype.hasOwnProperty.call(u, "accepted") ||
  Object.prototype.hasOwnProperty.call(u, "payload")

/**
 * The in-band token of a request's `params._meta` (pass `params._meta`, not `params`): a string is
 * the access token itself; a PaymentPayload object's access token is the base64 of its JSON (as
 * Nevermined encodes it). `undefined` when there is none (or only payment metadata, such as a
 * `payment-identifier` extension); a `Refused` when what is there is not a payment (another type,
 * or larger than a header could be).
 *
 * @since 0.3.0
 */
export const metaToken = (meta: unknown): string | undefined | Extract<Resolved, { _tag: "Refused" }> => {
  if (meta === undefined) return undefined
  const payment = own(meta, PAYMENT_META_KEY)
  if (payment === undefined) return undefined
  if (typeof payment === "string") {
    const token = payment.trim()
    if (token.length === 0) return { _tag: "Refused", message: REFUSED_INVALID }
    return token.length > X402.MAX_HEADER_LENGTH ? { _tag: "Refused", message: REFUSED_OVERSIZE } : token
  }
  if (!isRecord(payment)) return { _tag: "Refused", message: REFUSED_INVALID }
  if (!isPaymentPayload(payment)) return undefined
  let json: string
  try {
    json = JSON.stringify(payment)
  } catch {
    // A cycle or a BigInt cannot have come from JSON: not a payment.
    return { _tag: "Refused", message: REFUSED_INVALID }
  }
  if (json.length > X402.MAX_HEADER_LENGTH) return { _tag: "Refused", message: REFUSED_OVERSIZE }
  // Refused where the same token in a header would be.
  const token = X402.encodeBase64(json)
  return token.length > X402.MAX_HEADER_LENGTH ? { _tag: "Refused", message: REFUSED_OVERSIZE } : token
}

// Whether a header token and an in-band one are the same payment: the same text, or the header's
// base64 JSON and the `_meta` object serialising alike (whitespace aside). Only runs when both came.
const samePayment = (headerToken: string, inBand: string): boolean => {
  if (headerToken === inBand) return true
  const header = X402.decodeBase64(headerToken)
  const meta = X402.decodeBase64(inBand)
  if (header._tag === "Left" || meta._tag === "Left") return false
  try {
    return JSON.stringify(JSON.parse(header.right)) === meta.right
  } catch {
    return false
  }
}

/**
 * The token of a request from its `params._meta` and the token found in its headers (already read,
 * trimmed; `undefined` when none). Fails closed: a malformed `_meta` payment is refused even when a
 * header carries a token, and two different payments are refused.
 *
 * @since 0.3.0
 */
export const resolveToken = (meta: unknown, headerToken: string | undefined): Resolved => {
  const inBand = metaToken(meta)
  if (inBand === undefined) return headerToken === undefined ? NONE : { _tag: "Token", token: headerToken }
  if (typeof inBand !== "string") return inBand
  if (headerToken !== undefined && !samePayment(headerToken, inBand)) {
    return { _tag: "Refused", message: REFUSED_AMBIGUOUS }
  }
  return { _tag: "Token", token: inBand }
}

/**
 * The `_meta` of a request's params (`undefined` when absent): one own-property read.
 *
 * @since 0.3.0
 */
export const metaOfParams = (params: unknown): unknown => own(params, "_meta")

/**
 * A settlement as the x402 MCP transport's `SettlementResponse` JSON: the defined fields only.
 *
 * @since 0.3.0
 */
export const settlementJson = (settlement: X402.SettleResponse): { readonly [key: string]: unknown } => {
  const json: Record<string, unknown> = {
    success: settlement.success,
    transaction: settlement.transaction,
    network: settlement.network
  }
  if (settlement.payer !== undefined) json.payer = settlement.payer
  if (settlement.errorReason !== undefined) json.errorReason = settlement.errorReason
  if (settlement.creditsRedeemed !== undefined) json.creditsRedeemed = settlement.creditsRedeemed
  if (settlement.remainingBalance !== undefined) json.remainingBalance = settlement.remainingBalance
  if (settlement.orderTx !== undefined) json.orderTx = settlement.orderTx
  return json
}

/**
 * A result's `_meta` with the receipt added under both keys, its other own entries kept (a
 * `__proto__` key of the caller's result is not copied into a prototype).
 *
 * @since 0.3.0
 */
export const withReceiptMeta = (
  meta: unknown,
  settlement: X402.SettleResponse
): { readonly [key: string]: unknown } => {
  const out: Record<string, unknown> = {}
  if (isRecord(meta)) {
    for (const key of Object.keys(meta)) if (key !== "__proto__") out[key] = meta[key]
  }
  out[PAYMENT_RESPONSE_META_KEY] = settlementJson(settlement)
  out[PYTHON_META_KEY] = X402.metaOf(settlement)
  return out
}

/**
 * A tool result with the receipt in its `_meta` (`result` must be an object; anything else is
 * returned as is).
 *
 * @since 0.3.0
 */
export const resultWithReceipt = <A>(result: A, settlement: X402.SettleResponse): A =>
  isRecord(result) ? { ...result, _meta: withReceiptMeta(own(result, "_meta"), settlement) } as A : result

/**
 * The PaymentRequired as the x402 MCP transport's `structuredContent`: its JSON (already encoded,
 * see `X402.PaymentRequired`), with `error` saying why.
 *
 * @since 0.3.0
 */
export const paymentRequiredContent = (
  encoded: { readonly [key: string]: unknown },
  message: string | undefined
): { readonly [key: string]: unknown } => (message !== undefined ? { ...encoded, error: message } : encoded)
