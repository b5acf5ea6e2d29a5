// The interceptor's ledger hardening, through AgentCore events: ledger calls capped by the Lambda
// deadline (a hanging store never outlasts the function), RESPONSE claims first (no re-record of
// a row REQUEST wrote), and a claimed row recorded for another payer is never settled.
import { SettlementLedger } from "@effect-x402/core"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { AgentCoreEvents, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { captureLogs, forwardedOf, responseOf } from "./helpers.js"

const OUTPUT = "the paid report"

type Service = SettlementLedger.SettlementLedger.Service

/** A ledger over the in-memory one that counts each operation and may rewrite some. */
const wrapped = (inner: Service, override: Partial<Service> = {}) => {
  const counts: Record<string, number> = {}
  // Counted when the operation runs (an Effect may be run more than once).
  const count = <K extends keyof Service>(name: K): Service[K] => {
    const f = (override[name] ?? inner[name]) as (...args: Array<unknown>) => Effect.Effect<unknown, unknown>
    return ((...args: Array<unknown>) =>
      Effect.suspend(() => {
        counts[name] = (counts[name] ?? 0) + 1
        return f(...args)
      })) as unknown as Service[K]
  }
  const service: Service = {
    record: count("record"),
    claim: count("claim"),
    finish: count("finish"),
    resolveUnknown: count("resolveUnknown"),
    get: count("get"),
    findByKey: count("findByKey")
  }
  return { counts, service }
}

const run = (
  ledgerService: Service,
  options: { readonly remainingTimeInMillis?: number } = {}
) => {
  const seeded = TestFacilitator.seeded({ planId: "plan-1", credits: 20 })
  const logs = captureLogs()
  const handler = interceptor({
    planId: "plan-1",
    layer: TestFacilitator.layer(seeded.ledger),
    services: Layer.merge(logs.layer, Layer.succeed(SettlementLedger.SettlementLedger, ledgerService))
  })
  const ctx = () => AgentCoreEvents.context({ remainingTimeInMillis: options.remainingTimeInMillis ?? 30_000 })
  const paidCall = Effect.gen(function*() {
    const forwarded = forwardedOf(
      yield* Effect.promise(() => handler(AgentCoreEvents.request({ token: seeded.token }), ctx()))
    )
    return yield* Effect.promise(() =>
      handler(
        AgentCoreEvents.response({
          token: seeded.token,
          forwardedHeaders: forwarded.headers as Record<string, string>,
          result: { content: [{ type: "text", text: OUTPUT }] }
        }),
        ctx()
      )
    )
  })
  return { ...seeded, handler, ctx, logs, paidCall }
}

describe("interceptor: ledger hardening", () => {
  it.effect("RESPONSE claims the row REQUEST recorded: one record, one claim, one finish per paid call", () =>
    Effect.gen(function*() {
      const { counts, service } = wrapped(yield* SettlementLedger.makeMemory())
      const { ledger, paidCall } = run(service)
      const out = yield* paidCall
      assert.include(JSON.stringify(responseOf(out).body), OUTPUT)
      assert.deepStrictEqual(counts, { record: 1, claim: 1, finish: 1 })
      assert.strictEqual(ledger.settlements.length, 1)
    }))

  it.effect("a RESPONSE whose row is absent (another instance's memory) records it, then claims and settles once", () =>
    Effect.gen(function*() {
      const memory = yield* SettlementLedger.makeMemory()
      // REQUEST's record is lost (as on an instance whose in-memory ledger RESPONSE cannot see).
      const { counts, service } = wrapped(memory, {
        record: (input) =>
          counts.claim === undefined ?
            Effect.succeed({ _tag: "Recorded", entry: {} as never }) :
            memory.record(input)
      })
      const { ledger, paidCall } = run(service)
      const out = yield* paidCall
      assert.include(JSON.stringify(responseOf(out).body), OUTPUT)
      assert.deepStrictEqual(counts, { record: 2, claim: 2, finish: 1 })
      assert.strictEqual(ledger.settlements.length, 1)
    }))

  it.live("a store that hangs on claim: the RESPONSE is withheld within the Lambda's remaining time, nothing settled", () =>
    Effect.gen(function*() {
      const memory = yield* SettlementLedger.makeMemory()
      const { service } = wrapped(memory, { claim: () => Effect.never })
      // 900 ms left, 500 of them kept for the answer: the ledger gets about 400 ms.
      const { ledger, logs, paidCall } = run(service, { remainingTimeInMillis: 900 })
      const out = yield* paidCall
      assert.notInclude(JSON.stringify(out), OUTPUT)
      assert.strictEqual(ledger.settlements.length, 0)
      assert.isTrue(logs.lines.some((line) => line.includes("cut off at the call's deadline")))
    }))

  it.live("a store that hangs on record: REQUEST forwards nothing, within the Lambda's remaining time", () =>
    Effect.gen(function*() {
      const memory = yield* SettlementLedger.makeMemory()
      const { service } = wrapped(memory, { record: () => Effect.never })
      const { ctx, handler, ledger, token } = run(service, { remainingTimeInMillis: 900 })
      const out = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx()))
      assert.isUndefined(out.mcp.transformedGatewayRequest)
      assert.strictEqual(out.mcp.transformedGatewayResponse?.statusCode, 500)
      assert.strictEqual(ledger.settlements.length, 0)
    }))

  it.live("a store that hangs on record: an HTTP target's REQUEST forwards nothing, within the Lambda's remaining time", () =>
    Effect.gen(function*() {
      const memory = yield* SettlementLedger.makeMemory()
      const { service } = wrapped(memory, { record: () => Effect.never })
      const { ctx, handler, ledger, logs, token } = run(service, { remainingTimeInMillis: 900 })
      // Without the deadline the record would hang past the test's own timeout.
      const out = yield* Effect.promise(() =>
        handler(AgentCoreEvents.httpRequest({ token, tool: "report", id: "client-7" }), ctx())
      )
      assert.isUndefined(AgentCoreEvents.forwardedHttp(out))
      assert.strictEqual(AgentCoreEvents.answeredHttp(out)?.statusCode, 500)
      assert.strictEqual(ledger.settlements.length, 0)
      assert.isTrue(logs.lines.some((line) => line.includes("cut off at the call's deadline")))
    }))

  it.effect("a claimed row recorded for another payer is never settled with this token: withheld, logged", () =>
    Effect.gen(function*() {
      const memory = yield* SettlementLedger.makeMemory()
      // A shared store whose row names another payer (a hostile or confused writer).
      const { service } = wrapped(memory, {
        claim: (id) =>
          Effect.map(
            memory.claim(id),
            (claim) => claim._tag === "Claimed" ? { ...claim, entry: { ...claim.entry, payer: "ffffffff" } } : claim
          )
      })
      const { ledger, logs, paidCall } = run(service)
      const out = yield* paidCall
      assert.notInclude(JSON.stringify(out), OUTPUT)
      assert.strictEqual(ledger.settlements.length, 0)
      assert.isTrue(logs.lines.some((line) => line.includes("recorded for another payer")))
    }))
})
