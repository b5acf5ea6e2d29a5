import { DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb"
import { Paywall, SettlementLedger, type X402 } from "@effect-x402/core"
import * as DynamoDbLedger from "@effect-x402/lambda/DynamoDbLedger"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { AgentCoreEvents, TestFacilitator } from "@effect-x402/testing"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Layer, Logger, Option, Redacted, type Scope, TestClock } from "effect"
import * as Server from "./dynamoDbServer.js"

let server: Server.DynamoDbServer
let raw: DynamoDBClient | undefined
beforeAll(async () => {
  server = await Server.start()
}, 30_000)
afterAll(async () => {
  raw?.destroy()
  await server?.close()
})
/** A plain client, to look at the rows themselves. */
const rawClient = () =>
  raw ??= new DynamoDBClient({ endpoint: server.endpoint, region: Server.region, credentials: Server.credentials })

const payer = Paywall.fingerprint(Redacted.make("token-of-alice"))
const receipt: X402.SettleResponse = {
  success: true,
  transaction: "0xabc",
  network: "nevermined:1",
  creditsRedeemed: "1"
}
let seq = 0
const fresh = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++seq}`

/** One Lambda instance: its own DynamoDBClient and ledger over the shared table. */
const instance = (
  options?: Partial<DynamoDbLedger.Options>
): Effect.Effect<SettlementLedger.SettlementLedger.Service, never, Scope.Scope> =>
  DynamoDbLedger.make({
    tableName: server.tableName,
    endpoint: server.endpoint,
    region: Server.region,
    credentials: Server.credentials,
    ...options
  })

const failure = <A>(effect: Effect.Effect<A, SettlementLedger.LedgerError>) =>
  Effect.map(Effect.flip(effect), (e) => ({ reason: e.reason, state: e.state }))

describe("DynamoDbLedger (dynalite on loopback, two instances sharing one table)", () => {
  it.live("records on one instance, claims and finishes on the other", () =>
    Effect.gen(function*() {
      const [a, b] = [yield* instance(), yield* instance()]
      const id = fresh("r")
      const recorded = yield* a.record({ requestId: id, payer, amount: 3 })
      assert.strictEqual(recorded._tag, "Recorded")
      const claim = yield* b.claim(id)
      assert.strictEqual(claim._tag, "Claimed")
      assert.strictEqual(claim._tag === "Claimed" && claim.entry.amount, 3)
      const done = yield* b.finish(id, { _tag: "Settled", receipt, result: "{\"content\":[]}" })
      assert.strictEqual(done.state, "settled")
      const seen = Option.getOrThrow(yield* a.get(id))
      assert.deepStrictEqual(
        [seen.state, seen.receipt?.transaction, seen.result, seen.payer],
        ["settled", "0xabc", "{\"content\":[]}", payer]
      )
      // A replayed RESPONSE on instance a: told it is settled (with the receipt); finish refused.
      const replay = yield* a.claim(id)
      assert.strictEqual(replay._tag === "Taken" && replay.entry.receipt?.transaction, "0xabc")
      assert.deepStrictEqual(yield* failure(a.finish(id, { _tag: "Settled", receipt })), {
        reason: "Conflict",
        state: "settled"
      })
      assert.deepStrictEqual(yield* failure(a.record({ requestId: id, payer, amount: 3 })), {
        reason: "Conflict",
        state: undefined
      })
      assert.deepStrictEqual(yield* a.claim(fresh("never")), { _tag: "Absent" })
      assert.strictEqual((yield* failure(a.finish(fresh("never"), { _tag: "Rejected" }))).reason, "NotFound")
    }).pipe(Effect.scoped))

  it.live("of concurrent claims from both instances exactly one wins", () =>
    Effect.gen(function*() {
      const [a, b] = [yield* instance(), yield* instance()]
      const id = fresh("race")
      yield* a.record({ requestId: id, payer, amount: 1 })
      const claims = yield* Effect.all(
        Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? a : b).claim(id)),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(claims.filter((c) => c._tag === "Claimed").length, 1)
      assert.strictEqual(claims.filter((c) => c._tag === "Taken").length, 15)
      // And of concurrent finishes, one.
      const finishes = yield* Effect.all(
        [a, b, a, b].map((l) => Effect.either(l.finish(id, { _tag: "Settled", receipt }))),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(finishes.filter((f) => f._tag === "Right").length, 1)
    }).pipe(Effect.scoped))

  it.live("a retry after `unknown` finds the attempt by its key and resolves it without a second settle", () =>
    Effect.gen(function*() {
      const [a, b] = [yield* instance(), yield* instance()]
      const [first, retry, key] = [fresh("first"), fresh("retry"), fresh("key")]
      yield* a.record({ requestId: first, payer, amount: 1, idempotencyKey: key })
      yield* a.claim(first)
      yield* a.finish(first, { _tag: "Unknown" })
      // The client retries on instance b with the same Idempotency-Key.
      const found = Option.getOrThrow(yield* b.findByKey(payer, key))
      assert.deepStrictEqual([found.requestId, found.state], [first, "unknown"])
      const dup = yield* b.record({ requestId: retry, payer, amount: 1, idempotencyKey: key })
      assert.deepStrictEqual([dup._tag, dup.entry.requestId], ["Duplicate", first])
      // The retry's own row was dropped: nothing can claim it.
      assert.isTrue(Option.isNone(yield* a.get(retry)))
      assert.strictEqual((yield* b.claim(first))._tag, "Taken")
      // BCK.X402.0059 on the re-sent settle: the first one landed.
      const resolved = yield* Effect.all([
        Effect.either(a.resolveUnknown(first, { _tag: "Settled", receipt })),
        Effect.either(b.resolveUnknown(first, { _tag: "Settled", receipt }))
      ], { concurrency: "unbounded" })
      assert.strictEqual(resolved.filter((r) => r._tag === "Right").length, 1)
      assert.strictEqual(Option.getOrThrow(yield* a.findByKey(payer, key)).state, "settled")
      // Another payer's same key is another entry.
      const bob = Paywall.fingerprint(Redacted.make("token-of-bob"))
      assert.isTrue(Option.isNone(yield* a.findByKey(bob, key)))
      assert.strictEqual(
        (yield* b.record({ requestId: fresh("bob"), payer: bob, amount: 1, idempotencyKey: key }))._tag,
        "Recorded"
      )
    }).pipe(Effect.scoped))

  it.effect("writes expiresAt in epoch seconds and treats an expired row as absent (TestClock)", () =>
    Effect.gen(function*() {
      const a = yield* instance({ ttl: "1 hour" })
      yield* TestClock.setTime(Date.UTC(2026, 0, 1))
      const [id, key] = [fresh("ttl"), fresh("key")]
      const { entry } = yield* a.record({ requestId: id, payer, amount: 1, idempotencyKey: key })
      assert.strictEqual(entry.expiresAt, Date.UTC(2026, 0, 1, 1))
      const raw = yield* Effect.promise(() =>
        rawClient().send(new GetItemCommand({ TableName: server.tableName, Key: { pk: { S: `req#${id}` } } }))
      )
      assert.strictEqual(raw.Item?.expiresAt?.N, String(Date.UTC(2026, 0, 1, 1) / 1000))
      assert.notInclude(JSON.stringify(raw.Item), "token-of-alice")
      yield* TestClock.adjust("59 minutes")
      assert.isTrue(Option.isSome(yield* a.get(id)))
      yield* TestClock.adjust("1 minute")
      // dynalite never deletes it; the ledger must not see it.
      assert.isTrue(Option.isNone(yield* a.get(id)))
      assert.isTrue(Option.isNone(yield* a.findByKey(payer, key)))
      assert.deepStrictEqual(yield* a.claim(id), { _tag: "Absent" })
      // An expired row and key are overwritten by a new record.
      assert.strictEqual((yield* a.record({ requestId: id, payer, amount: 2, idempotencyKey: key }))._tag, "Recorded")
      assert.strictEqual(Option.getOrThrow(yield* a.findByKey(payer, key)).amount, 2)
    }).pipe(Effect.scoped))

  it.live("keeps a result up to the byte cap and flags one over it", () =>
    Effect.gen(function*() {
      const a = yield* instance({ maxResultBytes: 10 })
      const [small, big] = [fresh("small"), fresh("big")]
      for (const [id, result] of [[small, "0123456789"], [big, "0123456789!"]] as const) {
        yield* a.record({ requestId: id, payer, amount: 1 })
        yield* a.claim(id)
        yield* a.finish(id, { _tag: "Settled", receipt, result })
      }
      const kept = Option.getOrThrow(yield* a.get(small))
      const dropped = Option.getOrThrow(yield* a.get(big))
      assert.deepStrictEqual([kept.result, kept.resultDropped], ["0123456789", false])
      assert.deepStrictEqual([dropped.result, dropped.resultDropped], [undefined, true])
    }).pipe(Effect.scoped))

  it.live("fails closed on a row it does not recognise", () =>
    Effect.gen(function*() {
      const a = yield* instance()
      const id = fresh("bad")
      yield* Effect.promise(() =>
        rawClient().send(
          new PutItemCommand({
            TableName: server.tableName,
            Item: { pk: { S: `req#${id}` }, requestId: { S: id }, state: { S: "paid-twice" } }
          })
        )
      )
      assert.strictEqual((yield* failure(a.get(id))).reason, "Corrupt")
      const claim = yield* Effect.exit(a.claim(id))
      assert.isTrue(Exit.isFailure(claim))
    }).pipe(Effect.scoped))

  it.live("costs one conditional write per phase, plus one for an idempotency key", () =>
    Effect.gen(function*() {
      const a = yield* instance()
      const id = fresh("count")
      server.resetCount()
      yield* a.record({ requestId: id, payer, amount: 1 })
      yield* a.claim(id)
      yield* a.finish(id, { _tag: "Settled", receipt })
      assert.deepStrictEqual(Object.fromEntries(server.requests), { PutItem: 1, UpdateItem: 2 })
      server.resetCount()
      const keyed = fresh("keyed")
      yield* a.record({ requestId: keyed, payer, amount: 1, idempotencyKey: fresh("key") })
      assert.deepStrictEqual(Object.fromEntries(server.requests), { PutItem: 2 })
    }).pipe(Effect.scoped))

  it.live("sealed material (an HTTP target's RESPONSE needs it) is stored as given, read back, and removed when the attempt ends", () =>
    Effect.gen(function*() {
      const [a, b] = [yield* instance(), yield* instance()]
      const id = fresh("sealed")
      const sealed = "opaque-ciphertext-AAAA"
      yield* a.record({ requestId: id, payer, amount: 2, sealed })
      assert.strictEqual(Option.getOrThrow(yield* b.get(id)).sealed, sealed)
      const claim = yield* b.claim(id)
      assert.strictEqual(claim._tag === "Claimed" && claim.entry.sealed, sealed)
      yield* b.finish(id, { _tag: "Settled", receipt })
      assert.isUndefined(Option.getOrThrow(yield* a.get(id)).sealed)
      const row = yield* Effect.promise(() =>
        rawClient().send(new GetItemCommand({ TableName: server.tableName, Key: { pk: { S: `req#${id}` } } }))
      )
      assert.isUndefined(row.Item?.sealed)
      // An empty sealed value is refused, as any invalid input.
      assert.deepStrictEqual(
        yield* failure(a.record({ requestId: fresh("sealed"), payer, amount: 1, sealed: "" })),
        { reason: "InvalidInput", state: undefined }
      )
    }).pipe(Effect.scoped))

  it.live("an HTTP target through two interceptor instances on the table: settled once; the row never holds the token in clear", () =>
    Effect.gen(function*() {
      const seeded = TestFacilitator.seeded({ planId: "plan-1", credits: 20 })
      const [a, b] = [0, 1].map(() =>
        interceptor({
          planId: "plan-1",
          credits: 2,
          requestSealKey: Redacted.make("a seal key both instances share"),
          layer: TestFacilitator.layer(seeded.ledger),
          services: Layer.merge(
            Logger.remove(Logger.defaultLogger),
            DynamoDbLedger.layer({
              tableName: server.tableName,
              endpoint: server.endpoint,
              region: Server.region,
              credentials: Server.credentials
            })
          )
        })
      )
      yield* Effect.addFinalizer(() => Effect.promise(() => Promise.all([a.runtime.dispose(), b.runtime.dispose()])))
      const ctx = AgentCoreEvents.context()
      const forwarded = AgentCoreEvents.forwardedHttp(
        yield* Effect.promise(() => a(AgentCoreEvents.httpRequest({ token: seeded.token, id: 4 }), ctx))
      )!
      const id = forwarded.body.id as number
      const rowOf = () =>
        Effect.promise(() =>
          rawClient().send(
            new GetItemCommand({ TableName: server.tableName, Key: { pk: { S: `req#x402_fwd_${id}` } } })
          )
        )
      const before = (yield* rowOf()).Item
      assert.isString(before?.sealed?.S)
      assert.notInclude(JSON.stringify(before), seeded.token)
      const event = AgentCoreEvents.httpResponse({
        body: { jsonrpc: "2.0", id, result: { content: [{ type: "text", text: "the paid output" }] } }
      })
      for (const instance of [b, a, b]) {
        const out = AgentCoreEvents.answeredHttp(yield* Effect.promise(() => instance(event, ctx)))!
        assert.include(out.text!, "the paid output")
      }
      assert.strictEqual(seeded.ledger.settlements.length, 1)
      const after = (yield* rowOf()).Item
      assert.strictEqual(after?.state?.S, "settled")
      assert.isUndefined(after?.sealed)
    }).pipe(Effect.scoped))

  it.live("layerConfig reads the table from X402_LEDGER_TABLE", () =>
    Effect.gen(function*() {
      const ledger = yield* SettlementLedger.SettlementLedger
      const id = fresh("config")
      yield* ledger.record({ requestId: id, payer, amount: 1 })
      assert.strictEqual((yield* ledger.claim(id))._tag, "Claimed")
    }).pipe(
      Effect.provide(
        DynamoDbLedger.layerConfig({
          endpoint: server.endpoint,
          region: Server.region,
          credentials: Server.credentials
        })
          .pipe(
            Layer.provide(Layer.setConfigProvider(ConfigProvider.fromJson({ X402_LEDGER_TABLE: server.tableName })))
          )
      )
    ))
})

