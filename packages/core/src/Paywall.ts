/**
 * The payment pipeline: `verify` the caller's token, run the paid work, `settle` its credits, with
 * hooks and a settle-failure policy. Transport-agnostic: the Lambda and HTTP adapters call it.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Tracer from "effect/Tracer"
import * as Credits from "./Credits.js"
import { Facilitator } from "./Facilitator.js"
import { fromCallback } from "./internal/callback.js"
import * as CallSpan from "./internal/callSpan.js"
import * as Deadline from "./internal/deadline.js"
import {
  FacilitatorError,
  type InvalidCredits,
  type PaymentFailure,
  PaymentRequired,
  SettleFailed,
  VerifyFailed
} from "./PaymentError.js"
import * as PaymentMetrics from "./PaymentMetrics.js"
import * as X402 from "./X402.js"

/**
 * What a hook may return: a value, a Promise of one, or an Effect of one.
 *
 * @since 0.1.0
 * @category models
 */
export type HookReturn<A> = A | PromiseLike<A> | Effect.Effect<A, unknown>

/**
 * Lifecycle hooks. A hook that throws, rejects or fails is logged and ignored: it never breaks
 * payment.
 *
 * @since 0.1.0
 * @category models
 */
export interface Hooks<Resp = unknown> {
  /** Before the facilitator is asked to verify. */
  readonly onBeforeVerify?: ((paymentRequired: X402.PaymentRequired) => HookReturn<unknown>) | undefined
  /** After a successful verification, before the paid work runs. */
  readonly onAfterVerify?: ((verification: X402.VerifyResponse) => HookReturn<unknown>) | undefined
  /** After a successful settlement, with the credits burned. */
  readonly onAfterSettle?: ((credits: number, settlement: X402.SettleResponse) => HookReturn<unknown>) | undefined
  /** On any payment failure; may return a response to send instead of the default one. */
  readonly onPaymentError?: ((error: PaymentFailure) => HookReturn<Resp | null | undefined>) | undefined
}

/**
 * What to do when settlement fails after the paid work ran: `withhold` the output (the default,
 * the x402 rule: no paid output without settlement) or `release` it anyway (the Python reference's
 * behaviour).
 *
 * @since 0.1.0
 * @category models
 */
export type SettleFailurePolicy = "withhold" | "release"

/**
 * How a paid operation is priced and advertised.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<Req = unknown, R = never, Resp = unknown> extends Hooks<Resp> {
  /** The plan to pay with; or use `planIds` to accept several. */
  readonly planId?: string | undefined
  readonly planIds?: ReadonlyArray<string> | undefined
  readonly agentId?: string | undefined
  /** Credits per call: used for verify and as the default settle amount. Default 1. */
  readonly credits?: Credits.Policy<Req, R> | undefined
  /** The protected resource's URL, advertised in `resource.url`. */
  readonly endpoint?: string | undefined
  /** Advertised as `extra.httpVerb` when given. */
  readonly httpVerb?: string | undefined
  /** Advertised network; by default the facilitator's choice (fiat provider or environment default). */
  readonly network?: string | undefined
  readonly scheme?: X402.Scheme | undefined
  readonly description?: string | undefined
  readonly mimeType?: string | undefined
  readonly onSettleFailure?: SettleFailurePolicy | undefined
  /**
   * Let the answer's content text and top-level body set the settle amount (`Credits.ChargeRules`),
   * as the Python SDK does. Off by default: caller-chosen text in an answer must not set the price.
   */
  readonly chargeFromContent?: boolean | undefined
}

/**
 * A validated paywall configuration.
 *
 * @since 0.1.0
 * @category models
 */
export interface Paywall<Req = unknown, R = never, Resp = unknown> {
  readonly options: Options<Req, R, Resp>
  readonly planIds: readonly [string, ...Array<string>]
  readonly credits: Credits.Policy<Req, R>
  readonly onSettleFailure: SettleFailurePolicy
}

