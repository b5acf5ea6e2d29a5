// The seller's metrics, recorded by Paywall where the outcome is known: what a dashboard would
// read after paid, refused and unknown-outcome calls. Metrics are process-global, so every
// assertion is on the change a test's calls made.
import { Facilitator, Paywall } from "@effect-x402/core"
import { PaymentError } from "@effect-x402/core"
import * as PaymentMetrics from "@effect-x402/core/PaymentMetrics"
import { TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric } from "effect"

const paywall = Paywall.make({ planId: "plan-1", agentId: "agent-1", endpoint: "https://agent.example/mcp" })

const snapshot = Effect.gen(function*() {
  const refused = (reason: PaymentMetrics.RefusalReason) =>
    Metric.value(PaymentMetrics.callsRefused.pipe(Metric.tagged("reason", reason)))
  const latency = (operation: string) =>
    Metric.value(PaymentMetrics.facilitatorLatency.pipe(Metric.tagged("operation", operation)))
  return {
    paid: (yield* Metric.value(PaymentMetrics.callsPaid)).count,
    credits: (yield* Metric.value(PaymentMetrics.creditsSettled)).count,
    unknown: (yield* Metric.value(PaymentMetrics.settleOutcomeUnknown)).count,
    missing: (yield* refused("missing_token")).count,
    invalid: (yield* refused("invalid")).count,
    rejected: (yield* refused("settle_rejected")).count,
    verifyLatency: (yield* latency("verify")).count,
    settleLatency: (yield* latency("settle")).count
  }
})

const paidCall = (token: string) => Paywall.protect(paywall, { request: {}, token }, () => Effect.succeed("ok"))

describe("PaymentMetrics", () => {
  it.effect("after 3 paid and 2 refused calls: the counters, the credits and the latency samples", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 10, agentId: "agent-1" })
    return Effect.gen(function*() {
      const before = yield* snapshot
      for (let i = 0; i < 3; i++) yield* paidCall(token)
      yield* Effect.flip(paidCall(""))
      yield* Effect.flip(paidCall(`${token}-forged`))
      const after = yield* snapshot
      assert.deepStrictEqual({
        paid: after.paid - before.paid,
        credits: after.credits - before.credits,
        missing: after.missing - before.missing,
        invalid: after.invalid - before.invalid,
        unknown: after.unknown - before.unknown,
        // Verify ran for the 3 paid calls and the forged token; settle for the 3 paid calls.
        verifyLatency: after.verifyLatency - before.verifyLatency,
        settleLatency: after.settleLatency - before.settleLatency
      }, { paid: 3, credits: 3, missing: 1, invalid: 1, unknown: 0, verifyLatency: 4, settleLatency: 3 })
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)))
  })

  it.effect("a settle whose outcome is unknown and a refused settle are counted apart; nothing is paid", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 10, agentId: "agent-1" })
    let fault: PaymentError.FacilitatorError | "refuse" = "refuse"
    const flaky = Layer.effect(
      Facilitator.Facilitator,
      Effect.map(Facilitator.Facilitator, (inner) =>
        Facilitator.Facilitator.of({
          ...inner,
          settle: (request) =>
            fault === "refuse"
              ? Effect.map(inner.settle(request), (answer) => ({ ...answer, success: false }))
              : Effect.fail(fault)
        }))
    ).pipe(Layer.provide(TestFacilitator.layer(ledger)))
    return Effect.gen(function*() {
      const before = yield* snapshot
      yield* Effect.flip(paidCall(token))
      fault = new PaymentError.FacilitatorError({ operation: "settle", kind: "Timeout", requestSent: true })
      yield* Effect.flip(paidCall(token))
      const after = yield* snapshot
      assert.strictEqual(after.rejected - before.rejected, 1)
      assert.strictEqual(after.unknown - before.unknown, 1)
      assert.strictEqual(after.paid - before.paid, 0)
      assert.strictEqual(after.settleLatency - before.settleLatency, 2)
    }).pipe(Effect.provide(flaky))
  })
})
