/**
 * The x402 MCP in-band format on AgentCore answers (docs/mcp.md), through core's one reader and
 * writer of it (`@effect-x402/core/McpInBand`): the token from `params._meta` or a header, the
 * PaymentRequired in the JSON-RPC answer beside the `payment-required` header, and the receipt in
 * `_meta["x402/payment-response"]` beside the `payment-response` header and `_meta.x402`.
 */
import * as Adapter from "@effect-x402/core/Adapter"
import * as InBand from "@effect-x402/core/McpInBand"
import type * as PaymentError from "@effect-x402/core/PaymentError"
import type * as X402 from "@effect-x402/core/X402"
import * as AgentCore from "../AgentCore.js"
import { isRecord, own } from "./json.js"

/** The token of a call, from `params._meta["x402/payment"]` and the token headers (see `InBand.resolveToken`). */
export const tokenOfCall = (call: AgentCore.Call, tokenHeaders: ReadonlyArray<string>): InBand.Resolved =>
  InBand.resolveToken(InBand.metaOfParams(call.request.params), AgentCore.tokenOf(call.headers, tokenHeaders))

// The answer with its JSON-RPC `result` replaced; an answer without an object result is unchanged.
const mapResult = (
  answer: AgentCore.Answer,
  f: (result: { readonly [key: string]: unknown }) => { readonly [key: string]: unknown }
): AgentCore.Answer => {
  const body = answer.body
  const result = own(body, "result")
  return isRecord(body) && isRecord(result)
    ? { ...answer, body: { ...body, result: f(result) } }
    : answer
}

/**
 * `AgentCore.enrich` (the `payment-response` header and `_meta.x402`) and the receipt in
 * `_meta["x402/payment-response"]`, both from the settlement as the caller may see it.
 */
export const withReceipt = (answer: AgentCore.Answer, received: X402.SettleResponse): AgentCore.Answer => {
  const settlement = AgentCore.safeSettlement(received)
  const enriched = AgentCore.enrich(answer, settlement)
  // `enrich` answers a new body whose result and `_meta` it has just copied (never the handler's own
  // objects) when the result is an object: the receipt joins that fresh `_meta` in place, without
  // copying the body a second time on every paid call.
  const meta = own(own(enriched.body, "result"), "_meta")
  if (enriched.body !== answer.body && isRecord(meta)) {
    ;(meta as Record<string, unknown>)[InBand.PAYMENT_RESPONSE_META_KEY] = InBand.settlementJson(settlement)
  }
  return enriched
}

/**
 * The default answer to a payment failure, with the in-band format added: the PaymentRequired as
 * the result's `structuredContent` where the caller may pay (no token, a refused token, a refused
 * settlement), and the failed settlement's receipt in `_meta["x402/payment-response"]`.
 */
export const withFailure = (answer: AgentCore.Answer, failure: PaymentError.PaymentFailure): AgentCore.Answer => {
  switch (failure._tag) {
    case "PaymentRequired":
      return withPaymentRequired(answer, failure.paymentRequired, failure.message)
    case "VerifyFailed":
      return failure.reason === "Invalid"
        ? withPaymentRequired(answer, failure.paymentRequired, failure.message)
        : answer
    case "SettleFailed": {
      const settlement = AgentCore.safeSettlement(Adapter.failedSettlement(failure))
      const receipted = mapResult(
        answer,
        (result) => ({ ...result, _meta: InBand.withReceiptMeta(own(result, "_meta"), settlement) })
      )
      // The caller reads fixed words, never the facilitator's free text.
      return failure.reason === "Rejected"
        ? withPaymentRequired(receipted, failure.paymentRequired, AgentCore.settleFailureMessage(failure))
        : receipted
    }
  }
}

const withPaymentRequired = (
  answer: AgentCore.Answer,
  paymentRequired: X402.PaymentRequired,
  message: string
): AgentCore.Answer =>
  mapResult(answer, (result) => ({
    ...result,
    // Built by `X402.paymentRequired`: already plain JSON, no encoding on this path.
    structuredContent: InBand.paymentRequiredContent(
      paymentRequired as unknown as { readonly [key: string]: unknown },
      message
    )
  }))
