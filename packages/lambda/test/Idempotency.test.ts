// Idempotent retries through requiresPayment as a gateway calls it (AgentCore events), on the
// in-memory ledger, on the DynamoDB ledger (dynalite on loopback), and against FakeNevermined over
// real HTTP where the facilitator matters. Every case is reconciled with the facilitator's books.
import { Facilitator, Nevermined, SettlementLedger, X402 } from "@effect-x402/core"
import * as DynamoDbLedger from "@effect-x402/lambda/DynamoDbLedger"
import { httpHandler } from "@effect-x402/lambda/HttpHandler"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { AgentCoreEvents, FakeNevermined, TestFacilitator } from "@effect-x402/testing"
import { FetchHttpClient } from "@effect/platform"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber, Layer, Logger } from "effect"
import * as fc from "effect/FastCheck"
import * as Server from "./dynamoDbServer.js"
import { bodyOf, errorOf, receiptOf, resultOf } from "./helpers.js"

const quiet = Logger.replace(Logger.defaultLogger, Logger.none) as Layer.Layer<never>
const KEY = "pay_7d5d747be160e280504c099d984bcfe0"
const ctx = AgentCoreEvents.context()

const call = (token: string | undefined, key?: string, id: string | number = "req-1") =>
  AgentCoreEvents.request({
    id,
    ...(token !== undefined ? { token } : {}),
    ...(key !== undefined ? { headers: { "Idempotency-Key": key } } : {})
  })

const textOf = (output: Awaited<ReturnType<ReturnType<ReturnType<typeof requiresPayment>>>>) =>
  String(resultOf(output).content[0].text)

const setup = (credits = 100) => {
  const seeded = TestFacilitator.seeded({ planId: "plan-1", credits })
  return { ...seeded, layer: TestFacilitator.layer(seeded.ledger) }
}