/**
 * Validates options into a paywall. Throws a `RangeError` on a configuration that can never work
 * (no plan, a fixed price that is not a valid amount): better at cold start than at the first call.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Req = unknown, R = never, Resp = unknown>(
  options: Options<Req, R, Resp>
): Paywall<Req, R, Resp> => {
  const planIds = [...(options.planIds ?? []), ...(options.planId !== undefined ? [options.planId] : [])]
    .filter((id, i, all) => all.indexOf(id) === i)
  if (planIds.length === 0 || planIds.some((id) => typeof id !== "string" || id.length === 0)) {
    // Most often an unset environment variable (`planId: process.env.NVM_PLAN_ID ?? ""`): say so.
    throw new RangeError(
      "Paywall: no plan to charge with: planId (or planIds) is missing or empty; set it, e.g. " +
        "planId: process.env.NVM_PLAN_ID, and check that NVM_PLAN_ID is set in the function's environment"
    )
  }
  const credits = options.credits ?? 1
  if (typeof credits !== "function") Credits.validateSync(credits, "credits option")
  if (options.onSettleFailure !== undefined && !["withhold", "release"].includes(options.onSettleFailure)) {
    throw new RangeError(`Paywall: onSettleFailure must be "withhold" or "release"`)
  }
  return {
    options,
    planIds: planIds as unknown as Paywall["planIds"],
    credits,
    onSettleFailure: options.onSettleFailure ?? "withhold"
  }
}

/**
 * A caller's token, as it arrives: absent, empty, raw or already redacted.
 *
 * @since 0.1.0
 * @category models
 */
export type TokenInput = Redacted.Redacted<string> | string | null | undefined

/**
 * Normalises a token input: blank is absent.
 *
 * @since 0.1.0
 * @category tokens
 */
export const token = (input: TokenInput): Option.Option<Redacted.Redacted<string>> => {
  if (input === null || input === undefined) return Option.none()
  const raw = typeof input === "string" ? input : Redacted.value(input)
  const trimmed = raw.trim()
  return trimmed.length === 0 ? Option.none() : Option.some(Redacted.make(trimmed))
}

/**
 * A short, non-reversible fingerprint of a token, safe for logs and spans.
 *
 * @since 0.1.0
 * @category tokens
 */
