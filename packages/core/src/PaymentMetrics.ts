/**
 * What a seller watches, as Effect `Metric`s: calls paid, calls refused (by reason), settlements
 * whose outcome is unknown, credits settled, and the facilitator's latency. `Paywall` records them
 * where the outcome is known, for every adapter (`requiresPayment`, `httpHandler`, the interceptor,
 * `HttpPaywall`, MCP).
 *
 * They live in Effect's global metric registry: read them with `Metric.value`, or export them with
 * `@effect/opentelemetry` (`NodeSdk.layer(() => ({ ..., metricReader }))`), which reads that
 * registry on every collection. No attribute carries a token, a key or a payer: the only tags are
 * the fixed `reason` and `operation` values below.
 *
 * Recording costs a few nanoseconds per update and nothing else: each update goes to a metric hook
 * resolved once (constant tags, no tag array built per call), outside any fiber (`unsafeUpdate`, so
 * a fiber's `Effect.tagMetrics` labels do not apply to these).
 *
 * @since 0.2.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"

/**
 * Calls whose credits were settled (burned).
 *
 * @since 0.2.0
 * @category metrics
 */
export const callsPaid: Metric.Metric.Counter<number> = Metric.counter("x402_calls_paid", {
  description: "Paid calls whose credits were settled",
  incremental: true
})

/**
 * Why a call was refused or not charged, as the `reason` tag of {@link callsRefused}:
 * `missing_token` (answered with a payment-required challenge), `invalid` (the facilitator refused
 * the token), `verify_unavailable` (the facilitator could not verify), `invalid_amount` (the price or
 * the amount to settle is not a credit amount), `settle_rejected` (the facilitator refused to
 * settle), `settle_unavailable` (settlement provably never reached the facilitator).
 *
 * @since 0.2.0
 * @category models
 */
export type RefusalReason =
  | "missing_token"
  | "invalid"
  | "verify_unavailable"
  | "invalid_amount"
  | "settle_rejected"
  | "settle_unavailable"

/**
 * Calls refused, tagged `reason` (see {@link RefusalReason}).
 *
 * @since 0.2.0
 * @category metrics
 */
export const callsRefused: Metric.Metric.Counter<number> = Metric.counter("x402_calls_refused", {
  description: "Calls refused or not settled, by reason",
  incremental: true
})

/**
 * Settlements whose outcome is unknown (`Indeterminate`: the request left and no definite answer
 * came back): the credits may or may not have been burned. Worth an alarm.
 *
 * @since 0.2.0
 * @category metrics
 */
export const settleOutcomeUnknown: Metric.Metric.Counter<number> = Metric.counter("x402_settle_outcome_unknown", {
  description: "Settlements whose outcome is unknown (credits may have been burned)",
  incremental: true
})

/**
 * Credits settled, summed over paid calls.
 *
 * @since 0.2.0
 * @category metrics
 */
export const creditsSettled: Metric.Metric.Counter<number> = Metric.counter("x402_credits_settled", {
  description: "Credits settled (burned) by paid calls",
  incremental: true
})

/**
 * The boundaries of {@link facilitatorLatency}, in milliseconds: from a warm in-region call (a few
 * ms) to the default timeouts (10 s verify, 30 s settle).
 *
 * @since 0.2.0
 * @category constants
 */
export const latencyBoundaries: ReadonlyArray<number> = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]

/**
 * The facilitator's verify and settle latency in milliseconds, tagged `operation` (`verify`,
 * `settle`), successes and failures alike (retries and backoff included, as the caller waits).
 *
 * @since 0.2.0
 * @category metrics
 */
export const facilitatorLatency: Metric.Metric.Histogram<number> = Metric.histogram(
  "x402_facilitator_duration_ms",
  MetricBoundaries.fromIterable(latencyBoundaries),
  "Facilitator verify and settle latency, in milliseconds"
)

// One tag array per value, made once: the metric's hook for it is then resolved once and cached.
const reasonTags: { readonly [R in RefusalReason]: ReadonlyArray<MetricLabel.MetricLabel> } = {
  missing_token: [MetricLabel.make("reason", "missing_token")],
  invalid: [MetricLabel.make("reason", "invalid")],
  verify_unavailable: [MetricLabel.make("reason", "verify_unavailable")],
  invalid_amount: [MetricLabel.make("reason", "invalid_amount")],
  settle_rejected: [MetricLabel.make("reason", "settle_rejected")],
  settle_unavailable: [MetricLabel.make("reason", "settle_unavailable")]
}
const operationTags = {
  verify: [MetricLabel.make("operation", "verify")],
  settle: [MetricLabel.make("operation", "settle")]
} as const
const untagged: ReadonlyArray<MetricLabel.MetricLabel> = []

/** @internal */
export const recordPaid = (credits: number): void => {
  callsPaid.unsafeUpdate(1, untagged)
  creditsSettled.unsafeUpdate(credits, untagged)
}

/** @internal */
export const recordRefused = (reason: RefusalReason): void => callsRefused.unsafeUpdate(1, reasonTags[reason])

/** @internal */
export const recordUnknown = (): void => settleOutcomeUnknown.unsafeUpdate(1, untagged)

/** @internal */
export const recordLatency = (operation: "verify" | "settle", startedAt: number): void =>
  facilitatorLatency.unsafeUpdate(performance.now() - startedAt, operationTags[operation])