describe("requiresPayment: idempotent retries (in-memory ledger)", () => {
  it.effect("a retry after a settled attempt gets the stored answer and is not charged again", () =>
    Effect.gen(function*() {
      const { ledger, layer, subscriber, token } = setup()
      let runs = 0
      const handler = requiresPayment({ planId: "plan-1", credits: 3, layer, services: quiet })(() => {
        runs++
        return { content: [{ type: "text", text: `answer #${runs}` }] }
      })
      const first = yield* Effect.promise(() => handler(call(token, KEY, "a"), ctx))
      const second = yield* Effect.promise(() => handler(call(token, KEY, "b"), ctx))
      assert.strictEqual(textOf(first), "answer #1")
      assert.strictEqual(textOf(second), "answer #1")
      assert.strictEqual(bodyOf(second).id, "b")
      assert.deepStrictEqual(receiptOf(second), receiptOf(first))
      assert.strictEqual(runs, 1)
      assert.strictEqual(ledger.settlements.length, 1)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 97)
      // The retry reached neither verify nor settle.
      assert.deepStrictEqual(ledger.calls.map((c) => c.operation), ["verify", "settle"])
    }))

  it.effect("the key also comes from the x402 payment-identifier extension in params._meta", () =>
    Effect.gen(function*() {
      const { ledger, layer, token } = setup()
      let runs = 0
      const handler = requiresPayment({ planId: "plan-1", layer, services: quiet })(() => {
        runs++
        return { content: [{ type: "text", text: `answer #${runs}` }] }
      })
      const withMeta = (e: ReturnType<typeof AgentCoreEvents.request>) => {
        const body = e.mcp.gatewayRequest!.body as { params: Record<string, unknown> }
        body.params._meta = { "x402/payment": { extensions: { "payment-identifier": { info: { id: KEY } } } } }
        return e
      }
      yield* Effect.promise(() => handler(withMeta(AgentCoreEvents.request({ token })), ctx))
      const again = yield* Effect.promise(() => handler(withMeta(AgentCoreEvents.request({ token })), ctx))
      assert.strictEqual(textOf(again), "answer #1")
      assert.strictEqual(runs, 1)
      assert.strictEqual(ledger.settlements.length, 1)
    }))

  it.effect("the same key with another token is another payer's call: run and charged", () =>
    Effect.gen(function*() {
      const { ledger, layer, subscriber, token } = setup()
      const other = ledger.mintToken({ planId: "plan-1", subscriber })
      let runs = 0
      const handler = requiresPayment({ planId: "plan-1", layer, services: quiet })(() => {
        runs++
        return { content: [{ type: "text", text: `answer #${runs}` }] }
      })
      yield* Effect.promise(() => handler(call(token, KEY), ctx))
      const second = yield* Effect.promise(() => handler(call(other, KEY), ctx))
      assert.strictEqual(textOf(second), "answer #2")
      assert.strictEqual(ledger.settlements.length, 2)
    }))

  it.effect("a result over the ledger's byte cap: the retry gets a typed 409 'already paid', with the receipt", () =>
    Effect.gen(function*() {
      const { ledger, layer, token } = setup()
      let runs = 0
      const handler = requiresPayment({
        planId: "plan-1",
        layer,
        services: Layer.merge(quiet, SettlementLedger.layerMemory({ maxResultBytes: 64 }))
      })(() => {
        runs++
        return { content: [{ type: "text", text: "x".repeat(500) }] }
      })
      const first = yield* Effect.promise(() => handler(call(token, KEY), ctx))
      const second = yield* Effect.promise(() => handler(call(token, KEY), ctx))
      assert.strictEqual(textOf(first), "x".repeat(500))
      const error = errorOf(second)
      assert.strictEqual(error.code, 409)
      assert.strictEqual(error.error, "Already paid")
      assert.isTrue(receiptOf(second).success)
      assert.strictEqual(runs, 1)
      assert.strictEqual(ledger.settlements.length, 1)
    }))

  it.effect("concurrent duplicates: exactly one run and one charge; the other is refused (409 in progress)", () =>
    Effect.gen(function*() {
      const { ledger, layer, token } = setup()
      const gate = yield* Deferred.make<void>()
      const entered = yield* Deferred.make<void>()
      let runs = 0
      const handler = requiresPayment({ planId: "plan-1", layer, services: quiet })(() =>
        Effect.gen(function*() {
          runs++
          yield* Deferred.succeed(entered, undefined)
          yield* Deferred.await(gate)
          return { content: [{ type: "text", text: "done" }] }
        })
      )
      const first = yield* Effect.fork(Effect.promise(() => handler(call(token, KEY), ctx)))
      yield* Deferred.await(entered)
      const second = yield* Effect.promise(() => handler(call(token, KEY), ctx))
      const refused = errorOf(second)
      assert.strictEqual(refused.code, 409)
      assert.strictEqual(refused.error, "In progress")
      yield* Deferred.succeed(gate, undefined)
      const done = yield* Fiber.join(first)
      assert.strictEqual(textOf(done), "done")
      const third = yield* Effect.promise(() => handler(call(token, KEY), ctx))
      assert.strictEqual(textOf(third), "done")
      assert.strictEqual(runs, 1)
      assert.strictEqual(ledger.settlements.length, 1)
    }))

  it.live("five simultaneous duplicates (all past the key lookup before any records): one run, one charge", () =>
    Effect.gen(function*() {
      const { ledger, layer, token } = setup()
      const gate = yield* Deferred.make<void>()
      let runs = 0
      const handler = requiresPayment({ planId: "plan-1", layer, services: quiet })(() =>
        Effect.gen(function*() {
          runs++
          yield* Deferred.await(gate)
          return { content: [{ type: "text", text: "done" }] }
        })
      )
      const fibers = yield* Effect.forEach(
        [1, 2, 3, 4, 5],
        () => Effect.fork(Effect.promise(() => handler(call(token, KEY), ctx))),
        { concurrency: "unbounded" }
      )
      // Let the losers answer while the winner waits at the gate.
      yield* Effect.sleep("200 millis")
      yield* Deferred.succeed(gate, undefined)
      const outputs = yield* Effect.forEach(fibers, Fiber.join)
      const texts = outputs.map((output) => resultOf(output).isError === true ? errorOf(output).code : textOf(output))
      assert.strictEqual(texts.filter((t) => t === "done").length, 1)
      assert.strictEqual(texts.filter((t) => t === 409).length, 4)
      assert.strictEqual(runs, 1)
      assert.strictEqual(ledger.settlements.length, 1)
    }))

  it.effect("unknown outcome with a reusable token: the retry gets the stored answer and is never settled again", () =>
    Effect.gen(function*() {
      const { ledger, subscriber, token } = setup()
      // A facilitator that issues no agentRequestId: nothing would let it tell a second settle apart.
      const anonymous = Layer.effect(
        Facilitator.Facilitator,
        Effect.map(Facilitator.Facilitator, (inner) => ({
          ...inner,
          verify: (request) =>
            Effect.map(inner.verify(request), ({ agentRequestId: _, ...verification }) => verification)
        }))
      ).pipe(Layer.provide(TestFacilitator.layer(ledger)))
      let runs = 0
      const handler = requiresPayment({ planId: "plan-1", credits: 2, layer: anonymous, services: quiet })(() => {
        runs++
        return { content: [{ type: "text", text: "done" }] }
      })
      ledger.failNext("settle", { _tag: "Indeterminate", applied: true })
      assert.strictEqual(errorOf(yield* Effect.promise(() => handler(call(token, KEY), ctx))).code, 502)
      // A reusable token: settling again could charge twice, so the retry is answered from the
      // ledger (the stored result) and nothing is settled again.
      const retry = yield* Effect.promise(() => handler(call(token, KEY), ctx))
      assert.include(JSON.stringify(retry), "done")
      assert.strictEqual(runs, 1)
      assert.strictEqual(ledger.settlements.length, 1)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 98)
    }))

  it.effect("an error result is not charged, and its key is then refused (retry with a new key)", () =>
    Effect.gen(function*() {
      const { ledger, layer, token } = setup()
      let runs = 0
      const handler = requiresPayment({ planId: "plan-1", layer, services: quiet })(() => {
        runs++
        return { isError: true, content: [{ type: "text", text: "no" }] }
      })
      yield* Effect.promise(() => handler(call(token, KEY), ctx))
      const again = errorOf(yield* Effect.promise(() => handler(call(token, KEY), ctx)))
      assert.strictEqual(again.code, 409)
      assert.strictEqual(again.error, "Idempotency key rejected")
      assert.strictEqual(runs, 1)
      assert.strictEqual(ledger.settlements.length, 0)
    }))

  it.effect("an invalid key is refused (400) before anything runs or is charged", () =>
    Effect.gen(function*() {
      const { ledger, layer, token } = setup()
      let runs = 0
      const handler = requiresPayment({ planId: "plan-1", layer, services: quiet })(() => {
        runs++
        return { content: [] }
      })
      for (const bad of ["has space", "x".repeat(300), "é"]) {
        const error = errorOf(yield* Effect.promise(() => handler(call(token, bad), ctx)))
        assert.strictEqual(error.code, 400)
        assert.notInclude(JSON.stringify(error), bad)
      }
      assert.strictEqual(runs, 0)
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it.effect("without a key nothing touches the ledger", () =>
    Effect.gen(function*() {
      const { ledger, layer, token } = setup()
      let touched = 0
      const counting = Layer.effect(
        SettlementLedger.SettlementLedger,
        Effect.map(SettlementLedger.makeMemory(), (inner) => {
          const count = <F extends (...args: Array<never>) => unknown>(f: F) =>
            ((...args: Parameters<F>) => {
              touched++
              return f(...args)
            }) as F
          return {
            record: count(inner.record),
            claim: count(inner.claim),
            finish: count(inner.finish),
            resolveUnknown: count(inner.resolveUnknown),
            get: count(inner.get),
            findByKey: count(inner.findByKey)
          }
        })
      )
      const handler = requiresPayment({ planId: "plan-1", layer, services: Layer.merge(quiet, counting) })(() => ({
        content: [{ type: "text", text: "ok" }]
      }))
      yield* Effect.promise(() => handler(call(token), ctx))
      yield* Effect.promise(() => handler(call(token), ctx))
      assert.strictEqual(touched, 0)
      assert.strictEqual(ledger.settlements.length, 2)
      yield* Effect.promise(() => handler(call(token, KEY), ctx))
      assert.isAbove(touched, 0)
    }))

  it.effect("property: over generated retry sequences, each (token, key) is charged at most once", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({ token: fc.integer({ min: 0, max: 1 }), key: fc.option(fc.integer({ min: 0, max: 2 })) }),
            {
              minLength: 1,
              maxLength: 12
            }
          ),
          async (sequence) => {
            const { ledger, layer, subscriber } = setup(1000)
            const tokens = [
              ledger.mintToken({ planId: "plan-1", subscriber }),
              ledger.mintToken({ planId: "plan-1", subscriber })
            ]
            let runs = 0
            const handler = requiresPayment({ planId: "plan-1", layer, services: quiet })(() => {
              runs++
              return { content: [{ type: "text", text: `answer #${runs}` }] }
            })
            const firstAnswer = new Map<string, string>()
            let expected = 0
            for (const step of sequence) {
              const key = step.key === null ? undefined : `key_${step.key}_0123456789abcdef`
              const output = await handler(call(tokens[step.token], key), ctx)
              const text = textOf(output)
              if (key === undefined) {
                expected++
                continue
              }
              const scope = `${step.token}:${key}`
              const seen = firstAnswer.get(scope)
              if (seen === undefined) {
                firstAnswer.set(scope, text)
                expected++
              } else assert.strictEqual(text, seen)
            }
            assert.strictEqual(ledger.settlements.length, expected)
            assert.strictEqual(runs, expected)
            assert.strictEqual(ledger.balance(subscriber, "plan-1"), 1000 - expected)
            await handler.runtime.dispose()
          }
        ),
        { numRuns: 40 }
      )
    ))
})