export const fingerprint = (token: Redacted.Redacted<string>): string => {
  // FNV-1a, 32 bits: enough to tell tokens apart in a log, useless for recovering one.
  const value = Redacted.value(token)
  let hash = 0x811c9dc5
  for (let i = 0; i < value.length; i++) {
    hash ^= value.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return `tok_${(hash >>> 0).toString(16).padStart(8, "0")}`
}

/**
 * One call to protect.
 *
 * @since 0.1.0
 * @category models
 */
export interface Call<Req> {
  readonly request: Req
  readonly token: TokenInput
  /** The resource URL when the options name no `endpoint` (e.g. the Lambda's ARN). */
  readonly resourceUrl?: string | undefined
  /** The message of the PaymentRequired error when no token came. */
  readonly paymentRequiredMessage?: string | undefined
  /**
   * When the call must have its answer (epoch milliseconds): verify and settle are cut off there, so
   * a Lambda answers before AWS ends it (see `deadlineOf`). A settle cut off is an `Indeterminate`
   * outcome, answered as such, instead of a function killed with the credits burned.
   */
  readonly deadline?: number | undefined
}

/**
 * The deadline of a call that has `remainingMillis` left (a Lambda's
 * `context.getRemainingTimeInMillis()`), keeping `marginMillis` to build and send the answer.
 *
 * @since 0.2.0
 * @category deadlines
 */
export const deadlineOf = (now: number, remainingMillis: number, marginMillis = DEFAULT_DEADLINE_MARGIN): number =>
  now + Math.max(0, remainingMillis - marginMillis)

/**
 * What `deadlineOf` keeps by default for answering after the facilitator's last word.
 *
 * @since 0.2.0
 * @category deadlines
 */
export const DEFAULT_DEADLINE_MARGIN = 500

/**
 * A verified call: what settle needs later, even in another invocation.
 *
 * @since 0.1.0
 * @category models
 */
export interface Verified {
  readonly paymentRequired: X402.PaymentRequired
  readonly token: Redacted.Redacted<string>
  readonly verification: X402.VerifyResponse
  /** The credits verified, and the default amount to settle. */
  readonly credits: number
  readonly agentRequestId: string | undefined
  /** The call's deadline, carried to settle. */
  readonly deadline?: number | undefined
}

/**
 * What settle needs.
 *
 * @since 0.1.0
 * @category models
 */
export interface SettleInput {
  readonly paymentRequired: X402.PaymentRequired
  readonly token: Redacted.Redacted<string>
  readonly credits: number
  readonly agentRequestId?: string | undefined
  /** When settle must have answered (epoch milliseconds); see `Call.deadline`. */
  readonly deadline?: number | undefined
}

/**
 * The outcome of a protected call that produced output.
 * - `Settled`: the credits were burned;
 * - `NotCharged`: the work answered an error result (`isError`), so nothing was settled;
 * - `Released`: settlement failed and the `release` policy let the output go anyway.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome<A> =
  | {
    readonly _tag: "Settled"
    readonly value: A
    readonly verified: Verified
    readonly settlement: X402.SettleResponse
  }
  | { readonly _tag: "NotCharged"; readonly value: A; readonly verified: Verified }
  | { readonly _tag: "Released"; readonly value: A; readonly verified: Verified; readonly error: SettleFailed }

const DEFAULT_MESSAGE = "Payment required to access this resource"

/**
 * Runs a hook, isolated: whatever it does wrong is logged (never with a secret) and swallowed.
 *
 * @since 0.1.0
 * @category hooks
 */
export const runHook = <A>(
  name: string,
  thunk: () => HookReturn<A>
): Effect.Effect<Option.Option<A>> =>
  fromCallback(thunk as () => A | PromiseLike<A> | Effect.Effect<A, unknown>).pipe(
    Effect.map(Option.fromNullable),
    Effect.catchAllCause((cause) =>
      Effect.logWarning(`x402 hook ${name} failed; payment goes on`, cause).pipe(Effect.as(Option.none<A>()))
    )
  )

// What a paywall computes once rather than on every call: its plan list as a span attribute, and
// its PaymentRequired per (resource URL, networks). A PaymentRequired is plain immutable data, so a
// cached one is shared by every call that would have built an equal one.
interface Precomputed {
  readonly planIdsAttribute: string
  readonly requirements: Map<string, X402.PaymentRequired>
  // The last one-network PaymentRequired built, by its endpoint and network: a warm call's lookup
  // is two string comparisons, no key to build.
  last?: { readonly endpoint: string | undefined; readonly network: string; readonly built: X402.PaymentRequired }
}
const precomputed = new WeakMap<object, Precomputed>()
// What these helpers read of a paywall, whatever its type parameters.
interface Shape {
  readonly planIds: ReadonlyArray<string>
  readonly options: Pick<
    Options,
    "agentId" | "endpoint" | "httpVerb" | "scheme" | "description" | "mimeType" | "network"
  >
}
// A resource URL may come from the request (HTTP): past this many variants nothing more is kept.
const MAX_CACHED_REQUIREMENTS = 32

const precomputedOf = (paywall: Shape): Precomputed => {
  let found = precomputed.get(paywall)
  if (found === undefined) {
    found = { planIdsAttribute: paywall.planIds.join(","), requirements: new Map() }
    precomputed.set(paywall, found)
  }
  return found
}

const buildRequirements = (
  paywall: Shape,
  resourceUrl: string | undefined,
  networks: ReadonlyArray<string>
): X402.PaymentRequired => {
  const { options } = paywall
  const endpoint = options.endpoint ?? resourceUrl
  const precomputed = precomputedOf(paywall)
  const last = precomputed.last
  if (last !== undefined && networks.length === 1 && last.network === networks[0] && last.endpoint === endpoint) {
    return last.built
  }
  const cache = precomputed.requirements
  const key = `${endpoint ?? ""}\u0000${networks.join("\u0000")}`
  const cached = cache.get(key)
  if (cached !== undefined) {
    if (networks.length === 1) precomputed.last = { endpoint, network: networks[0], built: cached }
    return cached
  }
  const byPlan = networks.length === 1 ? undefined : new Map(paywall.planIds.map((planId, i) => [planId, networks[i]]))
  const built = X402.paymentRequired({
    planIds: paywall.planIds,
    agentId: options.agentId,
    endpoint,
    httpVerb: options.httpVerb,
    network: byPlan === undefined ? networks[0] : (planId) => byPlan.get(planId) ?? networks[0],
    scheme: options.scheme,
    description: options.description,
    mimeType: options.mimeType
  })
  if (cache.size < MAX_CACHED_REQUIREMENTS) cache.set(key, built)
  return built
}

/**
 * The PaymentRequired of a paywall: one `accepts` entry per plan, with the network the facilitator
 * names for each plan unless the options fix one.
 *
 * @since 0.1.0
 * @category requirements
 */
export const requirements = <Req, R, Resp>(
  paywall: Paywall<Req, R, Resp>,
  resourceUrl?: string
): Effect.Effect<X402.PaymentRequired, never, Facilitator> => {
  const { options } = paywall
  if (options.network !== undefined) {
    return Effect.sync(() => buildRequirements(paywall, resourceUrl, [options.network!]))
  }
  // One plan (the common case) needs no concurrency: forking a fiber for it was a third of a call's cost.
  if (paywall.planIds.length === 1) {
    return Effect.flatMap(
      Facilitator,
      (facilitator) =>
        Effect.map(
          facilitator.networkFor(paywall.planIds[0]),
          (network) => buildRequirements(paywall, resourceUrl, [network])
        )
    )
  }
  // Several plans: every lookup at once (a cold cache must not cost one round trip per plan), as
  // plain forks joined in order, several times cheaper than a concurrent forEach.
  return Effect.flatMap(Facilitator, (facilitator) =>
    facilitator.networksFor !== undefined
      ? Effect.map(facilitator.networksFor(paywall.planIds), (networks) =>
        buildRequirements(paywall, resourceUrl, networks))
      : Effect.flatMap(
        Effect.forEach(paywall.planIds, (planId) =>
          Effect.fork(facilitator.networkFor(planId))),
        (fibers) =>
          Effect.map(
            Effect.forEach(fibers, Fiber.join),
            (networks) => buildRequirements(paywall, resourceUrl, networks)
          )
      ))
}

// Span attributes at the span's creation: computed only when a tracer listens.
const callAttributes = (paywall: Shape, token: Redacted.Redacted<string> | undefined) => (): CallSpan.Attributes =>
  token !== undefined
    ? { "x402.plan_ids": precomputedOf(paywall).planIdsAttribute, "x402.token": fingerprint(token) }
    : { "x402.plan_ids": precomputedOf(paywall).planIdsAttribute }

/**
 * Verifies a call: no token → `PaymentRequired` (the facilitator's verify is not called); a token
 * the facilitator refuses → `VerifyFailed` `Invalid`; a facilitator that cannot answer →
 * `VerifyFailed` `Unavailable`. Runs `onBeforeVerify` and `onAfterVerify`.
 *
 * With a tracer installed, verify annotates the call's span (see `protect`), or opens
 * `Paywall.verify` when it runs on its own; with none, it makes no span at all.
 *
 * @since 0.1.0
 * @category pipeline
 */
export const verify = <Req, R, Resp>(
  paywall: Paywall<Req, R, Resp>,
  call: Call<Req>
): Effect.Effect<Verified, PaymentRequired | VerifyFailed, Facilitator | R> => {
  const token = callToken(call)
  return CallSpan.step(
    "Paywall.verify",
    callAttributes(paywall, token),
    (span, fiber) => verifyIn(paywall, call, token, span, facilitatorOf(fiber), Effect.succeed)
  )
}

const callToken = (call: Call<unknown>): Redacted.Redacted<string> | undefined =>
  Redacted.isRedacted(call.token) || typeof call.token === "string" ? tokenOf(call.token) : undefined

// The hot path, written as a few plain continuations rather than a generator: a warm paid call
// runs a handful of Effect operations here (each `yield*` of a generator cost one or more, and a
// generator object per call), the PaymentRequired comes synchronously from the facilitator's warm
// cache (`cachedNetworks`), a fixed price needs no Effect, and the facilitator is read once from
// the fiber's context. What follows a successful verification (`next`: `Effect.succeed` for
// `verify`, the paid work and settle for `protect`) runs from verify's own continuation, not from
// one more `flatMap` around it.
const verifyIn = <Req, R, Resp, B, E2, R2>(
  paywall: Paywall<Req, R, Resp>,
  call: Call<Req>,
  token: Redacted.Redacted<string> | undefined,
  span: Tracer.Span | undefined,
  facilitator: Facilitator.Service,
  next: (verified: Verified) => Effect.Effect<B, E2, R2>
): Effect.Effect<B, PaymentRequired | VerifyFailed | E2, R | R2> => {
  const known = knownRequirements(paywall, call.resourceUrl, facilitator)
  return known !== undefined
    ? verifyWith(paywall, call, token, span, facilitator, known, next)
    : Effect.flatMap(
      Effect.provideService(requirements(paywall, call.resourceUrl), Facilitator, facilitator),
      (paymentRequired) => verifyWith(paywall, call, token, span, facilitator, paymentRequired, next)
    )
}

const verifyWith = <Req, R, Resp, B, E2, R2>(
  paywall: Paywall<Req, R, Resp>,
  call: Call<Req>,
  token: Redacted.Redacted<string> | undefined,
  span: Tracer.Span | undefined,
  facilitator: Facilitator.Service,
  paymentRequired: X402.PaymentRequired,
  next: (verified: Verified) => Effect.Effect<B, E2, R2>
): Effect.Effect<B, PaymentRequired | VerifyFailed | E2, R | R2> => {
  if (token === undefined) {
    span?.attribute("x402.outcome", "payment_required")
    PaymentMetrics.recordRefused("missing_token")
    return Effect.fail(
      new PaymentRequired({
        reason: "MissingToken",
        paymentRequired,
        description: call.paymentRequiredMessage ?? DEFAULT_MESSAGE
      })
    )
  }
  const invalidAmount = (cause: InvalidCredits) => {
    PaymentMetrics.recordRefused("invalid_amount")
    return new VerifyFailed({ reason: "InvalidAmount", paymentRequired, cause })
  }
  // A fixed price is validated here without an Effect; a policy runs as one.
  const policy = paywall.credits
  if (typeof policy === "number") {
    const credits = Credits.validate(policy)
    return Either.isLeft(credits)
      ? Effect.fail(invalidAmount(credits.left))
      : askVerify(paywall, call, token, span, facilitator, paymentRequired, credits.right, next)
  }
  return Effect.flatMap(
    Effect.mapError(Credits.resolve(policy, call.request), invalidAmount),
    (credits) => askVerify(paywall, call, token, span, facilitator, paymentRequired, credits, next)
  )
}

const askVerify = <Req, R, Resp, B, E2, R2>(
  paywall: Paywall<Req, R, Resp>,
  call: Call<Req>,
  token: Redacted.Redacted<string>,
  span: Tracer.Span | undefined,
  facilitator: Facilitator.Service,
  paymentRequired: X402.PaymentRequired,
  credits: number,
  next: (verified: Verified) => Effect.Effect<B, E2, R2>
): Effect.Effect<B, VerifyFailed | E2, R2> => {
  span?.attribute("x402.credits", credits)
  const { onAfterVerify, onBeforeVerify } = paywall.options
  // Built where it runs (askVerify runs inside the step), after the hook when there is one: the
  // latency is the facilitator's alone.
  const ask = (): Effect.Effect<B, VerifyFailed | E2, R2> => {
    const startedAt = performance.now()
    return Effect.matchEffect<
      X402.VerifyResponse,
      FacilitatorError,
      never,
      never,
      VerifyFailed,
      never,
      B,
      VerifyFailed | E2,
      R2
    >(
      withDeadline(
        facilitator,
        facilitator.verify({
          paymentRequired,
          token,
          maxAmount: credits,
          deadline: deadlineFor(facilitator, call.deadline)
        }),
        "verify",
        call.deadline
      ),
      {
        onFailure: (cause) => {
          PaymentMetrics.recordLatency("verify", startedAt)
          PaymentMetrics.recordRefused("verify_unavailable")
          return Effect.fail(new VerifyFailed({ reason: "Unavailable", paymentRequired, cause }))
        },
        onSuccess: (verification) => {
          PaymentMetrics.recordLatency("verify", startedAt)
          if (!verification.isValid) {
            span?.attribute("x402.outcome", "invalid")
            PaymentMetrics.recordRefused("invalid")
            return Effect.fail(new VerifyFailed({ reason: "Invalid", paymentRequired, verification }))
          }
          span?.attribute("x402.outcome", "verified")
          const verified: Verified = {
            paymentRequired,
            token,
            verification,
            credits,
            agentRequestId: verification.agentRequestId,
            deadline: call.deadline
          }
          return onAfterVerify
            ? Effect.flatMap(runHook("onAfterVerify", () => onAfterVerify(verification)), () => next(verified))
            : next(verified)
        }
      }
    )
  }
  return onBeforeVerify
    ? Effect.zipRight(runHook("onBeforeVerify", () => onBeforeVerify(paymentRequired)), Effect.suspend(ask))
    : ask()
}

// The facilitator of the fiber running a step: read from its context once, not yielded per use.
const facilitatorOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): Facilitator.Service =>
  Context.unsafeGet(fiber.currentContext as Context.Context<Facilitator>, Facilitator)

