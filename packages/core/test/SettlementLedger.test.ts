import { Paywall, SettlementLedger, type X402 } from "@effect-x402/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, FastCheck as fc, Option, Redacted, TestClock } from "effect"

const payer = Paywall.fingerprint(Redacted.make("token-of-alice"))
const other = Paywall.fingerprint(Redacted.make("token-of-bob"))
const receipt: X402.SettleResponse = {
  success: true,
  transaction: "0xabc",
  network: "nevermined:1",
  creditsRedeemed: "2"
}

const run = <A, E>(
  options: SettlementLedger.MemoryOptions | undefined,
  f: (l: SettlementLedger.SettlementLedger.Service) => Effect.Effect<A, E>
) => Effect.flatMap(SettlementLedger.SettlementLedger, f).pipe(Effect.provide(SettlementLedger.layerMemory(options)))

const failure = <A>(effect: Effect.Effect<A, SettlementLedger.LedgerError>) =>
  Effect.map(Effect.flip(effect), (e) => ({ reason: e.reason, state: e.state }))

describe("SettlementLedger.layerMemory", () => {
  it.effect("walks verified → settling → settled, with the receipt and the stored result", () =>
    run(undefined, (ledger) =>
      Effect.gen(function*() {
        const recorded = yield* ledger.record({ requestId: "r1", payer, amount: 2 })
        assert.strictEqual(recorded._tag, "Recorded")
        assert.strictEqual(recorded.entry.state, "verified")
        const claim = yield* ledger.claim("r1")
        assert.strictEqual(claim._tag, "Claimed")
        const done = yield* ledger.finish("r1", { _tag: "Settled", receipt, result: "{\"ok\":true}" })
        assert.strictEqual(done.state, "settled")
        assert.deepStrictEqual(done.receipt, receipt)
        assert.strictEqual(done.result, "{\"ok\":true}")
        // A replayed RESPONSE: claim says settled (with the receipt), finish is refused.
        const again = yield* ledger.claim("r1")
        assert.strictEqual(again._tag, "Taken")
        if (again._tag === "Taken") assert.deepStrictEqual(again.entry.receipt, receipt)
        assert.deepStrictEqual(yield* failure(ledger.finish("r1", { _tag: "Settled", receipt })), {
          reason: "Conflict",
          state: "settled"
        })
        // The token itself is never stored: only its fingerprint.
        assert.notInclude(JSON.stringify(yield* ledger.get("r1")), "token-of-alice")
      })))

  it.effect("refuses what the state machine does not allow", () =>
    run(undefined, (ledger) =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* ledger.claim("nope"), { _tag: "Absent" })
        assert.strictEqual((yield* failure(ledger.finish("nope", { _tag: "Rejected" }))).reason, "NotFound")
        yield* ledger.record({ requestId: "r1", payer, amount: 1 })
        assert.deepStrictEqual(yield* failure(ledger.record({ requestId: "r1", payer, amount: 1 })), {
          reason: "Conflict",
          state: undefined
        })
        // finish before claim: nobody holds it.
        assert.deepStrictEqual(yield* failure(ledger.finish("r1", { _tag: "Rejected" })), {
          reason: "Conflict",
          state: "verified"
        })
        assert.strictEqual((yield* failure(ledger.resolveUnknown("r1", { _tag: "Rejected" }))).state, "verified")
        yield* ledger.claim("r1")
        yield* ledger.finish("r1", { _tag: "Rejected" })
        const taken = yield* ledger.claim("r1")
        assert.strictEqual(taken._tag === "Taken" && taken.entry.state, "rejected")
        for (
          const bad of [
            { requestId: "", payer, amount: 1 },
            { requestId: "x", payer: "", amount: 1 },
            { requestId: "x", payer, amount: -1 },
            { requestId: "x", payer, amount: 1.5 },
            { requestId: "x", payer, amount: 1, idempotencyKey: "" },
            { requestId: "x", payer, amount: 1, idempotencyKey: "k".repeat(256) },
            // What the library does not recognise is refused, never recorded.
            { requestId: "x", payer, amount: 1, idempotencyKey: 7 as unknown as string },
            { requestId: "x", payer, amount: Number.NaN }
          ]
        ) {
          assert.strictEqual((yield* failure(ledger.record(bad))).reason, "InvalidInput")
        }
      })))

  it.effect("of many concurrent claims exactly one wins", () =>
    run(undefined, (ledger) =>
      Effect.gen(function*() {
        yield* ledger.record({ requestId: "r1", payer, amount: 1 })
        const claims = yield* Effect.all(
          Array.from({ length: 200 }, () => Effect.yieldNow().pipe(Effect.zipRight(ledger.claim("r1")))),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(claims.filter((c) => c._tag === "Claimed").length, 1)
        assert.strictEqual(claims.filter((c) => c._tag === "Taken").length, 199)
      })))

  it.effect("an unknown attempt is resolved once, and never claimed again", () =>
    run(undefined, (ledger) =>
      Effect.gen(function*() {
        yield* ledger.record({ requestId: "r1", payer, amount: 1, idempotencyKey: "k1" })
        yield* ledger.claim("r1")
        yield* ledger.finish("r1", { _tag: "Unknown" })
        // The client retries with the same key: the ledger answers with the unknown entry.
        const retry = yield* ledger.record({ requestId: "r2", payer, amount: 1, idempotencyKey: "k1" })
        assert.strictEqual(retry._tag, "Duplicate")
        assert.strictEqual(retry.entry.requestId, "r1")
        assert.strictEqual(retry.entry.state, "unknown")
        assert.strictEqual((yield* ledger.claim("r1"))._tag, "Taken")
        // BCK.X402.0059 on the re-sent settle: the first one landed.
        const resolved = yield* Effect.all([
          Effect.either(ledger.resolveUnknown("r1", { _tag: "Settled", receipt })),
          Effect.either(ledger.resolveUnknown("r1", { _tag: "Settled", receipt }))
        ], { concurrency: "unbounded" })
        assert.strictEqual(resolved.filter((r) => r._tag === "Right").length, 1)
        assert.strictEqual(Option.getOrThrow(yield* ledger.get("r1")).state, "settled")
      })))

  it.effect("idempotency keys are scoped by payer", () =>
    run(undefined, (ledger) =>
      Effect.gen(function*() {
        yield* ledger.record({ requestId: "a1", payer, amount: 1, idempotencyKey: "same" })
        const bob = yield* ledger.record({ requestId: "b1", payer: other, amount: 1, idempotencyKey: "same" })
        assert.strictEqual(bob._tag, "Recorded")
        assert.strictEqual(Option.getOrThrow(yield* ledger.findByKey(payer, "same")).requestId, "a1")
        assert.strictEqual(Option.getOrThrow(yield* ledger.findByKey(other, "same")).requestId, "b1")
        assert.isTrue(Option.isNone(yield* ledger.findByKey(payer, "other")))
        // The duplicate writes nothing under its own request id.
        const dup = yield* ledger.record({ requestId: "a2", payer, amount: 1, idempotencyKey: "same" })
        assert.strictEqual(dup._tag, "Duplicate")
        assert.isTrue(Option.isNone(yield* ledger.get("a2")))
      })))

  it.effect("entries expire after the TTL (TestClock)", () =>
    run({ ttl: "1 hour" }, (ledger) =>
      Effect.gen(function*() {
        yield* ledger.record({ requestId: "r1", payer, amount: 1, idempotencyKey: "k" })
        yield* TestClock.adjust("59 minutes")
        assert.isTrue(Option.isSome(yield* ledger.get("r1")))
        yield* TestClock.adjust("1 minute")
        assert.isTrue(Option.isNone(yield* ledger.get("r1")))
        assert.isTrue(Option.isNone(yield* ledger.findByKey(payer, "k")))
        assert.deepStrictEqual(yield* ledger.claim("r1"), { _tag: "Absent" })
        // The key is free again, and so is the request id.
        assert.strictEqual(
          (yield* ledger.record({ requestId: "r2", payer, amount: 1, idempotencyKey: "k" }))._tag,
          "Recorded"
        )
        assert.strictEqual((yield* ledger.record({ requestId: "r1", payer, amount: 1 }))._tag, "Recorded")
      })))

  it.effect("the default TTL is 24 hours", () =>
    run(undefined, (ledger) =>
      Effect.gen(function*() {
        const { entry } = yield* ledger.record({ requestId: "r1", payer, amount: 1 })
        assert.strictEqual(entry.expiresAt - entry.createdAt, 24 * 3600 * 1000)
      })))

  it.effect("is bounded: expired entries go first, then the oldest", () =>
    run({ maxEntries: 3, ttl: "10 minutes" }, (ledger) =>
      Effect.gen(function*() {
        yield* ledger.record({ requestId: "old", payer, amount: 1, idempotencyKey: "k-old" })
        yield* TestClock.adjust("5 minutes")
        yield* ledger.record({ requestId: "mid", payer, amount: 1 })
        yield* ledger.record({ requestId: "new", payer, amount: 1 })
        yield* ledger.record({ requestId: "4th", payer, amount: 1 })
        assert.isTrue(Option.isNone(yield* ledger.get("old")))
        assert.isTrue(Option.isNone(yield* ledger.findByKey(payer, "k-old")))
        yield* TestClock.adjust("6 minutes")
        // "old" has expired too; the three live ones are mid, new, 4th: mid is the oldest.
        yield* ledger.record({ requestId: "5th", payer, amount: 1 })
        assert.deepStrictEqual(
          yield* Effect.forEach(["mid", "new", "4th", "5th"], (id) => Effect.map(ledger.get(id), Option.isSome)),
          [false, true, true, true]
        )
      })))

  it.effect("keeps a result up to the byte cap, and flags one over it", () =>
    run({ maxResultBytes: 8 }, (ledger) =>
      Effect.gen(function*() {
        for (const [id, result] of [["fits", "12345678"], ["over", "123456789"], ["wide", "ééééé"]] as const) {
          yield* ledger.record({ requestId: id, payer, amount: 1 })
          yield* ledger.claim(id)
          yield* ledger.finish(id, { _tag: "Settled", receipt, result })
        }
        const fits = Option.getOrThrow(yield* ledger.get("fits"))
        assert.deepStrictEqual([fits.result, fits.resultDropped], ["12345678", false])
        const over = Option.getOrThrow(yield* ledger.get("over"))
        assert.deepStrictEqual([over.result, over.resultDropped, over.state], [undefined, true, "settled"])
        // 5 characters, 10 bytes in UTF-8.
        assert.isTrue(Option.getOrThrow(yield* ledger.get("wide")).resultDropped)
      })))

  it("is immediate: every operation answers synchronously (so callers run it without a deadline race)", () => {
    const ledger = Effect.runSync(SettlementLedger.makeMemory())
    assert.strictEqual(ledger.immediate, true)
    // `runSync` throws on anything asynchronous: the flag is a promise the ledger keeps.
    assert.strictEqual(Effect.runSync(ledger.record({ requestId: "s1", payer, amount: 1 }))._tag, "Recorded")
    assert.strictEqual(Effect.runSync(ledger.claim("s1"))._tag, "Claimed")
    assert.strictEqual(Effect.runSync(ledger.finish("s1", { _tag: "Settled", receipt })).state, "settled")
    assert.strictEqual(Option.getOrThrow(Effect.runSync(ledger.get("s1"))).state, "settled")
    assert.isTrue(Option.isNone(Effect.runSync(ledger.findByKey(payer, "k"))))
    assert.strictEqual(
      Effect.runSync(Effect.exit(ledger.record({ requestId: "s1", payer, amount: 1 })))._tag,
      "Failure"
    )
  })

  it("fitsCap counts UTF-8 bytes", () => {
    assert.isTrue(SettlementLedger.fitsCap("", 0))
    assert.isTrue(SettlementLedger.fitsCap("€", 3))
    assert.isFalse(SettlementLedger.fitsCap("€", 2))
    assert.isTrue(SettlementLedger.fitsCap("a".repeat(100), 100))
  })

  // Random interleavings of every operation on a few ids: a verification settles at most once,
  // and states only move forward.
  const rank: Record<SettlementLedger.State, number> = { verified: 0, settling: 1, unknown: 2, settled: 3, rejected: 3 }
  const op = fc.oneof(
    fc.record({
      op: fc.constant("record" as const),
      id: fc.integer({ min: 0, max: 3 }),
      key: fc.option(fc.constantFrom("k1", "k2"))
    }),
    fc.record({ op: fc.constant("claim" as const), id: fc.integer({ min: 0, max: 3 }) }),
    fc.record({
      op: fc.constant("finish" as const),
      id: fc.integer({ min: 0, max: 3 }),
      outcome: fc.constantFrom("Settled" as const, "Rejected" as const, "Unknown" as const)
    }),
    fc.record({
      op: fc.constant("resolve" as const),
      id: fc.integer({ min: 0, max: 3 }),
      outcome: fc.constantFrom("Settled" as const, "Rejected" as const)
    }),
    fc.record({ op: fc.constant("tick" as const), minutes: fc.integer({ min: 1, max: 40 }) })
  )
  it.effect.prop(
    "never settles one verification twice; states only move forward",
    [fc.array(op, { maxLength: 60 })],
    ([ops]) =>
      run({ ttl: "1 hour", maxEntries: 3 }, (ledger) =>
        Effect.gen(function*() {
          const settlements = new Map<string, number>()
          const claimed = new Set<string>()
          const seen = new Map<string, { state: SettlementLedger.State; createdAt: number }>()
          const outcome = (tag: "Settled" | "Rejected" | "Unknown"): SettlementLedger.Outcome =>
            tag === "Settled" ? { _tag: "Settled", receipt } : { _tag: tag }
          for (const step of ops) {
            // Each step at its own millisecond: `createdAt` then tells two records of one id apart.
            yield* TestClock.adjust(1)
            const id = "id" in step ? `r${step.id}` : ""
            switch (step.op) {
              case "record":
                yield* Effect.exit(
                  ledger.record({ requestId: id, payer, amount: 1, idempotencyKey: step.key ?? undefined })
                )
                break
              case "claim": {
                const claim = yield* ledger.claim(id)
                if (claim._tag === "Claimed") {
                  // A claim is won only from a fresh record: never twice for one verification.
                  const key = `${id}@${claim.entry.createdAt}`
                  assert.isFalse(claimed.has(key))
                  claimed.add(key)
                }
                break
              }
              case "finish":
              case "resolve": {
                const exit = yield* Effect.exit(
                  step.op === "finish"
                    ? ledger.finish(id, outcome(step.outcome))
                    : ledger.resolveUnknown(id, outcome(step.outcome) as never)
                )
                if (Exit.isSuccess(exit) && exit.value.state === "settled") {
                  const key = `${id}@${exit.value.createdAt}`
                  settlements.set(key, (settlements.get(key) ?? 0) + 1)
                }
                break
              }
              case "tick":
                yield* TestClock.adjust(`${step.minutes} minutes`)
            }
            for (const i of [0, 1, 2, 3]) {
              const entry = yield* ledger.get(`r${i}`)
              if (Option.isNone(entry)) continue
              const before = seen.get(`r${i}`)
              if (before !== undefined && before.createdAt === entry.value.createdAt) {
                assert.isTrue(rank[entry.value.state] >= rank[before.state], `${before.state} → ${entry.value.state}`)
                if (rank[before.state] === 3) assert.strictEqual(entry.value.state, before.state)
              }
              seen.set(`r${i}`, { state: entry.value.state, createdAt: entry.value.createdAt })
            }
          }
          for (const count of settlements.values()) assert.strictEqual(count, 1)
        })),
    { fastCheck: { numRuns: 100 } }
  )
})
