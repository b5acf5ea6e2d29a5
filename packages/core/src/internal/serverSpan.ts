import * as Effect from "effect/Effect"

/**
 * The platform's HTTP server span records every request header it is not told to redact, and it
 * does not know the x402 token headers: overwrite those attributes on the request's span, while it
 * is still open, so that the token is never exported with it.
 *
 * @internal
 */
export const redactTokenHeaders = (
  headers: { readonly [name: string]: unknown } | null | undefined,
  names: ReadonlyArray<string>
): Effect.Effect<void> => {
  if (typeof headers !== "object" || headers === null) return Effect.void
  const present = Object.keys(headers)
    .map((key) => key.toLowerCase())
    .filter((key) => names.some((name) => name.toLowerCase() === key))
  if (present.length === 0) return Effect.void
  return Effect.currentSpan.pipe(
    Effect.flatMap((span) =>
      Effect.sync(() => {
        for (const name of present) span.attribute(`http.request.header.${name}`, "<redacted>")
      })
    ),
    Effect.ignore
  )
}