// FakeNevermined with a funded plan, a token for it, and the live layer over real HTTP (short
// retries, a settle timeout a lost answer runs into).
const fundedLive = Effect.gen(function*() {
  const fake = yield* FakeNevermined.make()
  fake.ledger.addPlan({ planId: "plan-1" })
  fake.ledger.fund(fake.subscriber, "plan-1", 100)
  const token = fake.ledger.mintToken({ planId: "plan-1", subscriber: fake.subscriber })
  const layer = Nevermined.layer({
    apiKey: fake.apiKey,
    backendUrl: fake.url,
    network: "eip155:84532",
    timeouts: { verify: "10 seconds", settle: "1500 millis" },
    retry: { baseDelay: "5 millis", maxDelay: "20 millis" }
  }).pipe(Layer.provide(FetchHttpClient.layer))
  return { fake, token, layer }
})

describe("requiresPayment: idempotent retries against FakeNevermined (live layer, real HTTP)", () => {
  const liveSetup = Effect.gen(function*() {
    const { fake, layer, token } = yield* fundedLive
    let runs = 0
    const handler = requiresPayment({ planId: "plan-1", credits: 3, layer, services: quiet })(() => {
      runs++
      return { content: [{ type: "text", text: `answer #${runs}` }] }
    })
    yield* Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose()))
    return { fake, token, handler, runs: () => runs }
  })

  it.scoped("settle answer lost after it applied: the retry with the key is charged once and gets the stored answer", () =>
    Effect.gen(function*() {
      const { fake, handler, runs, token } = yield* liveSetup
      fake.faults.next("settle", FakeNevermined.Fault.noAnswer({ applied: true }))
      const first = yield* Effect.promise(() => handler(call(token, KEY), ctx))
      assert.strictEqual(errorOf(first).code, 502) // outcome unknown: withheld
      assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-1"), 97) // but it landed
      const retry = yield* Effect.promise(() => handler(call(token, KEY), ctx))
      assert.strictEqual(textOf(retry), "answer #1")
      assert.isTrue(receiptOf(retry).success)
      const again = yield* Effect.promise(() => handler(call(token, KEY), ctx))
      assert.strictEqual(textOf(again), "answer #1")
      assert.strictEqual(runs(), 1)
      assert.strictEqual(fake.ledger.settlements.length, 1)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-1"), 97)
      assert.strictEqual(fake.calls("verify"), 1)
    }))

  it.scoped("a single-use token's re-settle refused with BCK.X402.0059 resolves the unknown attempt as settled", () =>
    Effect.gen(function*() {
      const { fake, handler, runs, token } = yield* liveSetup
      fake.faults.next("settle", FakeNevermined.Fault.noAnswer({ applied: true }))
      yield* Effect.promise(() => handler(call(token, KEY), ctx))
      fake.faults.next("settle", FakeNevermined.Fault.status(400, "BCK.X402.0059", "Token already used"))
      const retry = yield* Effect.promise(() => handler(call(token, KEY), ctx))
      assert.strictEqual(textOf(retry), "answer #1")
      assert.isTrue(receiptOf(retry).success)
      assert.strictEqual(runs(), 1)
      assert.strictEqual(fake.ledger.settlements.length, 1)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-1"), 97)
    }))

  it.scoped("settle lost before it applied (reusable token): the retry answers, and is never settled again", () =>
    Effect.gen(function*() {
      const { fake, handler, runs, token } = yield* liveSetup
      fake.faults.next("settle", FakeNevermined.Fault.noAnswer())
      yield* Effect.promise(() => handler(call(token, KEY), ctx))
      assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-1"), 100)
      const retry = yield* Effect.promise(() => handler(call(token, KEY), ctx))
      assert.strictEqual(textOf(retry), "answer #1")
      assert.strictEqual(runs(), 1)
      // Fail closed on the double charge: the seller loses the one charge whose answer was lost.
      assert.strictEqual(fake.ledger.settlements.length, 0)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-1"), 100)
    }))
})

