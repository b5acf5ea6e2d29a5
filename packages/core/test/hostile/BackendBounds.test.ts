// Invariant 7 (bounded work per call) and issue 17 (settle retries that are safe), against backends
// that misbehave on purpose: endless or oversized answers, rate limits on settle.
import { Facilitator, Nevermined, Paywall, Subscriber } from "@effect-x402/core"
import { FakeNevermined } from "@effect-x402/testing"
import { FetchHttpClient, type HttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, type Scope } from "effect"
import * as Http from "node:http"
import {
  advanceUntil,
  AGENT,
  clients,
  ENDPOINT,
  facilitator,
  paymentRequired,
  PLAN,
  realSleep,
  seed,
  waitForSleep,
  waitUntil
} from "../Nevermined.fixtures.js"

const { Fault } = FakeNevermined

interface Hostile {
  readonly url: string
  /** Connections whose answer the client stopped reading (the server saw them closed early). */
  readonly closed: () => number
  /** Bytes the server managed to write in all. */
  readonly written: () => number
  readonly requests: () => number
}

/**
 * A backend on loopback that answers every request with a 200 whose body never ends (or, with
 * `declared`, a body that announces a huge `content-length`).
 */
const hostileBackend = (options: { readonly declared?: number } = {}): Effect.Effect<Hostile, never, Scope.Scope> =>
  Effect.gen(function*() {
    let closed = 0
    let written = 0
    let requests = 0
    const chunk = Buffer.alloc(64 * 1024, "a")
    const server = Http.createServer((request, response) => {
      requests++
      request.resume()
      let finished = false
      response.on("close", () => {
        if (!finished) closed++
      })
      response.writeHead(200, {
        "content-type": "application/json",
        ...(options.declared !== undefined ? { "content-length": String(options.declared) } : {})
      })
      // `{"isValid":true,"pad":"aaaa…` and never the end: only a cap stops a reader.
      response.write("{\"isValid\":true,\"pad\":\"")
      const pump = () => {
        while (!response.destroyed && written < 3 * 1024 * 1024 * 1024) {
          written += chunk.length
          if (!response.write(chunk)) {
            response.once("drain", pump)
            return
          }
        }
        finished = true
      }
      pump()
    })
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.void))
      }),
      () =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const address = server.address() as { readonly port: number }
    return {
      url: `http://127.0.0.1:${address.port}`,
      closed: () => closed,
      written: () => written,
      requests: () => requests
    }
  })

const liveOver = (
  url: string,
  client: Layer.Layer<HttpClient.HttpClient>,
  options: Partial<Nevermined.Options> = {}
) =>
  Effect.flatMap(
    Layer.build(client),
    (context) =>
      Nevermined.make({ apiKey: FakeNevermined.makeApiKey("0xprovider"), backendUrl: url, ...options }).pipe(
        Effect.provide(context)
      )
  )

describe("a backend answer is read with a size cap", () => {
  for (const [name, client] of clients) {
    it.scoped(`${name}: an endless answer fails with TooLarge at the cap and the connection is closed`, () =>
      Effect.gen(function*() {
        const hostile = yield* hostileBackend()
        const live = yield* liveOver(hostile.url, client)
        const { redacted } = seed(yield* FakeNevermined.make())
        // The test clock never moves here: what ends the call is the cap, not a timeout.
        const error = yield* Effect.flip(live.verify({ paymentRequired, token: redacted, maxAmount: 1 }))
        assert.strictEqual(error._tag, "FacilitatorError")
        assert.strictEqual(error.kind, "TooLarge")
        assert.strictEqual(error.operation, "verify")
        assert.isTrue(error.requestSent)
        assert.strictEqual(error.status, 200)
        assert.include(error.message, `larger than ${Nevermined.defaultMaxResponseBytes} bytes`)
        // Not retried: a second attempt would only read another megabyte of the same.
        assert.strictEqual(hostile.requests(), 1)
        yield* waitUntil(() => hostile.closed() === 1, "the server saw the connection closed")
        // The server could write what the socket buffers hold, far from the 3 GiB it wanted.
        assert.isBelow(hostile.written(), 64 * 1024 * 1024)
      }))
  }

  it.scoped("a declared content-length over the cap is refused without reading the body", () =>
    Effect.gen(function*() {
      const hostile = yield* hostileBackend({ declared: 1536 * 1024 * 1024 })
      const live = yield* liveOver(hostile.url, FetchHttpClient.layer)
      const { redacted } = seed(yield* FakeNevermined.make())
      const error = yield* Effect.flip(live.settle({ paymentRequired, token: redacted, maxAmount: 1 }))
      assert.strictEqual(error.kind, "TooLarge")
      assert.strictEqual(error.operation, "settle")
      assert.isTrue(error.requestSent)
      assert.strictEqual(hostile.requests(), 1)
      yield* waitUntil(() => hostile.closed() === 1, "the server saw the connection closed")
    }))

  it.scoped("the cap is configurable; an answer over it is TooLarge, and for settle Indeterminate", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      // A real settle answer is ~250 bytes: under a 64-byte cap it is too large, yet it was applied.
      const tight = yield* facilitator(fake, { maxResponseBytes: 64 })
      const paywall = Paywall.make<unknown>({ planId: PLAN, agentId: AGENT, endpoint: ENDPOINT, credits: 1 })
      const verified = yield* facilitator(fake)
      // Verify answers are short enough; only the settle answer is over the cap.
      const split = Facilitator.Facilitator.of({ ...verified, settle: tight.settle })
      const error = yield* Effect.flip(
        Paywall.protect(paywall, { request: undefined, token: redacted }, () => Effect.succeed("out")).pipe(
          Effect.provideService(Facilitator.Facilitator, split)
        )
      )
      assert.strictEqual(error._tag, "SettleFailed")
      if (error._tag !== "SettleFailed") return
      assert.strictEqual(error.reason, "Indeterminate")
      assert.strictEqual(error.cause?._tag === "FacilitatorError" && error.cause.kind, "TooLarge")
      assert.strictEqual(fake.calls("settle"), 1)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 9, "the backend did burn it")
    }))

  it.scoped("the subscriber's calls are capped too", () =>
    Effect.gen(function*() {
      const hostile = yield* hostileBackend()
      const http = yield* Layer.build(FetchHttpClient.layer)
      const live = yield* Subscriber.make({
        apiKey: FakeNevermined.makeApiKey("0xbuyer"),
        backendUrl: hostile.url,
        maxResponseBytes: 4096
      }).pipe(Effect.provide(http))
      const error = yield* Effect.flip(live.accessToken({ planId: PLAN }))
      assert.strictEqual(error.kind, "TooLarge")
      assert.strictEqual(error.operation, "permissions")
      assert.strictEqual(hostile.requests(), 1, "a too-large answer is not retried")
      yield* waitUntil(() => hostile.closed() === 1, "the server saw the connection closed")
    }))
})

