import * as X402 from "@effect-x402/core/X402"

/**
 * The `payment-response` receipt header of a settlement: `X402.ReceiptHeader.encode(X402.receiptOf(s))`,
 * byte for byte, without the Schema encoder on the hot path. The receipt is one the library builds
 * from a decoded settle answer, so its fields are already of the wire types; the key order is the
 * `Receipt` schema's (what `Schema.encodeSync` writes). Anything off-type (a facilitator that broke
 * its types at runtime) goes through the Schema codec, which refuses it as before.
 */
export const receiptHeader = (settlement: X402.SettleResponse): string => {
  const { creditsRedeemed, errorReason, network, remainingBalance, success, transaction } = settlement
  if (
    typeof success !== "boolean" || typeof transaction !== "string" || typeof network !== "string" ||
    !optionalString(creditsRedeemed) || !optionalString(remainingBalance) || !optionalString(errorReason)
  ) {
    return X402.ReceiptHeader.encode(X402.receiptOf(settlement))
  }
  let json = `{"success":${success},"transactionHash":${quote(transaction)},"network":${quote(network)}`
  if (creditsRedeemed !== undefined) json += `,"creditsRedeemed":${quote(creditsRedeemed)}`
  if (remainingBalance !== undefined) json += `,"remainingBalance":${quote(remainingBalance)}`
  if (errorReason !== undefined) json += `,"errorReason":${quote(errorReason)}`
  return X402.encodeBase64(`${json}}`)
}

const optionalString = (value: unknown): boolean => value === undefined || typeof value === "string"

// A JSON string literal, byte for byte `JSON.stringify`'s: receipt fields (hex hashes, CAIP-2
// networks, decimal amounts, reason codes) are printable ASCII with no quote or backslash, which
// need no escaping, and a template is several times cheaper than `JSON.stringify` for them.
const UNESCAPED = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/
const quote = (text: string): string => UNESCAPED.test(text) ? `"${text}"` : JSON.stringify(text)

/**
 * The `payment-response` header of a plain-HTTP answer: `X402.SettleResponseHeader.encode(s)`,
 * byte for byte (the `SettleResponse` schema's key order), without the Schema encoder on the hot
 * path; anything off its types goes through the codec, which refuses it as before.
 */
export const settleResponseHeader = (settlement: X402.SettleResponse): string => {
  const { creditsRedeemed, errorReason, network, orderTx, payer, remainingBalance, success, transaction } = settlement
  if (
    typeof success !== "boolean" || typeof transaction !== "string" || typeof network !== "string" ||
    !optionalString(errorReason) || !optionalString(payer) || !optionalString(creditsRedeemed) ||
    !optionalString(remainingBalance) || !optionalString(orderTx)
  ) {
    return X402.SettleResponseHeader.encode(settlement)
  }
  let json = `{"success":${success}`
  if (errorReason !== undefined) json += `,"errorReason":${quote(errorReason)}`
  if (payer !== undefined) json += `,"payer":${quote(payer)}`
  json += `,"transaction":${quote(transaction)},"network":${quote(network)}`
  if (creditsRedeemed !== undefined) json += `,"creditsRedeemed":${quote(creditsRedeemed)}`
  if (remainingBalance !== undefined) json += `,"remainingBalance":${quote(remainingBalance)}`
  if (orderTx !== undefined) json += `,"orderTx":${quote(orderTx)}`
  return X402.encodeBase64(`${json}}`)
}