describe("requiresPayment: idempotent retries on the DynamoDB ledger (dynalite, two cold starts)", () => {
  let server: Server.DynamoDbServer
  beforeAll(async () => {
    server = await Server.start()
  }, 30_000)
  afterAll(async () => {
    await server?.close()
  })

  it.live("a retry on another instance gets the stored answer; one charge", () =>
    Effect.gen(function*() {
      const { ledger, layer, subscriber, token } = setup()
      const table = DynamoDbLedger.layer({
        tableName: server.tableName,
        endpoint: server.endpoint,
        region: Server.region,
        credentials: Server.credentials
      })
      let runs = 0
      const instance = () =>
        requiresPayment({ planId: "plan-1", credits: 2, layer, services: Layer.merge(quiet, table) })(() => {
          runs++
          return { content: [{ type: "text", text: `answer #${runs}` }] }
        })
      const [a, b] = [instance(), instance()]
      const first = yield* Effect.promise(() => a(call(token, KEY), ctx))
      const second = yield* Effect.promise(() => b(call(token, KEY), ctx))
      assert.strictEqual(textOf(first), "answer #1")
      assert.strictEqual(textOf(second), "answer #1")
      assert.strictEqual(runs, 1)
      assert.strictEqual(ledger.settlements.length, 1)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 98)
      yield* Effect.promise(() => a.runtime.dispose())
      yield* Effect.promise(() => b.runtime.dispose())
    }))

  it.scoped("settle answer lost after it applied (FakeNevermined), retried on another instance: one charge", () =>
    Effect.gen(function*() {
      const { fake, layer, token } = yield* fundedLive
      // A table of its own: FakeNevermined numbers its request ids from 1, as TestFacilitator does.
      const own = yield* Effect.acquireRelease(
        Effect.promise(() => Server.start("x402-ledger-fake")),
        (started) => Effect.promise(() => started.close())
      )
      const table = DynamoDbLedger.layer({
        tableName: own.tableName,
        endpoint: own.endpoint,
        region: Server.region,
        credentials: Server.credentials
      })
      let runs = 0
      const instance = () => {
        const handler = requiresPayment({ planId: "plan-1", credits: 4, layer, services: Layer.merge(quiet, table) })(
          () => {
            runs++
            return { content: [{ type: "text", text: `answer #${runs}` }] }
          }
        )
        return Effect.as(Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose())), handler)
      }
      const [a, b] = [yield* instance(), yield* instance()]
      const key = `${KEY}_dynamo`
      fake.faults.next("settle", FakeNevermined.Fault.noAnswer({ applied: true }))
      const first = yield* Effect.promise(() => a(call(token, key), ctx))
      assert.strictEqual(errorOf(first).code, 502)
      const retry = yield* Effect.promise(() => b(call(token, key), ctx))
      assert.strictEqual(textOf(retry), "answer #1")
      const again = yield* Effect.promise(() => a(call(token, key), ctx))
      assert.strictEqual(textOf(again), "answer #1")
      assert.strictEqual(runs, 1)
      assert.strictEqual(fake.ledger.settlements.length, 1)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-1"), 96)
    }))
})

