/**
 * User callbacks (credits policies, hooks, handlers) may answer a plain value, a Promise or an
 * Effect, or throw: the one rule that turns any of these into an Effect.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Predicate from "effect/Predicate"
import type * as Credits from "../Credits.js"
import { redact } from "./internalFailure.js"

/**
 * Runs `thunk` as an Effect: its Effect as it is, a thenable awaited, a plain value as a success.
 * A throw or a rejection is a failure carrying what was thrown; an Effect's own failures and
 * defects stay as they are.
 *
 * @internal
 */
export const fromCallback = <A, E = never, R = never>(
  thunk: () => A | PromiseLike<A> | Effect.Effect<A, E, R>
): Effect.Effect<A, unknown, R> =>
  Effect.suspend((): Effect.Effect<A, unknown, R> => {
    let out: A | PromiseLike<A> | Effect.Effect<A, E, R>
    try {
      out = thunk()
    } catch (error) {
      return Effect.fail(error)
    }
    if (Effect.isEffect(out)) return out as Effect.Effect<A, E, R>
    if (Predicate.isPromiseLike(out)) {
      const promise = out as PromiseLike<A>
      return Effect.tryPromise({ try: () => Promise.resolve(promise), catch: identity })
    }
    return Effect.succeed(out as A)
  })

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
 *
 * @internal
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
    if (Predicate.isPromiseLike(out)) {
      return Promise.resolve(out).catch((error: unknown) => {
        throw redactedError(error)
      })
    }
    return out
  }
}
