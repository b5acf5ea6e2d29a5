import { Facilitator, Paywall, X402 } from "@effect-x402/core"
import { TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Redacted } from "effect"

const requirements = (...planIds: Array<string>) =>
  X402.paymentRequired({ planIds, network: "eip155:84532", agentId: "agent-1" })

describe("Ledger", () => {
  it("verify checks the token, the plan, the agent and the balance", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 3, agentId: "agent-1" })
    assert.isTrue(ledger.verify({ paymentRequired: requirements("plan-1"), token, maxAmount: 3 }).isValid)
    const invalid = (paymentRequired: X402.PaymentRequired, t: string, maxAmount: number) =>
      ledger.verify({ paymentRequired, token: t, maxAmount }).invalidReason
    assert.strictEqual(invalid(requirements("plan-1"), token, 4), "insufficient_funds")
    assert.strictEqual(invalid(requirements("plan-1"), "unknown", 1), "invalid_payload")
    assert.strictEqual(invalid(requirements("other-plan"), token, 1), "invalid_payment_requirements")
    const otherAgent = X402.paymentRequired({ planIds: ["plan-1"], network: "n", agentId: "agent-2" })
    assert.strictEqual(invalid(otherAgent, token, 1), "invalid_payment_requirements")
  })

  it("settle burns credits, answers string amounts and a transaction, and refuses a second settle of one request", () => {
    const { ledger, token, subscriber } = TestFacilitator.seeded({ credits: 5 })
    const pr = requirements("plan-1")
    const verified = ledger.verify({ paymentRequired: pr, token, maxAmount: 2 })
    const settle = () =>
      ledger.settle({ paymentRequired: pr, token, maxAmount: 2, agentRequestId: verified.agentRequestId })
    const first = settle()
    assert.isTrue(first.success)
    assert.strictEqual(first.creditsRedeemed, "2")
    assert.strictEqual(first.remainingBalance, "3")
    assert.match(first.transaction, /^0x[0-9a-f]{64}$/)
    const second = settle()
    assert.deepStrictEqual([second.success, second.errorReason, second.transaction], [
      false,
      "duplicate_settlement",
      ""
    ])
    assert.strictEqual(ledger.balance(subscriber, "plan-1"), 3)
  })

  it("single-use tokens refuse a second settle", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 5, singleUseTokens: true })
    const pr = requirements("plan-1")
    assert.isTrue(ledger.settle({ paymentRequired: pr, token, maxAmount: 1 }).success)
    assert.strictEqual(ledger.settle({ paymentRequired: pr, token, maxAmount: 1 }).errorReason, "duplicate_settlement")
    assert.strictEqual(
      ledger.verify({ paymentRequired: pr, token, maxAmount: 1 }).invalidReason,
      "duplicate_settlement"
    )
  })

  it("the call log holds fingerprints, never tokens", () => {
    const { ledger, token } = TestFacilitator.seeded()
    ledger.verify({ paymentRequired: requirements("plan-1"), token, maxAmount: 1 })
    assert.strictEqual(ledger.calls[0].token, Paywall.fingerprint(Redacted.make(token)))
    assert.notInclude(JSON.stringify(ledger.calls), token)
  })

  type Op =
    | { readonly op: "verify" | "settle"; readonly who: number; readonly plan: number; readonly amount: number }
    | { readonly op: "fund"; readonly who: number; readonly plan: number; readonly amount: number }

  const opArb: fc.Arbitrary<Op> = fc.record({
    op: fc.constantFrom("verify", "settle", "settle", "fund"),
    who: fc.integer({ min: 0, max: 2 }),
    plan: fc.integer({ min: 0, max: 1 }),
    amount: fc.integer({ min: 0, max: 6 })
  })

  it.prop(
    "across random sequences: balances never go negative and settled credits equal credits burned",
    [fc.array(opArb, { maxLength: 60 }), fc.array(fc.integer({ min: 0, max: 10 }), { minLength: 6, maxLength: 6 })],
    ([ops, initial]) => {
      const ledger = new TestFacilitator.Ledger()
      const subscribers = ["0xa", "0xb", "0xc"]
      const plans = ["plan-x", "plan-y"]
      let funded = 0
      const tokens = subscribers.map((s, i) =>
        plans.map((p, j) => {
          ledger.fund(s, p, initial[i * 2 + j])
          funded += initial[i * 2 + j]
          return ledger.mintToken({ planId: p, subscriber: s })
        })
      )
      for (const op of ops) {
        const token = tokens[op.who][op.plan]
        const paymentRequired = requirements(plans[op.plan])
        if (op.op === "fund") {
          ledger.fund(subscribers[op.who], plans[op.plan], op.amount)
          funded += op.amount
        } else if (op.op === "verify") {
          ledger.verify({ paymentRequired, token, maxAmount: op.amount })
        } else {
          const before = ledger.balance(subscribers[op.who], plans[op.plan])
          const result = ledger.settle({ paymentRequired, token, maxAmount: op.amount })
          assert.strictEqual(result.success, before >= op.amount)
        }
        for (const s of subscribers) for (const p of plans) assert.isAtLeast(ledger.balance(s, p), 0)
      }
      let remaining = 0
      for (const s of subscribers) for (const p of plans) remaining += ledger.balance(s, p)
      assert.strictEqual(ledger.totalSettled, funded - remaining)
    },
    { fastCheck: { numRuns: 300 } }
  )
})

describe("TestFacilitator.layer", () => {
  it.effect("provides Facilitator over the ledger, and the ledger for assertions", () => {
    const { ledger, token, subscriber } = TestFacilitator.seeded({ credits: 4 })
    return Effect.gen(function*() {
      const facilitator = yield* Facilitator.Facilitator
      const same = yield* TestFacilitator.TestFacilitator
      assert.strictEqual(same, ledger)
      const pr = requirements("plan-1")
      const verified = yield* facilitator.verify({ paymentRequired: pr, token: Redacted.make(token), maxAmount: 4 })
      assert.isTrue(verified.isValid)
      const settled = yield* facilitator.settle({
        paymentRequired: pr,
        token: Redacted.make(token),
        maxAmount: 4,
        agentRequestId: verified.agentRequestId
      })
      assert.isTrue(settled.success)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 0)
      assert.strictEqual(yield* facilitator.networkFor("plan-1"), "eip155:84532")
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)))
  })

  it.effect("plays scripted faults in order, then answers normally", () => {
    const { ledger, token } = TestFacilitator.seeded()
    ledger.failNext("verify", { _tag: "Unreachable" }, { _tag: "Invalid", reason: "invalid_network" })
    ledger.failNext("settle", { _tag: "Indeterminate", applied: true })
    return Effect.gen(function*() {
      const facilitator = yield* Facilitator.Facilitator
      const request = { paymentRequired: requirements("plan-1"), token: Redacted.make(token), maxAmount: 1 }
      const first = yield* Effect.flip(facilitator.verify(request))
      assert.deepStrictEqual([first.kind, first.requestSent], ["Unreachable", false])
      assert.strictEqual((yield* facilitator.verify(request)).invalidReason, "invalid_network")
      assert.isTrue((yield* facilitator.verify(request)).isValid)
      const lost = yield* Effect.flip(facilitator.settle(request))
      assert.deepStrictEqual([lost.kind, lost.requestSent], ["Timeout", true])
      assert.strictEqual(ledger.totalSettled, 1, "an applied indeterminate settle did burn the credits")
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)))
  })
})