// The PaymentRequired without an Effect when everything it needs is known now: networks fixed by
// the options, or all in the facilitator's warm cache.
const knownRequirements = (
  paywall: Shape,
  resourceUrl: string | undefined,
  facilitator: Facilitator.Service
): X402.PaymentRequired | undefined => {
  const fixed = paywall.options.network
  if (fixed !== undefined) return buildRequirements(paywall, resourceUrl, [fixed])
  const networks = facilitator.cachedNetworks?.(paywall.planIds)
  return networks !== undefined && networks.length === paywall.planIds.length
    ? buildRequirements(paywall, resourceUrl, networks)
    : undefined
}

// A facilitator that honours a request's deadline gets it with the request, and nothing races it
// here: one deadline per call, in the facilitator that knows what was sent.
// One object literal of one shape per request (a spread to add the deadline cost a copy per call).
const deadlineFor = (facilitator: Facilitator.Service, deadline: number | undefined): number | undefined =>
  facilitator.honoursDeadline === true ? deadline : undefined

// The facilitator's own timeouts bound each operation; a call's deadline caps them further. Past the
// deadline nothing is sent (provably unsent: `Unavailable`); cut off in flight, the request may have
// landed (`requestSent`: for settle, `Indeterminate`).
const withDeadline = <A>(
  facilitator: Facilitator.Service,
  effect: Effect.Effect<A, FacilitatorError>,
  operation: "verify" | "settle",
  deadline: number | undefined
): Effect.Effect<A, FacilitatorError> =>
  deadline === undefined || facilitator.honoursDeadline === true ? effect : Effect.flatMap(
    Clock.currentTimeMillis,
    (now) => {
      const left = deadline - now
      if (left <= 0) {
        return Effect.fail(Deadline.passed(operation))
      }
      return Deadline.within(effect, left, () =>
        new FacilitatorError({
          operation,
          kind: "Timeout",
          requestSent: true,
          detail: "cut off at the call's deadline"
        }))
    }
  )