describe("httpHandler: idempotent retries (API Gateway v2 events)", () => {
  const http = (token: string | undefined, key?: string) =>
    AgentCoreEvents.apiGatewayV2({
      ...(token !== undefined ? { token } : {}),
      ...(key !== undefined ? { headers: { "Idempotency-Key": key } } : {})
    })
  const receipt = (result: { headers?: Record<string, unknown> | undefined }) =>
    X402.SettleResponseHeader.decodeEither(String(result.headers?.["payment-response"] ?? ""))

  it.effect("a retry after a settled attempt gets the stored answer and its receipt; one charge", () =>
    Effect.gen(function*() {
      const { ledger, layer, subscriber, token } = setup()
      let runs = 0
      const handler = httpHandler({ planId: "plan-1", credits: 2, layer, services: quiet })(() => {
        runs++
        return { statusCode: 200, body: `answer #${runs}` }
      })
      const first = yield* Effect.promise(() => handler(http(token, KEY), ctx))
      const second = yield* Effect.promise(() => handler(http(token, KEY), ctx))
      assert.strictEqual(first.body, "answer #1")
      assert.strictEqual(second.statusCode, 200)
      assert.strictEqual(second.body, "answer #1")
      assert.deepStrictEqual(receipt(second), receipt(first))
      assert.strictEqual(runs, 1)
      assert.strictEqual(ledger.settlements.length, 1)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 98)
    }))

  it.effect("over the byte cap: 409 'already paid' with the earlier receipt; in progress: 409; invalid key: 400", () =>
    Effect.gen(function*() {
      const { ledger, layer, token } = setup()
      const gate = yield* Deferred.make<void>()
      const entered = yield* Deferred.make<void>()
      let runs = 0
      const handler = httpHandler({
        planId: "plan-1",
        layer,
        services: Layer.merge(quiet, SettlementLedger.layerMemory({ maxResultBytes: 64 }))
      })(() =>
        Effect.gen(function*() {
          runs++
          yield* Deferred.succeed(entered, undefined)
          yield* Deferred.await(gate)
          return { statusCode: 200, body: "y".repeat(400) }
        })
      )
      const first = yield* Effect.fork(Effect.promise(() => handler(http(token, KEY), ctx)))
      yield* Deferred.await(entered)
      const concurrent = yield* Effect.promise(() => handler(http(token, KEY), ctx))
      assert.strictEqual(concurrent.statusCode, 409)
      assert.strictEqual(JSON.parse(concurrent.body!).reason, "InProgress")
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual((yield* Fiber.join(first)).body, "y".repeat(400))
      const retry = yield* Effect.promise(() => handler(http(token, KEY), ctx))
      assert.strictEqual(retry.statusCode, 409)
      assert.strictEqual(JSON.parse(retry.body!).reason, "AlreadyPaid")
      assert.isTrue(Either.isRight(receipt(retry)) && Either.getOrThrow(receipt(retry)).success)
      const invalid = yield* Effect.promise(() => handler(http(token, "no spaces allowed"), ctx))
      assert.strictEqual(invalid.statusCode, 400)
      assert.strictEqual(runs, 1)
      assert.strictEqual(ledger.settlements.length, 1)
    }))
})
