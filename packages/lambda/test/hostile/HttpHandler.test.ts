// Hostile callers of `httpHandler` (issue 12, invariants 2, 6, 7, 8), each case reconciled against the
// TestFacilitator ledger: output released implies a successful settlement of the configured amount
// or an explicit error status; no internal message or secret in any answer or log.
import type { HttpHandler as Http } from "@effect-x402/lambda"
import { httpHandler } from "@effect-x402/lambda/HttpHandler"
import { AgentCoreEvents, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, FastCheck as fc, Layer } from "effect"
import { captureLogs } from "../helpers.js"

const PLAN = "plan-1"
const CREDITS = 3
const MARKER = "PAID-OUTPUT-b71c"
const SECRET = "sk_live_9f8e7d6c5b4a"
const REQUEST_ID = "5a1f0c2e-7b3d-4e8f-9a6b-0c1d2e3f4a5b"
const LEAKY = `GET https://api.vendor.example/v1/search?q=x&api_key=${SECRET} failed: 503`

const setup = (credits = 100) => {
  const seeded = TestFacilitator.seeded({ planId: PLAN, agentId: "agent-1", credits })
  // The handlers' logs are kept, not printed (`logs.lines`).
  const logs = captureLogs()
  return {
    ...seeded,
    logs,
    layer: Layer.merge(TestFacilitator.layer(seeded.ledger), logs.layer),
    ctx: AgentCoreEvents.context({ awsRequestId: REQUEST_ID })
  }
}

const call = (handler: (e: unknown, c: never) => Promise<Http.HttpResult>, event: unknown, ctx: unknown) =>
  Effect.promise(() => handler(event, ctx as never))

const header = (result: Http.HttpResult, name: string): string | undefined => {
  const headers = result.headers ?? {}
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name)
  return key === undefined ? undefined : String(headers[key])
}

const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth)

describe("hostile httpHandler: fail closed on answers (invariant 2)", () => {
  const bodies: ReadonlyArray<[string, Record<string, unknown>]> = [
    ["no body", {}],
    ["an empty body", { body: "" }],
    ["plain text", { body: MARKER, headers: { "content-type": "text/plain" } }],
    ["bytes", { body: Buffer.from(MARKER).toString("base64"), isBase64Encoded: true }],
    ["SSE framing", { body: `event: message\ndata: ${MARKER}\n\n`, headers: { "content-type": "text/event-stream" } }],
    ["an object body", { body: { marker: MARKER } }]
  ]
  for (const [label, shape] of bodies) {
    it.effect(`every 2xx status with ${label} is settled, never released free`, () =>
      Effect.gen(function*() {
        const { ctx, layer, ledger, token } = setup(1000)
        for (let statusCode = 200; statusCode <= 299; statusCode++) {
          const before = ledger.settlements.length
          const handler = httpHandler({ planId: PLAN, credits: CREDITS, layer, services: captureLogs().layer })(() => ({
            statusCode,
            ...shape
          }))
          const result = yield* call(handler, AgentCoreEvents.apiGatewayV2({ token }), ctx)
          assert.strictEqual(result.statusCode, statusCode)
          const burned = ledger.settlements.slice(before)
          assert.strictEqual(burned.length, 1, `status ${statusCode} with ${label} was not settled`)
          assert.strictEqual(burned[0].credits, CREDITS)
          assert.isDefined(header(result, "payment-response"))
        }
      }))
  }

  it.effect("an explicit error status passes through unsettled", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      for (const statusCode of [400, 404, 429, 500, 503]) {
        const handler = httpHandler({ planId: PLAN, layer, services: captureLogs().layer })(() => ({
          statusCode,
          body: "no"
        }))
        const result = yield* call(handler, AgentCoreEvents.apiGatewayV2({ token }), ctx)
        assert.strictEqual(result.statusCode, statusCode)
      }
      assert.deepStrictEqual(ledger.settlements, [])
    }))
})