describe("settle retries only what provably did not apply", () => {
  it.scoped("a 429 on settle is retried after its Retry-After, and the credits are burned once", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const live = yield* facilitator(fake)
      fake.faults.next("settle", Fault.rateLimited(3))
      const fiber = yield* Effect.fork(live.settle({ paymentRequired, token: redacted, maxAmount: 2 }))
      yield* waitUntil(() => fake.calls("settle") === 1, "the first settle arrived")
      yield* waitForSleep("3 seconds")
      yield* advanceUntil(() => false, { limit: "2900 millis" })
      yield* realSleep(30)
      assert.strictEqual(fake.calls("settle"), 1, "no retry before Retry-After")
      yield* advanceUntil(() => fake.calls("settle") === 2, { limit: "1 second" })
      const answer = yield* Fiber.join(fiber)
      assert.isTrue(answer.success)
      assert.strictEqual(fake.calls("settle"), 2)
      assert.strictEqual(fake.ledger.settlements.length, 1)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 8)
    }))

  it.scoped("a Retry-After that does not fit the settle deadline fails at once with the 429", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const live = yield* facilitator(fake, { timeouts: { settle: "5 seconds" } })
      fake.faults.next("settle", Fault.rateLimited(10))
      const error = yield* Effect.flip(live.settle({ paymentRequired, token: redacted, maxAmount: 1 }))
      assert.strictEqual(error.kind, "HttpStatus")
      assert.strictEqual(error.status, 429)
      assert.strictEqual(fake.calls("settle"), 1)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 10)
    }))

  it.scoped("repeated 429s stop at maxAttempts with the last 429; nothing is burned", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const live = yield* facilitator(fake, { retry: { maxAttempts: 2 } })
      fake.faults.always("settle", Fault.rateLimited(1))
      const fiber = yield* Effect.fork(Effect.flip(live.settle({ paymentRequired, token: redacted, maxAmount: 1 })))
      yield* advanceUntil(() => fiber.unsafePoll() !== null, { limit: "5 seconds", step: "250 millis" })
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error.status, 429)
      assert.strictEqual(fake.calls("settle"), 2)
      assert.strictEqual(fake.ledger.settlements.length, 0)
    }))

  it.scoped("after a 429 a later failure that may have applied is still not retried (Indeterminate)", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const live = yield* facilitator(fake)
      const paywall = Paywall.make<unknown>({ planId: PLAN, agentId: AGENT, endpoint: ENDPOINT, credits: 1 })
      fake.faults.next("settle", Fault.rateLimited(0), Fault.status(503))
      const fiber = yield* Effect.fork(Effect.flip(
        Paywall.protect(paywall, { request: undefined, token: redacted }, () => Effect.succeed("out")).pipe(
          Effect.provideService(Facilitator.Facilitator, live)
        )
      ))
      yield* advanceUntil(() => fiber.unsafePoll() !== null, { limit: "5 seconds" })
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag === "SettleFailed" && error.reason, "Indeterminate")
      assert.strictEqual(fake.calls("settle"), 2, "the 429 once, the 503 never again")
    }))
})
