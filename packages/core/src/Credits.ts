/**
 * How many credits a call costs: the policy (a fixed amount or a function of the request), the
 * validation every amount goes through, and where a handler's answer may override the amount to burn.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { fromCallback } from "./internal/callback.js"
import { redact } from "./internal/internalFailure.js"
import { own } from "./internal/json.js"
import { InvalidCredits } from "./PaymentError.js"

/**
 * What a credits function may answer; validated at run time all the same.
 *
 * @since 0.1.0
 * @category models
 */
export type Amount = number | string | bigint

/**
 * A credits policy: a fixed amount, or a function of the request returning an amount, a Promise
 * of one, or an Effect of one (whose requirements `R` the caller provides).
 *
 * @since 0.1.0
 * @category models
 */
export type Policy<Req, R = never> =
  | number
  | ((request: Req) => Amount | PromiseLike<Amount> | Effect.Effect<Amount, unknown, R>)

const DECIMAL = /^[0-9]{1,16}$/

/**
 * Validates a credit amount: a non-negative safe integer, or a decimal string of one. Anything
 * else (negative, fraction, NaN, Infinity, too large, not a number) is an `InvalidCredits`.
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (value: unknown, source = "credits"): Either.Either<number, InvalidCredits> => {
  const fail = (reason: InvalidCredits["reason"], detail: string) =>
    Either.left(new InvalidCredits({ reason, source, detail }))
  if (typeof value === "number") {
    if (Number.isNaN(value)) return fail("NotAnAmount", "NaN is not an amount")
    if (value < 0) return fail("Negative", "amount is negative")
    if (!Number.isFinite(value)) return fail("TooLarge", "amount is infinite")
    if (!Number.isInteger(value)) return fail("NotInteger", "amount is not a whole number")
    if (!Number.isSafeInteger(value)) return fail("TooLarge", "amount exceeds the largest safe integer")
    return Either.right(value)
  }
  if (typeof value === "bigint") {
    if (value < 0n) return fail("Negative", "amount is negative")
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) return fail("TooLarge", "amount exceeds the largest safe integer")
    return Either.right(Number(value))
  }
  if (typeof value === "string") {
    if (DECIMAL.test(value)) {
      const n = Number(value)
      return Number.isSafeInteger(n) ? Either.right(n) : fail("TooLarge", "amount exceeds the largest safe integer")
    }
    if (/^\s*-/.test(value)) return fail("Negative", "amount is negative")
    if (/^[0-9]{17,}$/.test(value)) return fail("TooLarge", "amount exceeds the largest safe integer")
    return fail("NotAnAmount", "string is not a decimal integer")
  }
  return fail("NotAnAmount", `a ${value === null ? "null" : typeof value} is not an amount`)
}

/**
 * Validates a fixed amount at configuration time; throws a `RangeError` for a bad one, since a
 * misconfigured price should stop the cold start rather than surface on the first paid call.
 *
 * @since 0.1.0
 * @category validation
 */
export const validateSync = (value: unknown, source = "credits"): number =>
  Either.getOrThrowWith(validate(value, source), (error) => new RangeError(error.message))

/**
 * Resolves a policy for one request to a validated amount. A policy that throws, rejects or fails
 * is an `InvalidCredits` with reason `PolicyFailed`.
 *
 * @since 0.1.0
 * @category resolution
 */
export const resolve = <Req, R = never>(
  policy: Policy<Req, R>,
  request: Req
): Effect.Effect<number, InvalidCredits, R> => {
  if (typeof policy === "number") return validate(policy)
  const policyFailed = (cause: unknown) =>
    new InvalidCredits({
      reason: "PolicyFailed",
      source: "credits policy",
      // The policy's own words may carry secrets (a pricing service's URL and key): redacted at the
      // source, since this detail reaches logs and spans (never an answer).
      detail: cause instanceof Error ? redact(cause.message) : "the credits function failed"
    })
  return Effect.flatMap(
    Effect.mapError(fromCallback(() => policy(request)), policyFailed),
    (amount) => validate(amount, "credits policy")
  )
}

const present = (u: unknown): boolean => u !== undefined && u !== null

/**
 * Name of the response header through which a target may ask for a different amount (any case).
 *
 * @since 0.1.0
 * @category constants
 */
export const CREDITS_HEADER = "x-credits-to-charge"

/**
 * Where a settle amount may come from, in the order they are searched.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChargeSource {
  /** An amount the server's own code asked for (`PaymentContext.chargeCredits`): wins over all others. */
  readonly requested?: unknown
  /** The MCP result (`body.result`, or the handler's bare result). */
  readonly result?: unknown
  /** Response headers (interceptor only). */
  readonly headers?: unknown
  /** The whole response body. */
  readonly body?: unknown
}

const headerValue = (headers: unknown, name: string): unknown => {
  if (typeof headers !== "object" || headers === null) return undefined
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === name) return (headers as Record<string, unknown>)[key]
  }
  return undefined
}

const chargeInContent = (result: unknown): unknown => {
  const content = own(result, "content")
  if (!Array.isArray(content)) return undefined
  for (const item of content) {
    const text = own(item, "text")
    if (own(item, "type") !== "text" || typeof text !== "string") continue
    // Cheap test first: parsing every text item of every answer would cost more than the call.
    if (!text.includes("creditsToCharge")) continue
    try {
      const value = own(JSON.parse(text), "creditsToCharge")
      if (present(value)) return value
    } catch {
      // not JSON: not an override
    }
  }
  return undefined
}

/**
 * Which answer-borne sources may set the settle amount beyond the trusted ones.
 *
 * @since 0.2.0
 * @category models
 */
export interface ChargeRules {
  /**
   * Also read `creditsToCharge` from the first JSON `content[]` text item and from the body's top
   * level, as the Python SDK does. Off by default: a tool whose output text echoes, fetches or
   * stores caller-chosen text would let the caller choose its own price.
   */
  readonly fromContent?: boolean | undefined
}

/**
 * Finds the amount a response asks to be charged, first found wins: the server code's `requested`
 * amount, `result._meta.creditsToCharge`, the `X-Credits-To-Charge` header; then, only when
 * `rules.fromContent` is set, the first `content[]` text item whose text is JSON with
 * `creditsToCharge`, then the body's top-level `creditsToCharge`. The value is returned raw.
 *
 * @since 0.1.0
 * @category extraction
 */
export const findCharge = (source: ChargeSource, rules?: ChargeRules): Option.Option<unknown> => {
  if (present(source.requested)) return Option.some(source.requested)
  const meta = own(own(source.result, "_meta"), "creditsToCharge")
  if (present(meta)) return Option.some(meta)
  const header = headerValue(source.headers, CREDITS_HEADER)
  if (present(header)) return Option.some(header)
  if (rules?.fromContent !== true) return Option.none()
  const content = chargeInContent(source.result)
  if (present(content)) return Option.some(content)
  const top = own(source.body, "creditsToCharge")
  return present(top) ? Option.some(top) : Option.none()
}

/**
 * The validated amount to settle: the response's override when there is one, else the default.
 *
 * @since 0.1.0
 * @category extraction
 */
export const settleAmount = (
  source: ChargeSource,
  fallback: number,
  rules?: ChargeRules
): Either.Either<number, InvalidCredits> =>
  Option.match(findCharge(source, rules), {
    onNone: () => Either.right(fallback),
    onSome: (value) => validate(value, "creditsToCharge")
  })
