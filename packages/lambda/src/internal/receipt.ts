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
  let json = `{"success":${success},"transactionHash":${JSON.stringify(transaction)},"network":${
    JSON.stringify(network)
  }`
  if (creditsRedeemed !== undefined) json += `,"creditsRedeemed":${JSON.stringify(creditsRedeemed)}`
  if (remainingBalance !== undefined) json += `,"remainingBalance":${JSON.stringify(remainingBalance)}`
  if (errorReason !== undefined) json += `,"errorReason":${JSON.stringify(errorReason)}`
  return X402.encodeBase64(`${json}}`)
}

const optionalString = (value: unknown): boolean => value === undefined || typeof value === "string"

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
  if (errorReason !== undefined) json += `,"errorReason":${JSON.stringify(errorReason)}`
  if (payer !== undefined) json += `,"payer":${JSON.stringify(payer)}`
  json += `,"transaction":${JSON.stringify(transaction)},"network":${JSON.stringify(network)}`
  if (creditsRedeemed !== undefined) json += `,"creditsRedeemed":${JSON.stringify(creditsRedeemed)}`
  if (remainingBalance !== undefined) json += `,"remainingBalance":${JSON.stringify(remainingBalance)}`
  if (orderTx !== undefined) json += `,"orderTx":${JSON.stringify(orderTx)}`
  return X402.encodeBase64(`${json}}`)
}
