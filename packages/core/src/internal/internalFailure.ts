import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

// URL queries (an API key in `?api_key=`) and URL credentials of any scheme, `Bearer`/`Basic`
// credentials, and `key=value` pairs whose key names a secret. The quotes around a pair may come
// escaped (`\"`, `\\\"`) when a JSON text is rendered inside another one.
const URL_QUERY = /\b([a-z][a-z0-9+.-]*:\/\/[^\s?#"'<>]*)\?[^\s#"'<>]*/gi
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@"'<>]+@/gi
const AUTH_SCHEME = /\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+/gi
const SECRET_PAIR =
  /\b([a-z0-9_-]*(?:api[-_]?key|token|secret|password|passwd|signature|credential|session|authorization)[a-z0-9_-]*)((?:\\*["'])?\s*[:=]\s*(?:\\*["'])?)[^\s&"',;}\\]+/gi

/**
 * Text about a failure inside the server (a handler's error, a credits policy's) may carry secrets: a
 * URL with an API key in its query, a bearer token, `key=value` credentials. The log keeps the shape
 * of the message, never those values. The one redaction rule of every adapter (public as
 * `Adapter.redact`).
 *
 * @internal
 */
export const redact = (text: string): string =>
  text
    .replace(URL_QUERY, "$1?<redacted>")
    .replace(URL_USERINFO, "$1<redacted>@")
    .replace(AUTH_SCHEME, "$1 <redacted>")
    .replace(SECRET_PAIR, "$1$2<redacted>")

/**
 * A failure cause as the log shows it (messages and stack), redacted.
 *
 * @internal
 */
export const redactCause = (cause: Cause.Cause<unknown>): string => {
  try {
    return redact(Cause.pretty(cause))
  } catch {
    // A cause whose error throws from its own `message` or `toString`: nothing of it is shown.
    return "<a failure that could not be rendered>"
  }
}

/**
 * The id a caller quotes to the operator for a failure whose detail went to the log only: the
 * current trace id (the span the server opened for the request), else a fresh one.
 *
 * @internal
 */
export const correlationId: Effect.Effect<string> = Effect.map(
  Effect.option(Effect.currentSpan),
  Option.match({
    onNone: () => crypto.randomUUID(),
    onSome: (span) => span.traceId
  })
)

/**
 * Logs a failure inside the server, redacted, under its correlation id.
 *
 * @internal
 */
export const logInternal = (what: string, id: string, cause: Cause.Cause<unknown>): Effect.Effect<void> =>
  Effect.annotateLogs(
    Effect.logError(`x402: ${what} (correlation id ${id})`, redactCause(cause)),
    "correlationId",
    id
  )

/**
 * The generic message of a failure inside the server; the detail is in the log.
 *
 * @internal
 */
export const INTERNAL_MESSAGE = "Internal error; nothing was charged"

/**
 * What a paid handler's failure or defect becomes once its detail is in the log: nothing of the
 * original travels further (answers, spans, the platform's own logs), only the correlation id.
 *
 * @internal
 */
export class InternalFailure extends Data.TaggedError("@effect-x402/core/InternalFailure")<{
  readonly requestId: string
  readonly what: string
}> {
  override get message(): string {
    return `${this.what} (correlation id ${this.requestId})`
  }
}

/**
 * Runs a paid handler so that its failures and defects are logged (redacted) and replaced by an
 * `InternalFailure`; `keep` may turn a cause into an answer the handler chose instead (e.g. an
 * `HttpServerRespondable` error's response). Interruptions stay interruptions.
 *
 * @internal
 */
export const sealFailures = <A, E, R>(
  work: Effect.Effect<A, E, R>,
  what: string,
  keep: (cause: Cause.Cause<E>) => Effect.Effect<Option.Option<A>> = () => Effect.succeedNone
): Effect.Effect<A, InternalFailure, R> =>
  Effect.catchAllCause(work, (cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.failCause(cause as Cause.Cause<never>)
      : Effect.flatMap(keep(cause), (kept) =>
        Option.isSome(kept)
          ? Effect.succeed(kept.value)
          : Effect.flatMap(correlationId, (requestId) =>
            Effect.zipRight(
              logInternal(what, requestId, cause),
              Effect.fail(new InternalFailure({ requestId, what }))
            ))))

/**
 * The generic answer to whatever still fails under a paywall: an `InternalFailure` (its detail is
 * already in the log) keeps its id; anything else (a defect of the pipeline itself) is logged,
 * redacted, under a new one. Interruptions stay interruptions.
 *
 * @internal
 */
export const answerInternal = <A>(
  cause: Cause.Cause<unknown>,
  answer: (requestId: string) => A,
  what: string
): Effect.Effect<A> => {
  if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && failure.value instanceof InternalFailure) {
    return Effect.succeed(answer(failure.value.requestId))
  }
  return Effect.flatMap(correlationId, (requestId) => Effect.as(logInternal(what, requestId, cause), answer(requestId)))
}
