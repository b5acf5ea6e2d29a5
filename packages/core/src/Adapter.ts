/**
 * What the author of an adapter (a Lambda handler, a web framework, a transport) needs beside
 * `Paywall` and `CallSpan`: the one redaction rule for failure text that reaches logs, spans and
 * errors, and the one way a user callback (a credits policy, a hook, a handler) answering a value, a
 * Promise or an Effect becomes an Effect; and the transport-neutral pieces of an answer (the token
 * headers, the receipt header, the failed settlement of a withheld answer), so that one failure
 * reads the same on every transport.
 *
 * @since 0.2.0
 */
import type * as Cause from "effect/Cause"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Credits from "./Credits.js"
import * as answers from "./internal/answers.js"
import * as callback from "./internal/callback.js"
import * as internalFailure from "./internal/internalFailure.js"
import * as json from "./internal/json.js"
import type { PaymentFailure } from "./PaymentError.js"

/**
 * A text with every URL query and URL credential, `Bearer`/`Basic` value and secret-named
 * `key=value` (API keys, tokens, secrets, passwords, signatures, credentials, sessions,
 * authorization) replaced by `<redacted>`: what an adapter does to failure text before it reaches a
 * log, a span or an error.
 *
 * @since 0.2.0
 * @category redaction
 */
export const redact: (text: string) => string = internalFailure.redact

/**
 * A failure cause as the log shows it (messages and stack), redacted; a cause that cannot be
 * rendered (its error throws from `message`) shows nothing of itself.
 *
 * @since 0.2.0
 * @category redaction
 */
export const redactCause: (cause: Cause.Cause<unknown>) => string = internalFailure.redactCause

/**
 * A credits policy whose failures carry only redacted text: what a policy throws, rejects, fails or
 * dies with becomes the detail of an `InvalidCredits`, which travels through the pipeline's spans
 * and errors. A fixed amount (or none) is returned as it is.
 *
 * @since 0.2.0
 * @category redaction
 */
export const redactedPolicy: <Req, R>(
  policy: Credits.Policy<Req, R> | undefined
) => Credits.Policy<Req, R> | undefined = callback.redactedPolicy

/**
 * Runs a user callback that may answer a plain value, a Promise (any thenable) or an Effect, as an
 * Effect. A throw or a rejection is a failure carrying what was thrown; an Effect's own failures
 * and defects stay as they are. Nothing runs until the Effect does.
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromCallback: <A, E = never, R = never>(
  thunk: () => A | PromiseLike<A> | Effect.Effect<A, E, R>
) => Effect.Effect<A, unknown, R> = callback.fromCallback

/**
 * The header names tried for the token when none are configured (`payment-signature`).
 *
 * @since 0.2.0
 * @category answers
 */
export const DEFAULT_TOKEN_HEADERS: ReadonlyArray<string> = answers.DEFAULT_TOKEN_HEADERS

/**
 * The caller's token from request headers: the names are tried in order, each matched
 * case-insensitively, own properties only, never `Authorization`.
 *
 * @since 0.2.0
 * @category answers
 */
export const tokenFromHeaders: (
  headers: answers.HeadersInput,
  names?: ReadonlyArray<string>
) => Option.Option<Redacted.Redacted<string>> = answers.tokenFromHeaders

/**
 * The `success: false` settlement a withheld or released answer carries: the facilitator's own
 * answer when it gave one, else one whose `errorReason` names the failure (the facilitator's code
 * for a refusal, `invalid_payload` for a bad amount, `unexpected_settle_error` otherwise).
 *
 * @since 0.2.0
 * @category answers
 */
export const failedSettlement: typeof answers.failedSettlement = answers.failedSettlement

/**
 * The `payment-response` header of a settlement (base64 of the settle response).
 *
 * @since 0.2.0
 * @category answers
 */
export const receiptHeaders: typeof answers.receiptHeaders = answers.receiptHeaders

/**
 * Whether a value is a plain JSON object (not `null`, not an array): the first check of a reader
 * of caller input.
 *
 * @since 0.3.0
 * @category untrusted input
 */
export const isRecord: (u: unknown) => u is { readonly [key: string]: unknown } = json.isRecord

/**
 * The value of an own property of a JSON object, else `undefined`: never the prototype chain, so a
 * caller's `__proto__` or `constructor` key reads as absent; never a throw, whatever the input.
 *
 * @since 0.3.0
 * @category untrusted input
 */
export const own: (u: unknown, key: string) => unknown = json.own

/**
 * A transport-neutral HTTP answer: status, headers and a JSON body `{error, message, requestId?}`.
 *
 * @since 0.3.0
 * @category answers
 */
export type Answer = answers.Answer

/**
 * The HTTP answer to a payment failure: 402 with `payment-required` for no or a refused token (or a
 * refused settlement), 502 when the facilitator is unreachable or a settle outcome unknown, 500 for
 * an invalid amount; a withheld output's answer carries the `success: false` receipt. No secret in
 * it ever; a 500 says nothing of its cause.
 *
 * @since 0.3.0
 * @category answers
 */
export const failureAnswer: (error: PaymentFailure) => Answer = answers.failureAnswer

/**
 * Whether an answer's HTTP status is one that is charged: below 400 (an error status is never
 * settled).
 *
 * @since 0.3.0
 * @category answers
 */
export const isChargeable: (status: number) => boolean = answers.isChargeable
