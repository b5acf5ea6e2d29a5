// The live layer's timing rules (timeouts, Retry-After, no retry of a sent settle) on the test clock
// alone: a stub HttpClient answers from a script, so no real I/O or real time is involved and the
// test clock is the only clock. What the same rules do over real loopback HTTP (faults injected by
// FakeNevermined) is in Nevermined.test.ts.
import { Nevermined, X402 } from "@effect-x402/core"
import { FakeNevermined } from "@effect-x402/testing"
import { HttpClient, HttpClientResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Redacted, TestClock } from "effect"

type Step = { readonly status: number; readonly body?: unknown; readonly headers?: Record<string, string> } | "never"

/** A stub HttpClient: each request to a path takes the next step of that path's script. */
const stubClient = (script: Record<string, Array<Step>>) => {
  const calls: Array<string> = []
  const client = HttpClient.make((request, url) =>
    Effect.suspend(() => {
      calls.push(url.pathname)
      const step = script[url.pathname]?.shift()
      if (step === undefined || step === "never") return Effect.never
      return Effect.succeed(HttpClientResponse.fromWeb(
        request,
        new Response(JSON.stringify(step.body ?? {}), {
          status: step.status,
          headers: { "content-type": "application/json", ...step.headers }
        })
      ))
    })
  )
  return { calls, count: (path: string) => calls.filter((p) => p === path).length, client }
}

const VERIFY = "/api/v1/x402/verify"
const SETTLE = "/api/v1/x402/settle"
const API_KEY = FakeNevermined.makeApiKey("0x00000000000000000000000000000000000000aa")
const paymentRequired = X402.paymentRequired({ planIds: ["plan-1"], network: "eip155:84532" })
const request = { paymentRequired, token: Redacted.make("a-token"), maxAmount: 1 }
const settled = { success: true, transaction: "0xabc", network: "eip155:84532", creditsRedeemed: "1" }

const live = (stub: ReturnType<typeof stubClient>, options: Partial<Nevermined.Options> = {}) =>
  Nevermined.make({ apiKey: API_KEY, backendUrl: "https://backend.test", ...options }).pipe(
    Effect.provide(Layer.succeed(HttpClient.HttpClient, stub.client))
  )

/** Lets the forked call run up to its next sleep or wait (no real time passes). */
const settleFibers = Effect.repeatN(Effect.yieldNow(), 50)

