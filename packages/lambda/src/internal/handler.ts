import * as Adapter from "@effect-x402/core/Adapter"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { redact, redactCause } from "./redact.js"

/**
 * The user's handler failed, threw, rejected, died, or answered something that is not an answer.
 * Never settled. It holds the failure already redacted (`message`, and `detail`: the rendered
 * cause): it flows through the pipeline's spans and errors, where an exception's raw text (a URL
 * with an API key in it) must never be.
 */
export class HandlerFailed extends Data.TaggedError("HandlerFailed")<{
  readonly message: string
  readonly detail: string
}> {}

/** A `HandlerFailed` for a failure cause, redacted. */
export const handlerFailed = (message: string, cause: Cause.Cause<unknown>): HandlerFailed =>
  new HandlerFailed({ message: redact(message), detail: redactCause(cause) })

/** A readable message of whatever a handler failed with, like Python's `str(e)`. */
export const messageOf = (error: unknown): string => {
  if (error instanceof Error && error.message.length > 0) return error.message
  if (typeof error === "string" && error.length > 0) return error
  if (typeof error === "object" && error !== null) {
    const message = (error as { message?: unknown }).message
    if (typeof message === "string" && message.length > 0) return message
    const tag = (error as { _tag?: unknown })._tag
    if (typeof tag === "string") return tag
  }
  return "Internal error"
}

/** The message of a failure cause: the first error or defect, or an interruption. */
export const messageOfCause = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return messageOf(failure.value)
  const defect = Cause.dieOption(cause)
  if (Option.isSome(defect)) return messageOf(defect.value)
  return Cause.isInterruptedOnly(cause) ? "The handler was interrupted" : "Internal error"
}

/**
 * Runs a handler that may return an Effect, a Promise or a plain value (or throw), and reads its
 * result with `read` (`Left`: the result is not an answer): every way it can fail becomes a
 * `HandlerFailed`. One Effect operation for the run and the reading, on every paid call.
 */
export const invoke = <A, R>(
  thunk: () => unknown,
  read: (value: unknown) => Either.Either<A, string>,
  /** The message of a result `read` refuses (default: its reason); the reason is the detail. */
  invalidMessage?: string
): Effect.Effect<A, HandlerFailed, R> =>
  Effect.matchCauseEffect(Adapter.fromCallback(thunk) as Effect.Effect<unknown, unknown, R>, {
    onFailure: (cause) => Effect.fail(handlerFailed(messageOfCause(cause), cause)),
    onSuccess: (value) => {
      const answer = read(value)
      return Either.isRight(answer)
        ? Effect.succeed(answer.right)
        : Effect.fail(handlerFailed(invalidMessage ?? answer.left, Cause.die(new Error(answer.left))))
    }
  })
