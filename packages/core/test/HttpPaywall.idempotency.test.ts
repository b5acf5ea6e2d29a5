// HttpPaywall.middleware with idempotency keys, over real HTTP (NodeHttpServer on 127.0.0.1),
// against TestFacilitator and against FakeNevermined behind the live layer. Reconciled with the
// facilitator's books: one charge per (token, key).
import { HttpPaywall, Nevermined, SettlementLedger } from "@effect-x402/core"
import { FakeNevermined, TestFacilitator } from "@effect-x402/testing"
import { FetchHttpClient, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Logger } from "effect"
import { post, serve } from "./HttpPaywall.fixtures.js"

const KEY = "pay_7d5d747be160e280504c099d984bcfe0"
const quiet = Logger.replace(Logger.defaultLogger, Logger.none)

const setup = (credits = 100) => {
  const seeded = TestFacilitator.seeded({ planId: "plan-1", credits })
  return { ...seeded, layer: Layer.merge(TestFacilitator.layer(seeded.ledger), quiet) }
}

describe("HttpPaywall.middleware: idempotent retries over HTTP", () => {
  it.scopedLive("a retry after a settled attempt gets the stored answer and receipt; one run, one charge", () => {
    const { layer, ledger, subscriber, token } = setup()
    let runs = 0
    const app = Effect.sync(() => HttpServerResponse.text(`answer #${++runs}`)).pipe(
      HttpPaywall.middleware({ planId: "plan-1", credits: 2 })
    )
    return Effect.gen(function*() {
      const url = yield* serve(app)
      const first = yield* post(`${url}/paid`, { token, headers: { "Idempotency-Key": KEY } })
      const second = yield* post(`${url}/paid`, { token, headers: { "Idempotency-Key": KEY } })
      assert.strictEqual(first.status, 200)
      assert.strictEqual(second.status, 200)
      assert.strictEqual(second.text, "answer #1")
      assert.strictEqual(second.headers["content-type"], first.headers["content-type"])
      assert.deepStrictEqual(second.paymentResponse, first.paymentResponse)
      assert.strictEqual(runs, 1)
      assert.strictEqual(ledger.settlements.length, 1)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 98)
      // Without a key, each call is its own.
      const plain = yield* post(`${url}/paid`, { token })
      assert.strictEqual(plain.text, "answer #2")
      assert.strictEqual(ledger.settlements.length, 2)
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("concurrent duplicate: 409 in progress, never run twice; over the byte cap: 409 already paid", () => {
    const { layer, ledger, token } = setup()
    return Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const entered = yield* Deferred.make<void>()
      let runs = 0
      const app = Effect.gen(function*() {
        runs++
        yield* Deferred.succeed(entered, undefined)
        yield* Deferred.await(gate)
        return HttpServerResponse.text("z".repeat(500))
      }).pipe(HttpPaywall.middleware({ planId: "plan-1" }))
      // One ledger for the server (a layer provided per request would build one per request).
      const shared = yield* SettlementLedger.makeMemory({ maxResultBytes: 100 })
      const url = yield* serve(app.pipe(Effect.provideService(SettlementLedger.SettlementLedger, shared)))
      const first = yield* Effect.fork(post(`${url}/paid`, { token, headers: { "Idempotency-Key": KEY } }))
      yield* Deferred.await(entered)
      const concurrent = yield* post(`${url}/paid`, { token, headers: { "Idempotency-Key": KEY } })
      assert.strictEqual(concurrent.status, 409)
      assert.strictEqual((concurrent.json as { reason: string }).reason, "InProgress")
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual((yield* Fiber.join(first)).status, 200)
      const retry = yield* post(`${url}/paid`, { token, headers: { "Idempotency-Key": KEY } })
      assert.strictEqual(retry.status, 409)
      assert.strictEqual((retry.json as { reason: string }).reason, "AlreadyPaid")
      assert.isTrue(retry.paymentResponse?.success)
      assert.notInclude(retry.text, "zzz")
      const invalid = yield* post(`${url}/paid`, { token, headers: { "Idempotency-Key": "not valid!" } })
      assert.strictEqual(invalid.status, 400)
      assert.strictEqual(runs, 1)
      assert.strictEqual(ledger.settlements.length, 1)
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("FakeNevermined: the settle answer lost after it applied; the retry is charged once and answered", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      fake.ledger.addPlan({ planId: "plan-1" })
      fake.ledger.fund(fake.subscriber, "plan-1", 50)
      const token = fake.ledger.mintToken({ planId: "plan-1", subscriber: fake.subscriber })
      const live = Nevermined.layer({
        apiKey: fake.apiKey,
        backendUrl: fake.url,
        network: "eip155:84532",
        timeouts: { verify: "10 seconds", settle: "1500 millis" },
        retry: { baseDelay: "5 millis", maxDelay: "20 millis" }
      }).pipe(Layer.provide(FetchHttpClient.layer))
      let runs = 0
      const app = Effect.sync(() => HttpServerResponse.text(`answer #${++runs}`)).pipe(
        HttpPaywall.middleware({ planId: "plan-1", credits: 5 })
      )
      const url = yield* serve(app.pipe(Effect.provide(Layer.merge(live, quiet))))
      fake.faults.next("settle", FakeNevermined.Fault.noAnswer({ applied: true }))
      const first = yield* post(`${url}/paid`, { token, headers: { "Idempotency-Key": KEY } })
      assert.strictEqual(first.status, 502)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-1"), 45)
      const retry = yield* post(`${url}/paid`, { token, headers: { "Idempotency-Key": KEY } })
      assert.strictEqual(retry.status, 200)
      assert.strictEqual(retry.text, "answer #1")
      assert.isTrue(retry.paymentResponse?.success)
      assert.strictEqual(runs, 1)
      assert.strictEqual(fake.ledger.settlements.length, 1)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-1"), 45)
    }))
})