const tokenOf = (input: TokenInput): Redacted.Redacted<string> | undefined => Option.getOrUndefined(token(input))

const settleFailureOf = (input: SettleInput, cause: FacilitatorError): SettleFailed => {
  const base = { paymentRequired: input.paymentRequired, credits: input.credits, cause }
  if (!cause.requestSent) {
    PaymentMetrics.recordRefused("settle_unavailable")
    return new SettleFailed({ ...base, reason: "Unavailable" })
  }
  // A 4xx is the backend's definite "no"; anything else after the request left may have burned
  // the credits, so it is indeterminate and must not be retried.
  if (cause.kind === "HttpStatus" && cause.status !== undefined && cause.status >= 400 && cause.status < 500) {
    PaymentMetrics.recordRefused("settle_rejected")
    return new SettleFailed({ ...base, reason: "Rejected" })
  }
  PaymentMetrics.recordUnknown()
  return new SettleFailed({ ...base, reason: "Indeterminate" })
}

/**
 * Settles (burns) the credits of a verified call, with the verified `agentRequestId`. A refusal, an
 * unknown outcome or an unreachable facilitator is a `SettleFailed` that says which. Runs
 * `onAfterSettle` on success.
 *
 * With a tracer installed, settle annotates the call's span, or opens `Paywall.settle` when it runs
 * on its own (the interceptor's RESPONSE phase, an HTTP middleware); with none, no span.
 *
 * @since 0.1.0
 * @category pipeline
 */
