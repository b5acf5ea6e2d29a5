import { Paywall } from "@effect-x402/core"
import { TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"

describe("Paywall.protect", () => {
  it.effect("verifies, runs the work and settles once", () => {
    const { ledger, token, subscriber } = TestFacilitator.seeded({ credits: 5 })
    const paywall = Paywall.make({ planId: "plan-1", credits: 2, endpoint: "https://agent.example/mcp" })
    return Effect.gen(function*() {
      const outcome = yield* Paywall.protect(paywall, { request: {}, token }, () => Effect.succeed("work"))
      assert.strictEqual(outcome._tag, "Settled")
      assert.strictEqual(outcome.value, "work")
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 3)
      assert.deepStrictEqual(ledger.calls.map((c) => c.operation), ["verify", "settle"])
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)))
  })
})
