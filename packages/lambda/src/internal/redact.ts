/**
 * What the three adapters (`requiresPayment`, `interceptor`, `httpHandler`) do with internal detail:
 * the caller gets a generic message and a correlation id, the log gets the detail under the same id,
 * with the values that could be secrets taken out (docs/protocol.md §3, "Errors").
 */
import * as Cause from "effect/Cause"
import * as Crypto from "node:crypto"

// URL queries (an API key in `?api_key=`), `Bearer`/`Basic` credentials, and `key=value` pairs whose
// key names a secret: the log keeps the shape of the message, never those values.
const URL_QUERY = /(https?:\/\/[^\s?#"']*)\?[^\s#"']*/gi
const URL_USERINFO = /(https?:\/\/)[^\s/@"']+@/gi
const AUTH_SCHEME = /\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+/gi
const SECRET_PAIR =
  /\b(api[-_]?key|apikey|access[-_]?token|token|secret|password|passwd|signature|authorization|x402AccessToken|payment-signature)(["']?\s*[:=]\s*["']?)[^\s&"',;]+/gi

/**
 * A text with every URL query, URL credential, `Bearer`/`Basic` value and secret-named `key=value`
 * replaced by `<redacted>`.
 */
export const redact = (text: string): string =>
  text
    .replace(URL_QUERY, "$1?<redacted>")
    .replace(URL_USERINFO, "$1<redacted>@")
    .replace(AUTH_SCHEME, "$1 <redacted>")
    .replace(SECRET_PAIR, "$1$2<redacted>")

/** A failure cause as the log shows it (messages and stack), redacted. */
export const redactCause = (cause: Cause.Cause<unknown>): string => {
  try {
    return redact(Cause.pretty(cause))
  } catch {
    // A cause whose error throws from its own `message` or `toString`: nothing of it is shown.
    return "<a failure that could not be rendered>"
  }
}

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