describe("DynamoDbLedger store faults (a TCP proxy on loopback in front of dynalite)", () => {
  const timeout = Duration.millis(300)
  const viaProxy = () => instance({ endpoint: server.proxyEndpoint, timeout, maxAttempts: 2 })
  // Each attempt is bounded by `timeout`, the whole operation by attempts × timeout + 500 ms.
  const bound = 2 * 300 + 500 + 400

  const unavailableWithin = <A>(effect: Effect.Effect<A, SettlementLedger.LedgerError>) =>
    Effect.gen(function*() {
      const started = Date.now()
      const error = yield* Effect.flip(
        effect.pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("hang") }))
      )
      const elapsed = Date.now() - started
      assert.instanceOf(error, SettlementLedger.LedgerError)
      if (!(error instanceof SettlementLedger.LedgerError)) throw error
      assert.strictEqual(error.reason, "Unavailable")
      assert.isBelow(elapsed, bound)
      return error
    })

  it.live(
    "a paused store (connections accepted, no answer): Unavailable within the timeout, at every phase",
    () =>
      Effect.gen(function*() {
        const a = yield* viaProxy()
        const [recorded, claimed] = [fresh("p-rec"), fresh("p-claim")]
        yield* a.record({ requestId: claimed, payer, amount: 1 })
        yield* a.record({ requestId: recorded, payer, amount: 1 })
        yield* a.claim(recorded)
        server.pauseProxy()
        yield* unavailableWithin(a.record({ requestId: fresh("p-new"), payer, amount: 1 }))
        yield* unavailableWithin(a.claim(claimed))
        yield* unavailableWithin(a.finish(recorded, { _tag: "Settled", receipt }))
        server.resumeProxy()
        // Back up: nothing was half-done; the claim that timed out may or may not have landed, and
        // the entry says which (fail closed: no second settling).
        const after = Option.getOrThrow(yield* a.get(recorded))
        assert.strictEqual(after.state, "settling")
      }).pipe(Effect.scoped),
    20_000
  )

  it.live("a stopped store (connection refused): Unavailable, quickly", () =>
    Effect.gen(function*() {
      const a = yield* viaProxy()
      yield* Effect.promise(() => server.closeProxy())
      const error = yield* unavailableWithin(a.record({ requestId: fresh("down"), payer, amount: 1 }))
      assert.notInclude(error.message, "token-of-alice")
      yield* unavailableWithin(a.get(fresh("down")))
    }).pipe(Effect.scoped), 20_000)
})