export const settle = <Req, R, Resp>(
  paywall: Paywall<Req, R, Resp>,
  input: SettleInput
): Effect.Effect<X402.SettleResponse, SettleFailed, Facilitator> =>
  CallSpan.step(
    "Paywall.settle",
    settleAttributes(paywall, input),
    (span, fiber) => settleIn(paywall, input, span, facilitatorOf(fiber), Effect.succeed, Effect.fail),
    // Inside a call's span, verify has already set the plans and the token's fingerprint.
    "quiet"
  )

const settleAttributes = (paywall: Shape, input: SettleInput) => () => ({
  "x402.plan_ids": precomputedOf(paywall).planIdsAttribute,
  "x402.credits": input.credits,
  "x402.token": fingerprint(input.token)
})

// An amount to settle that is no amount: nothing is sent, and the refusal is counted.
const invalidSettleAmount = (paymentRequired: X402.PaymentRequired, cause: InvalidCredits): SettleFailed => {
  PaymentMetrics.recordRefused("invalid_amount")
  return new SettleFailed({ reason: "InvalidAmount", paymentRequired, credits: 0, cause })
}

// `settled` and `failed` continue from settle's own continuation (`Effect.succeed` / `Effect.fail`
// for `settle`; the outcome by the settle-failure policy for `protect`), not from one more
// `matchEffect` around it.
const settleIn = <Req, R, Resp, B, E2>(
  paywall: Paywall<Req, R, Resp>,
  input: SettleInput,
  span: Tracer.Span | undefined,
  facilitator: Facilitator.Service,
  settled: (settlement: X402.SettleResponse) => Effect.Effect<B, E2>,
  failed: (error: SettleFailed) => Effect.Effect<B, E2>
): Effect.Effect<B, E2> => {
  const amount = Credits.validate(input.credits, "settle amount")
  if (Either.isLeft(amount)) return failed(invalidSettleAmount(input.paymentRequired, amount.left))
  const credits = amount.right
  // Inside a call's span verify has set the credits: set again only when the answer changed them.
  if (span !== undefined && span.attributes.get("x402.credits") !== credits) span.attribute("x402.credits", credits)
  const startedAt = performance.now()
  return Effect.matchEffect(
    withDeadline(
      facilitator,
      facilitator.settle({
        paymentRequired: input.paymentRequired,
        token: input.token,
        maxAmount: credits,
        agentRequestId: input.agentRequestId,
        deadline: deadlineFor(facilitator, input.deadline)
      }),
      "settle",
      input.deadline
    ),
    {
      onFailure: (cause) => {
        PaymentMetrics.recordLatency("settle", startedAt)
        return failed(settleFailureOf(input, cause))
      },
      onSuccess: (settlement) => {
        PaymentMetrics.recordLatency("settle", startedAt)
        if (!settlement.success) {
          span?.attribute("x402.outcome", "rejected")
          PaymentMetrics.recordRefused("settle_rejected")
          return failed(
            new SettleFailed({ reason: "Rejected", paymentRequired: input.paymentRequired, credits, settlement })
          )
        }
        span?.attribute("x402.outcome", "settled")
        PaymentMetrics.recordPaid(credits)
        const hook = paywall.options.onAfterSettle
        return hook
          ? Effect.flatMap(runHook("onAfterSettle", () => hook(credits, settlement)), () => settled(settlement))
          : settled(settlement)
      }
    }
  )
}