describe("hostile httpHandler: nothing internal reaches the caller (invariant 6)", () => {
  const failures: ReadonlyArray<[string, () => unknown]> = [
    ["throws", () => {
      throw new Error(LEAKY)
    }],
    ["rejects", () => Promise.reject(new Error(LEAKY))],
    ["fails", () => Effect.fail(new Error(LEAKY))],
    ["dies", () => Effect.die(new Error(LEAKY))],
    ["throws a string", () => {
      throw LEAKY
    }]
  ]
  for (const [name, run] of failures) {
    it.effect(`a handler that ${name} answers a generic 500 with the request id; the detail is logged, redacted`, () =>
      Effect.gen(function*() {
        const { ctx, layer, ledger, token } = setup()
        const logs = captureLogs()
        const handler = httpHandler({ planId: PLAN, layer, services: logs.layer })(run)
        const result = yield* call(handler, AgentCoreEvents.apiGatewayV2({ token }), ctx)
        assert.strictEqual(result.statusCode, 500)
        const body = JSON.parse(result.body!)
        assert.strictEqual(body.error, "Internal Server Error")
        assert.strictEqual(body.requestId, REQUEST_ID)
        const wire = JSON.stringify(result)
        for (const leak of [SECRET, "api.vendor.example", "503"]) assert.notInclude(wire, leak)
        assert.deepStrictEqual(ledger.settlements, [])
        const all = logs.lines.join("\n")
        assert.notInclude(all, SECRET)
        assert.isTrue(
          logs.lines.some((l) => l.startsWith("ERROR") && l.includes("api.vendor.example") && l.includes(REQUEST_ID)),
          "the log line names the failure and carries the request id"
        )
      }))
  }

  it.effect("a credits policy that fails is a generic 500, not a verification failure", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const logs = captureLogs()
      const handler = httpHandler({
        planId: PLAN,
        layer,
        services: logs.layer,
        credits: () => {
          throw new Error(LEAKY)
        }
      })(() => ({ marker: MARKER }))
      for (const event of [AgentCoreEvents.apiGatewayV2({ token })]) {
        const result = yield* call(handler, event, ctx)
        assert.strictEqual(result.statusCode, 500)
        const wire = JSON.stringify(result)
        for (const leak of [SECRET, "api.vendor.example", "Invalid credits", "Verification failed", MARKER]) {
          assert.notInclude(wire, leak)
        }
        assert.strictEqual(JSON.parse(result.body!).requestId, REQUEST_ID)
      }
      assert.deepStrictEqual(ledger.settlements, [])
      assert.notInclude(logs.lines.join("\n"), SECRET)
    }))
})

describe("hostile httpHandler: bounded work (invariant 7)", () => {
  for (const depth of [65, 1_000, 20_000]) {
    it.effect(`a body ${depth} levels deep is refused with 400 before verify`, () =>
      Effect.gen(function*() {
        const { ctx, layer, ledger, token } = setup()
        let ran = false
        const handler = httpHandler({ planId: PLAN, layer, services: captureLogs().layer })(() => {
          ran = true
          return { marker: MARKER }
        })
        for (
          const event of [
            AgentCoreEvents.apiGatewayV2({ token, body: nested(depth) }),
            AgentCoreEvents.apiGatewayV2({
              token,
              body: Buffer.from(`{"a":${nested(depth)}}`).toString("base64"),
              isBase64Encoded: true
            })
          ]
        ) {
          const result = yield* call(handler, event, ctx)
          assert.strictEqual(result.statusCode, 400)
          assert.strictEqual(JSON.parse(result.body!).error, "Bad Request")
        }
        assert.isFalse(ran)
        assert.deepStrictEqual(ledger.calls, [])
      }))
  }

  it.effect("a body at the bound, and deep-looking text inside strings, are served", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = httpHandler({ planId: PLAN, layer, services: captureLogs().layer })(() => ({ marker: MARKER }))
      for (const body of [nested(64), JSON.stringify({ text: nested(500) }), "[[[ not json"]) {
        const result = yield* call(handler, AgentCoreEvents.apiGatewayV2({ token, body }), ctx)
        assert.strictEqual(result.statusCode, 200, body.slice(0, 20))
      }
      assert.strictEqual(ledger.settlements.length, 3)
    }))
})