describe("Nevermined live layer on the test clock (stub HttpClient)", () => {
  it.effect("verify waits as long as Retry-After says before trying again", () =>
    Effect.gen(function*() {
      const stub = stubClient({
        [VERIFY]: [{ status: 429, headers: { "retry-after": "2" } }, { status: 200, body: { isValid: true } }]
      })
      const facilitator = yield* live(stub)
      const fiber = yield* Effect.fork(facilitator.verify(request))
      yield* settleFibers
      assert.strictEqual(stub.count(VERIFY), 1)
      yield* TestClock.adjust("1900 millis")
      yield* settleFibers
      assert.strictEqual(stub.count(VERIFY), 1, "no retry before Retry-After")
      yield* TestClock.adjust("100 millis")
      const answer = yield* Fiber.join(fiber)
      assert.isTrue(answer.isValid)
      assert.strictEqual(stub.count(VERIFY), 2)
    }))

  it.effect("a Retry-After beyond the verify timeout fails at once with the 429", () =>
    Effect.gen(function*() {
      const stub = stubClient({ [VERIFY]: [{ status: 429, headers: { "retry-after": "60" } }] })
      const facilitator = yield* live(stub)
      const error = yield* Effect.flip(facilitator.verify(request))
      assert.strictEqual(error.kind, "HttpStatus")
      assert.strictEqual(error.status, 429)
      assert.strictEqual(stub.count(VERIFY), 1)
    }))

  it.effect("verify that gets no answer times out after 10 s by default, not before", () =>
    Effect.gen(function*() {
      const stub = stubClient({ [VERIFY]: ["never"] })
      const facilitator = yield* live(stub)
      const fiber = yield* Effect.fork(facilitator.verify(request))
      yield* settleFibers
      yield* TestClock.adjust("9900 millis")
      yield* settleFibers
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)), "still waiting before 10 s")
      yield* TestClock.adjust("100 millis")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error.kind, "Timeout")
      assert.strictEqual(error.operation, "verify")
      assert.isTrue(error.requestSent)
      assert.strictEqual(stub.count(VERIFY), 1)
    }))

  it.effect("a slow answer within the timeout is fine", () =>
    Effect.gen(function*() {
      const stub = stubClient({ [VERIFY]: [{ status: 200, body: { isValid: true } }] })
      const slow = { ...stub, client: HttpClient.transform(stub.client, Effect.delay("3 seconds")) }
      const facilitator = yield* live(slow)
      const fiber = yield* Effect.fork(facilitator.verify(request))
      yield* settleFibers
      yield* TestClock.adjust("3 seconds")
      assert.isTrue((yield* Fiber.join(fiber)).isValid)
    }))

  it.effect("settle that gets no answer times out after 30 s by default, and is not retried", () =>
    Effect.gen(function*() {
      const stub = stubClient({ [SETTLE]: ["never", { status: 200, body: settled }] })
      const facilitator = yield* live(stub)
      const fiber = yield* Effect.fork(facilitator.settle(request))
      yield* settleFibers
      yield* TestClock.adjust("29900 millis")
      yield* settleFibers
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)), "still waiting before 30 s")
      yield* TestClock.adjust("100 millis")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error.kind, "Timeout")
      assert.strictEqual(error.operation, "settle")
      assert.isTrue(error.requestSent)
      // The second answer (a success) was never asked for: a sent settle is never sent again.
      assert.strictEqual(stub.count(SETTLE), 1)
    }))

  it.effect("configured timeouts apply", () =>
    Effect.gen(function*() {
      const stub = stubClient({ [VERIFY]: ["never"], [SETTLE]: ["never"] })
      const facilitator = yield* live(stub, { timeouts: { verify: "200 millis", settle: "300 millis" } })
      const verify = yield* Effect.fork(facilitator.verify(request))
      const settle = yield* Effect.fork(facilitator.settle(request))
      yield* settleFibers
      yield* TestClock.adjust("200 millis")
      assert.strictEqual((yield* Effect.flip(Fiber.join(verify))).kind, "Timeout")
      yield* settleFibers
      assert.isTrue(Option.isNone(yield* Fiber.poll(settle)), "settle has 100 ms left")
      yield* TestClock.adjust("100 millis")
      assert.strictEqual((yield* Effect.flip(Fiber.join(settle))).kind, "Timeout")
    }))

  it.effect("verify retries a 503 with backoff and succeeds; settle does not retry a 503", () =>
    Effect.gen(function*() {
      const stub = stubClient({
        [VERIFY]: [{ status: 503 }, { status: 503 }, { status: 200, body: { isValid: true } }],
        [SETTLE]: [{ status: 503 }, { status: 200, body: settled }]
      })
      const facilitator = yield* live(stub)
      const verify = yield* Effect.fork(facilitator.verify(request))
      // The backoff sleeps on the test clock: move it until the third attempt answers.
      for (let i = 0; i < 100 && (yield* Fiber.poll(verify))._tag === "None"; i++) {
        yield* TestClock.adjust("100 millis")
      }
      assert.isTrue((yield* Fiber.join(verify)).isValid)
      assert.strictEqual(stub.count(VERIFY), 3)
      const error = yield* Effect.flip(facilitator.settle(request))
      assert.strictEqual(error.kind, "HttpStatus")
      assert.strictEqual(error.status, 503)
      assert.strictEqual(stub.count(SETTLE), 1)
    }))
})
