/**
 * What the three adapters (`requiresPayment`, `interceptor`, `httpHandler`) do with internal detail:
 * the caller gets a generic message and a correlation id, the log gets the detail under the same id,
 * with the values that could be secrets taken out (docs/protocol.md §3, "Errors"). The redaction
 * rule itself is core's (`Adapter.redact`): one rule for every adapter.
 */
import * as Crypto from "node:crypto"

export { redact, redactCause, redactedPolicy } from "@effect-x402/core/Adapter"

/**
 * The id a caller quotes to the operator: the Lambda's `awsRequestId`, else a fresh UUID. The log
 * line with the detail carries the same id.
 */
export const requestIdOf = (context: unknown): string => {
  const id =
    typeof context === "object" && context !== null && Object.prototype.hasOwnProperty.call(context, "awsRequestId")
      ? (context as { readonly awsRequestId?: unknown }).awsRequestId
      : undefined
  // Only an id that looks like one goes back to the caller (it is echoed in the answer).
  return typeof id === "string" && /^[A-Za-z0-9._:-]{1,128}$/.test(id) ? id : Crypto.randomUUID()
}
