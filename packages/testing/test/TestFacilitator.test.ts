import { Facilitator, PaymentError, Paywall, X402 } from "@effect-x402/core"
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

  it("single-use (v3) tokens: verify never consumes, a second settle is the backend's BCK.X402.0059", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 5, singleUseTokens: true, agentId: "agent-1" })
    const pr = requirements("plan-1")
    assert.isTrue(ledger.verify({ paymentRequired: pr, token, maxAmount: 1 }).isValid)
    assert.isTrue(ledger.verify({ paymentRequired: pr, token, maxAmount: 1 }).isValid, "verify is repeatable")
    assert.isTrue(ledger.settle({ paymentRequired: pr, token, maxAmount: 1 }).success)
    const second = ledger.settle({ paymentRequired: pr, token, maxAmount: 1 })
    assert.deepStrictEqual([second.success, second.errorReason], [false, TestFacilitator.TOKEN_ALREADY_USED])
    assert.strictEqual(ledger.balance("0x5ub5cr1b3r00000000000000000000000000001", "plan-1"), 4)
  })

  it("a v3 token is good only for the agent, resource URL and verb it was minted for", () => {
    const ledger = new TestFacilitator.Ledger()
    ledger.fund("0xsub", "plan-1", 10)
    const token = ledger.mintToken({
      planId: "plan-1",
      subscriber: "0xsub",
      agentId: "agent-1",
      version: 3,
      resourceUrl: "https://seller.example/api/tasks",
      httpVerb: "POST"
    })
    const pr = (endpoint: string, httpVerb: string, agentId = "agent-1") =>
      X402.paymentRequired({ planIds: ["plan-1"], network: "n", agentId, endpoint, httpVerb })
    const reason = (paymentRequired: X402.PaymentRequired) =>
      ledger.verify({ paymentRequired, token, maxAmount: 1 }).invalidReason ?? "valid"
    assert.strictEqual(reason(pr("https://seller.example/api/tasks", "POST")), "valid")
    assert.strictEqual(reason(pr("https://seller.example/api/tasks?page=2", "post")), "valid", "origin + path")
    assert.strictEqual(reason(pr("https://other.example/api/tasks", "POST")), "invalid_payment_requirements")
    assert.strictEqual(reason(pr("https://seller.example/api/other", "POST")), "invalid_payment_requirements")
    assert.strictEqual(reason(pr("https://seller.example/api/tasks", "GET")), "invalid_payment_requirements")
    assert.strictEqual(
      reason(pr("https://seller.example/api/tasks", "POST", "agent-2")),
      "invalid_payment_requirements"
    )
    // settle refuses a mismatch too, and burns nothing
    const wrong = ledger.settle({ paymentRequired: pr("https://other.example/api/tasks", "POST"), token, maxAmount: 1 })
    assert.deepStrictEqual([wrong.success, wrong.errorReason], [false, "invalid_payment_requirements"])
    assert.strictEqual(ledger.balance("0xsub", "plan-1"), 10)
  })

  it("delegation limits: amount at pricePerCredit, expiry and number of transactions", () => {
    let now = 1_000_000
    const ledger = new TestFacilitator.Ledger({ now: () => now })
    ledger.addPlan({ planId: "plan-1", pricePerCredit: "0.25" })
    ledger.fund("0xsub", "plan-1", 100)
    const delegation = ledger.addDelegation({
      owner: "0xsub",
      provider: "erc4337",
      currency: "usdc",
      spendingLimitCents: 100,
      durationSecs: 60,
      maxTransactions: 3,
      createdAt: now
    })
    const token = ledger.mintToken({ planId: "plan-1", subscriber: "0xsub", delegationId: delegation.delegationId })
    const pr = requirements("plan-1")
    const verify = (maxAmount: number) => ledger.verify({ paymentRequired: pr, token, maxAmount }).invalidReason
    const settle = (maxAmount: number) => ledger.settle({ paymentRequired: pr, token, maxAmount })
    // 100 cents at 25 cents a credit: 4 credits in all
    assert.strictEqual(verify(5), TestFacilitator.DelegationRefusal.spendingLimit)
    assert.isUndefined(verify(4))
    assert.isTrue(settle(3).success)
    assert.strictEqual(verify(2), TestFacilitator.DelegationRefusal.spendingLimit)
    assert.strictEqual(settle(2).errorReason, TestFacilitator.DelegationRefusal.spendingLimit)
    assert.isTrue(settle(1).success)
    assert.deepStrictEqual(
      [
        ledger.delegations.get(delegation.delegationId)?.amountSpentCents,
        ledger.delegations.get(delegation.delegationId)?.transactionCount
      ],
      [100, 2]
    )
    assert.strictEqual(ledger.balance("0xsub", "plan-1"), 96)

    // free credits cost no budget, but still count as transactions
    ledger.addPlan({ planId: "plan-1", pricePerCredit: "0" })
    assert.isTrue(settle(1).success)
    assert.strictEqual(verify(1), TestFacilitator.DelegationRefusal.maxTransactions)
    assert.strictEqual(settle(1).errorReason, TestFacilitator.DelegationRefusal.maxTransactions)

    // expiry: a fresh delegation stops paying at createdAt + durationSecs
    const later = ledger.addDelegation({
      owner: "0xsub",
      provider: "erc4337",
      currency: "usdc",
      spendingLimitCents: 1000,
      durationSecs: 60,
      createdAt: now
    })
    const second = ledger.mintToken({ planId: "plan-1", subscriber: "0xsub", delegationId: later.delegationId })
    assert.isTrue(ledger.verify({ paymentRequired: pr, token: second, maxAmount: 1 }).isValid)
    now += 60_000
    assert.strictEqual(
      ledger.verify({ paymentRequired: pr, token: second, maxAmount: 1 }).invalidReason,
      TestFacilitator.DelegationRefusal.expired
    )
    assert.strictEqual(
      ledger.settle({ paymentRequired: pr, token: second, maxAmount: 1 }).errorReason,
      TestFacilitator.DelegationRefusal.expired
    )
    assert.strictEqual(ledger.balance("0xsub", "plan-1"), 95)
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

  it.effect("a second settle of a single-use token fails as the live layer reports it: TokenAlreadyUsed", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 4, singleUseTokens: true })
    return Effect.gen(function*() {
      const facilitator = yield* Facilitator.Facilitator
      const request = { paymentRequired: requirements("plan-1"), token: Redacted.make(token), maxAmount: 1 }
      assert.isTrue((yield* facilitator.settle(request)).success)
      const error = yield* Effect.flip(facilitator.settle(request))
      assert.deepStrictEqual(
        [error.kind, error.code, error.reason, error.requestSent],
        ["HttpStatus", "BCK.X402.0059", "TokenAlreadyUsed", true]
      )
      assert.isTrue(PaymentError.isTokenAlreadyUsed(error))
      assert.strictEqual(ledger.settlements.length, 1)
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
