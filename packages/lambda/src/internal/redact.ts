/**
 * What the three adapters (`requiresPayment`, `interceptor`, `httpHandler`) do with internal detail:
 * the caller gets a generic message and a correlation id, the log gets the detail under the same id,
 * with the values that could be secrets taken out (docs/protocol.md §3, "Errors").
 */
import type * as Credits from "@effect-x402/core/Credits"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Crypto from "node:crypto"

// URL queries (an API key in `?api_key=`), `Bearer`/`Basic` credentials, and `key=value` pairs whose
// key names a secret: the log keeps the shape of the message, never those values.
const URL_QUERY = /(https?:\/\/[^\s?#"']*)\?[^\s#"']*/gi
const URL_USERINFO = /(https?:\/\/)[^\s/@"']+@/gi
const AUTH_SCHEME = /\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+/gi
// The quotes may come escaped (`\"`, `\\\"`) when a JSON text is rendered inside another one.
const SECRET_PAIR =
  /\b(api[-_]?key|apikey|access[-_]?token|token|secret|password|passwd|signature|authorization|x402AccessToken|payment-signature)((?:\\*["'])?\s*[:=]\s*(?:\\*["'])?)[^\s&"',;\\]+/gi

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

const isThenable = (u: unknown): u is PromiseLike<unknown> =>
  typeof u === "object" && u !== null && typeof (u as { then?: unknown }).then === "function"

const redactedError = (error: unknown): Error =>
  new Error(
    redact(
      error instanceof Error ? error.message : typeof error === "string" ? error : "the credits function failed"
    )
  )

/**
 * A credits policy whose failures carry only redacted text: what a policy throws, rejects, fails or
 * dies with becomes the detail of an `InvalidCredits`, which travels through the pipeline's spans
 * and errors. A fixed amount is returned as it is.
 */
export const redactedPolicy = <Req, R>(
  policy: Credits.Policy<Req, R> | undefined
): Credits.Policy<Req, R> | undefined => {
  if (typeof policy !== "function") return policy
  return (request) => {
    let out: ReturnType<typeof policy>
    try {
      out = policy(request)
    } catch (error) {
      throw redactedError(error)
    }
    if (Effect.isEffect(out)) {
      return Effect.catchAllCause(out, (cause) => Effect.fail(redactedError(Cause.squash(cause))))
    }
    if (isThenable(out)) {
      return Promise.resolve(out).catch((error: unknown) => {
        throw redactedError(error)
      })
    }
    return out
  }
}