/**
 * How `protect` reads the paid work's answer.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProtectOptions<A> {
  /** Whether the answer is an error result (MCP `isError`): such answers are not charged. */
  readonly isError?: ((value: A) => boolean) | undefined
  /** Where the answer may override the amount to settle (see `Credits.findCharge`). */
  readonly chargeOf?: ((value: A) => Credits.ChargeSource) | undefined
}

/**
 * verify → run the paid work → settle, exactly once per verified call.
 *
 * Nothing is settled when verification fails, when the work fails or dies, or when it answers an
 * error result. When settlement fails the output is withheld (`SettleFailed`), unless the paywall's
 * policy is `release`, in which case it comes back as a `Released` outcome.
 *
 * Spans: none when no tracer is installed (or tracing is disabled). With one, verify and settle set
 * their attributes on the call's span when the caller opened one (the Lambda adapters do), else
 * each opens its own (`Paywall.verify`, `Paywall.settle`).
 *
 * @since 0.1.0
 * @category pipeline
 */
export const protect = <Req, R, Resp, A, E, R2>(
  paywall: Paywall<Req, R, Resp>,
  call: Call<Req>,
  work: (verified: Verified) => Effect.Effect<A, E, R2>,
  options?: ProtectOptions<A>
): Effect.Effect<Outcome<A>, PaymentFailure | E, Facilitator | R | R2> =>
  Effect.withFiberRuntime((fiber) => {
    // A tracer listens and no call span is open: verify and settle open spans of their own.
    if (CallSpan.listening(fiber) && CallSpan.currentOf(fiber) === undefined) {
      return Effect.flatMap(
        verify(paywall, call),
        (verified) =>
          Effect.flatMap(work(verified), (value) =>
            settleOutput(paywall, verified, value, options, undefined, (input, settled, failed) =>
              Effect.matchEffect(settle(paywall, input), { onFailure: failed, onSuccess: settled })))
      )
    }
    // Otherwise the whole pipeline from one read of the fiber: its facilitator, and the call span
    // when there is one (set as `verify` would set it; `settle` adds nothing there). The paid work
    // and settle run as verify's continuation (fewer Effect operations per call: with a tracer,
    // each one runs inside the span's context).
    const span = CallSpan.currentOf(fiber)
    const token = callToken(call)
    if (span !== undefined) {
      CallSpan.set(span, callAttributes(paywall, token)())
    }
    const facilitator = facilitatorOf(fiber)
    return verifyIn(
      paywall,
      call,
      token,
      span,
      facilitator,
      (verified) =>
        Effect.flatMap(work(verified), (value) =>
          settleOutput(paywall, verified, value, options, span, (input, settled, failed) =>
            settleIn(paywall, input, span, facilitator, settled, failed)))
    )
  })