describe("hostile httpHandler: answers before the Lambda's deadline (invariant 8)", () => {
  it.live("a settle slower than the remaining time ends in the library's 'settlement outcome unknown' 502", () =>
    Effect.gen(function*() {
      const { layer, ledger, token } = setup()
      const handler = httpHandler({ planId: PLAN, layer, services: captureLogs().layer })(() => {
        // Verify has answered; the facilitator turns slow for settle.
        ledger.latency = Duration.seconds(30)
        return { marker: MARKER }
      })
      // 700 ms left, 500 ms margin: settle is cut off after at most 200 ms, long before 30 s.
      const ctx = AgentCoreEvents.context({ awsRequestId: REQUEST_ID, remainingTimeInMillis: 700 })
      const result = yield* call(handler, AgentCoreEvents.apiGatewayV2({ token }), ctx)
      assert.strictEqual(result.statusCode, 502)
      const body = JSON.parse(result.body!)
      assert.strictEqual(body.error, "Bad Gateway")
      assert.match(body.message, /outcome unknown/i)
      assert.notInclude(JSON.stringify(result), MARKER)
      assert.deepStrictEqual(ledger.settlements, [])
    }))

  it.live("no time left at all: nothing is verified and the answer is a 502, not a paid output", () =>
    Effect.gen(function*() {
      const { layer, ledger, token } = setup()
      let ran = false
      const handler = httpHandler({ planId: PLAN, layer, services: captureLogs().layer })(() => {
        ran = true
        return { marker: MARKER }
      })
      const ctx = AgentCoreEvents.context({ remainingTimeInMillis: 100 })
      const result = yield* call(handler, AgentCoreEvents.apiGatewayV2({ token }), ctx)
      assert.strictEqual(result.statusCode, 502)
      assert.isFalse(ran)
      assert.deepStrictEqual(ledger.settlements, [])
    }))
})

describe("hostile httpHandler: properties", () => {
  const { layer, ledger, token } = setup(1_000_000)
  const quiet = captureLogs()
  let current: { statusCode: number; body: unknown } = { statusCode: 200, body: "" }
  const handler = httpHandler({ planId: PLAN, credits: CREDITS, layer, services: quiet.layer })(() => current)
  const ctx = AgentCoreEvents.context({ awsRequestId: REQUEST_ID })
  const body = fc.oneof(
    fc.string(),
    fc.json(),
    fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString("latin1")),
    fc.constant(""),
    fc.constant(null)
  )

  it.live.prop(
    "a released answer is an error status or a settlement of the configured amount",
    [fc.integer({ min: 100, max: 599 }), body],
    ([statusCode, answerBody]) =>
      Effect.gen(function*() {
        current = { statusCode, body: answerBody }
        const before = ledger.settlements.length
        const result = yield* call(handler, AgentCoreEvents.apiGatewayV2({ token }), ctx)
        const burned = ledger.settlements.slice(before)
        if ((result.statusCode ?? 200) >= 400) {
          assert.strictEqual(burned.length, 0)
        } else {
          assert.strictEqual(burned.length, 1, `status ${statusCode} released unsettled`)
          assert.strictEqual(burned[0].credits, CREDITS)
        }
      }),
    { fastCheck: { numRuns: 200 } }
  )

  it.live.prop(
    "any request nested past the bound is refused before verify; any within it is not refused for depth",
    [fc.integer({ min: 1, max: 400 }), fc.constantFrom("[", "{\"k\":")],
    ([depth, open]) =>
      Effect.gen(function*() {
        current = { statusCode: 200, body: "ok" }
        const close = open === "[" ? "]" : "}"
        const text = open.repeat(depth) + (open === "[" ? "" : "1") + close.repeat(depth)
        const calls = ledger.calls.length
        const result = yield* call(handler, AgentCoreEvents.apiGatewayV2({ token, body: text }), ctx)
        if (depth > 64) {
          assert.strictEqual(result.statusCode, 400)
          assert.strictEqual(ledger.calls.length, calls, "verified a too-deep body")
        } else {
          assert.strictEqual(result.statusCode, 200)
        }
      }),
    { fastCheck: { numRuns: 150 } }
  )

  it.live.prop(
    "a failing handler's message never reaches the answer",
    [fc.string({ minLength: 1 }), fc.boolean()],
    ([detail, paid]) =>
      Effect.gen(function*() {
        const secretive = httpHandler({ planId: PLAN, layer, services: quiet.layer })(() => {
          throw new Error(`${detail} ${LEAKY}`)
        })
        const event = paid ? AgentCoreEvents.apiGatewayV2({ token }) : AgentCoreEvents.apiGatewayV2()
        const result = yield* call(secretive, event, ctx)
        assert.notInclude(JSON.stringify(result), SECRET)
        if (paid) {
          assert.strictEqual(result.statusCode, 500)
          assert.strictEqual(JSON.parse(result.body!).requestId, REQUEST_ID)
        } else {
          assert.strictEqual(result.statusCode, 402)
        }
      }),
    { fastCheck: { numRuns: 50 } }
  )
})
