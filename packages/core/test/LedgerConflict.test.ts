import { Paywall, SettlementLedger } from "@effect-x402/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"

// The in-memory ledger builds its `Conflict` without Schema validation or a stack (it is on the
// interceptor's hot path): it must still be the same typed error a caller matches and reads.
const payer = Paywall.fingerprint(Redacted.make("token-of-alice"))

describe("SettlementLedger.layerMemory Conflict", () => {
  it.effect("is a LedgerError a caller can catch by tag, with its fields and message", () =>
    Effect.gen(function*() {
      const ledger = yield* SettlementLedger.SettlementLedger
      yield* ledger.record({ requestId: "r1", payer, amount: 1 })
      const again = yield* Effect.flip(ledger.record({ requestId: "r1", payer, amount: 1 }))
      assert.instanceOf(again, SettlementLedger.LedgerError)
      assert.instanceOf(again, Error)
      assert.strictEqual(again._tag, "LedgerError")
      assert.strictEqual(again.reason, "Conflict")
      assert.strictEqual(again.operation, "record")
      assert.strictEqual(again.requestId, "r1")
      assert.strictEqual(again.message, "Settlement ledger record r1 failed: Conflict")
      const early = yield* Effect.flip(ledger.finish("r1", { _tag: "Rejected" }))
      assert.strictEqual(early.message, "Settlement ledger finish r1 failed: Conflict (state verified)")
      const caught = yield* ledger.record({ requestId: "r1", payer, amount: 1 }).pipe(
        Effect.as("recorded"),
        Effect.catchTag("LedgerError", (error) => Effect.succeed(error.reason))
      )
      assert.strictEqual(caught, "Conflict")
      // The process's own stack traces are untouched by how the conflict was built.
      assert.isAbove(Error.stackTraceLimit, 0)
      assert.include(new Error("probe").stack ?? "", "LedgerConflict.test")
    }).pipe(Effect.provide(SettlementLedger.layerMemory())))
})
