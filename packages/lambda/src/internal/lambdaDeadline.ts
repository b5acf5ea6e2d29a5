import * as Paywall from "@effect-x402/core/Paywall"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Json from "./json.js"

/**
 * A call's deadline: the Lambda's remaining time (`context.getRemainingTimeInMillis()`), less the
 * margin the answer needs, so that a slow verify or settle ends in the library's own answer instead
 * of AWS ending the function with the credits already burned. `undefined` without a usable context.
 */
export const lambdaDeadline = (context: unknown): Effect.Effect<number | undefined> =>
  Effect.map(Clock.currentTimeMillis, (now) => lambdaDeadlineAt(context, now))

/** `lambdaDeadline` at a known time (the fiber's clock, read by the caller): no Effect. */
export const lambdaDeadlineAt = (context: unknown, now: number): number | undefined => {
  const remaining = Json.own(context, "getRemainingTimeInMillis")
  if (typeof remaining !== "function") return undefined
  try {
    const millis: unknown = remaining.call(context)
    return typeof millis === "number" && Number.isFinite(millis) ? Paywall.deadlineOf(now, millis) : undefined
  } catch {
    return undefined
  }
}