// After the paid work: nothing charged for an error result, else settle the amount the answer may
// set, and the outcome by the settle-failure policy. `settleBy` settles, continuing with `settled`
// or `failed`: inside `protect`'s single fiber read, `settleIn` on the call span (no step of its
// own); otherwise (a tracer listens and no call span is open) `settle`, which opens its own span.
const settleOutput = <Req, R, Resp, A, RS>(
  paywall: Paywall<Req, R, Resp>,
  verified: Verified,
  value: A,
  options: ProtectOptions<A> | undefined,
  span: Tracer.Span | undefined,
  settleBy: (
    input: SettleInput,
    settled: (settlement: X402.SettleResponse) => Effect.Effect<Outcome<A>, SettleFailed>,
    failed: (error: SettleFailed) => Effect.Effect<Outcome<A>, SettleFailed>
  ) => Effect.Effect<Outcome<A>, SettleFailed, RS>
): Effect.Effect<Outcome<A>, SettleFailed, RS> => {
  if (options?.isError?.(value) === true) {
    span?.attribute("x402.outcome", "not_charged")
    return Effect.succeed({ _tag: "NotCharged", value, verified })
  }
  const amount = options?.chargeOf
    ? Credits.settleAmount(options.chargeOf(value), verified.credits, chargeRulesOf(paywall))
    : Either.right(verified.credits)
  if (Either.isLeft(amount)) return Effect.fail(invalidSettleAmount(verified.paymentRequired, amount.left))
  return settleBy(
    settleInputOf(verified, amount.right),
    (settlement) => Effect.succeed({ _tag: "Settled", value, verified, settlement }),
    (error) => releasedOr(paywall, verified, value, error)
  )
}

// What settle reads, as one literal (no spread copy of `verified` per call).
const settleInputOf = (verified: Verified, credits: number): SettleInput => ({
  paymentRequired: verified.paymentRequired,
  token: verified.token,
  credits,
  agentRequestId: verified.agentRequestId,
  deadline: verified.deadline
})

// A failed settlement: the output released (`Released`) when the policy lets it go, else withheld.
const releasedOr = <Req, R, Resp, A>(
  paywall: Paywall<Req, R, Resp>,
  verified: Verified,
  value: A,
  error: SettleFailed
): Effect.Effect<Outcome<A>, SettleFailed> =>
  releases(paywall, error)
    ? Effect.as(
      Effect.logWarning(`x402 settlement failed, output released by policy: ${error.message}`),
      { _tag: "Released", value, verified, error } as Outcome<A>
    )
    : Effect.fail(error)

const chargeRulesOf = (paywall: { readonly options: Pick<Options, "chargeFromContent"> }): Credits.ChargeRules =>
  paywall.options.chargeFromContent === true ? { fromContent: true } : {}

/**
 * Whether a failed settlement lets the output go: only under the `release` policy, and only when the
 * facilitator could not give a definite answer (`Unavailable`, `Indeterminate`). A definite refusal
 * (`Rejected`: no funds, a spent token) or an invalid amount always withholds, or `release` would
 * give paid output to every caller whose balance cannot pay.
 *
 * @since 0.2.0
 * @category pipeline
 */
export const releases = (
  paywall: { readonly onSettleFailure: SettleFailurePolicy },
  error: SettleFailed
): boolean =>
  paywall.onSettleFailure === "release" && (error.reason === "Unavailable" || error.reason === "Indeterminate")

/**
 * Runs the `onPaymentError` hook: the replacement response it returns, if any.
 *
 * @since 0.1.0
 * @category hooks
 */
export const replacementFor = <Req, R, Resp>(
  paywall: Paywall<Req, R, Resp>,
  error: PaymentFailure
): Effect.Effect<Option.Option<Resp>> => {
  const hook = paywall.options.onPaymentError
  return hook ? runHook("onPaymentError", () => hook(error)) as Effect.Effect<Option.Option<Resp>> : Effect.succeedNone
}
