// Hostile suite, invariant 4 (RELIABILITY.md, "Money-tight"): one verification settles at most once,
// with the request id the library chose. A caller's `x-nvm-agent-request-id` (in any case, beside
// the issued one or alone) never reaches the facilitator, a replayed RESPONSE event settles nothing
// more, and an id issued for one token does not travel with another.
import type { AgentCore, LambdaRuntime } from "@effect-x402/lambda"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { AgentCoreEvents, LocalGateway, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import type { Layer } from "effect"
import { Duration, Effect, FastCheck as fc, Logger } from "effect"

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any

const PLAN = "plan-1"
const PRICE = 3
const quiet = Logger.replace(Logger.defaultLogger, Logger.none) as Layer.Layer<never>

const setup = (credits = 1_000) => {
  const seeded = TestFacilitator.seeded({ planId: PLAN, credits })
  const handler = interceptor({
    planId: PLAN,
    credits: PRICE,
    layer: TestFacilitator.layer(seeded.ledger),
    services: quiet
  })
  return { ...seeded, handler }
}

const ctx = AgentCoreEvents.context()
const invoke = (
  handler: (event: unknown, context: LambdaRuntime.LambdaContext) => Promise<AgentCore.InterceptorOutput>,
  event: unknown
) => Effect.promise(() => handler(event, ctx))

const settledIds = (ledger: TestFacilitator.Ledger) =>
  ledger.calls.filter((c) => c.operation === "settle").map((c) => c.agentRequestId)
const verifiedIds = (ledger: TestFacilitator.Ledger) =>
  ledger.calls.filter((c) => c.operation === "verify" && c.outcome === "valid").map((c) => c.agentRequestId)

/** The name in a random mix of upper and lower case. */
const anyCase = (name: string) =>
  fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length }).map((upper) =>
    [...name].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join("")
  )

describe("hostile: the caller never chooses the request id", () => {
  it.scopedLive("through the gateway over HTTP: a forged id in any case, from the caller or the target, is never settled", () =>
    Effect.gen(function*() {
      const { handler, ledger, token } = setup()
      const forgedByTarget = "target-forged-id"
      const gateway = yield* LocalGateway.make({
        interceptor: handler,
        // A target that tries to steer the settle too, with an id header in its answer.
        target: (request) => ({
          statusCode: 200,
          headers: { "Content-Type": "application/json", "X-NVM-AGENT-REQUEST-ID": forgedByTarget },
          body: { jsonrpc: "2.0", id: (request.body as Json).id, result: { content: [{ type: "text", text: "paid" }] } }
        })
      })
      const names = fc.sample(anyCase("x-nvm-agent-request-id"), { numRuns: 8, seed: 4 })
      for (const [i, name] of names.entries()) {
        const response = yield* Effect.promise(() =>
          fetch(gateway.url, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              "payment-signature": token,
              [name]: `caller-forged-${i}`,
              "x-x402-request-seal": "AAAA"
            },
            body: JSON.stringify({ jsonrpc: "2.0", id: i, method: "tools/call", params: { name: "t", arguments: {} } })
          }).then(async (r) => ({ status: r.status, text: await r.text() }))
        )
        assert.strictEqual(response.status, 200, name)
        assert.include(response.text, "paid", name)
      }
      // Every settle used the id its own verification returned: none the caller or target wrote.
      assert.deepStrictEqual(settledIds(ledger), verifiedIds(ledger))
      assert.strictEqual(ledger.settlements.length, names.length)
      for (const id of settledIds(ledger)) {
        assert.isString(id)
        assert.notInclude(id!, "forged")
      }
    }))

  it.effect("for any header casing and value, a RESPONSE never settles with an id it did not issue", () =>
    Effect.gen(function*() {
      const { handler, ledger, token } = setup(1_000_000)
      const cases = fc.sample(
        fc.record({
          name: anyCase("x-nvm-agent-request-id"),
          value: fc.oneof(fc.string({ minLength: 1 }), fc.constant("areq_1"), fc.uuid()),
          seal: fc.option(fc.base64String({ minLength: 4, maxLength: 64 }), { nil: undefined }),
          withIssued: fc.boolean()
        }),
        { numRuns: 60, seed: 44 }
      )
      for (const c of cases) {
        const forwarded = (yield* invoke(handler, AgentCoreEvents.request({ token }))).mcp.transformedGatewayRequest
        const forged: Record<string, string> = {
          [c.name]: c.value,
          ...(c.seal !== undefined ? { "x-x402-request-seal": c.seal } : {})
        }
        const output: AgentCore.InterceptorOutput = yield* invoke(
          handler,
          AgentCoreEvents.response({
            token,
            headers: forged,
            ...(c.withIssued ? { forwardedHeaders: forwarded?.headers } : {})
          })
        )
        assert.isDefined(output.mcp.transformedGatewayResponse)
      }
      const issued = new Set(verifiedIds(ledger))
      for (const id of settledIds(ledger)) {
        if (id !== undefined) assert.isTrue(issued.has(id), `settled with an id it did not issue: ${id}`)
      }
    }))
})

describe("hostile: a replayed RESPONSE settles nothing more", () => {
  it.effect("five replays of one RESPONSE event: one settle, one charge, the same receipt each time", () =>
    Effect.gen(function*() {
      const { handler, ledger, subscriber, token } = setup(100)
      const forwarded = (yield* invoke(handler, AgentCoreEvents.request({ token }))).mcp.transformedGatewayRequest
      const event = AgentCoreEvents.response({ token, forwardedHeaders: forwarded?.headers })
      const receipts: Array<string | undefined> = []
      for (let i = 0; i < 5; i++) {
        const output = yield* invoke(handler, JSON.parse(JSON.stringify(event)))
        receipts.push(output.mcp.transformedGatewayResponse?.headers?.["payment-response"])
      }
      assert.strictEqual(ledger.calls.filter((c) => c.operation === "settle").length, 1)
      assert.strictEqual(ledger.balance(subscriber, PLAN), 100 - PRICE)
      assert.isString(receipts[0])
      assert.deepStrictEqual(new Set(receipts).size, 1)
    }))

  it.effect("replays without any id (the exchange names the call) settle once too", () =>
    Effect.gen(function*() {
      const { handler, ledger, subscriber, token } = setup(100)
      yield* invoke(handler, AgentCoreEvents.request({ token }))
      const event = AgentCoreEvents.response({ token, result: { content: [{ type: "text", text: "paid" }] } })
      yield* Effect.forEach([1, 2, 3, 4], () => invoke(handler, event), { concurrency: "unbounded" })
      assert.strictEqual(ledger.calls.filter((c) => c.operation === "settle").length, 1)
      assert.strictEqual(ledger.balance(subscriber, PLAN), 100 - PRICE)
    }))

  it.effect("concurrent replays of a sealed RESPONSE: one settle, the others answered from the ledger or withheld", () =>
    Effect.gen(function*() {
      const { handler, ledger, token } = setup(100)
      ledger.latency = Duration.millis(50)
      const forwarded = (yield* invoke(handler, AgentCoreEvents.request({ token }))).mcp.transformedGatewayRequest
      const event = AgentCoreEvents.response({
        token,
        forwardedHeaders: forwarded?.headers,
        result: { content: [{ type: "text", text: "paid" }] }
      })
      const outputs = yield* Effect.forEach(Array.from({ length: 10 }), () => invoke(handler, event), {
        concurrency: "unbounded"
      })
      assert.strictEqual(ledger.calls.filter((c) => c.operation === "settle").length, 1)
      // Every output that shows the paid text carries the one successful receipt.
      const receipt = ledger.settlements[0].transaction
      for (const output of outputs) {
        const wire = JSON.stringify(output)
        if (wire.includes("\"paid\"")) assert.include(wire, receipt)
      }
    }))
})

describe("hostile: an issued id belongs to its token", () => {
  it.effect("the id and seal issued to one token are not used when another token comes back with them", () =>
    Effect.gen(function*() {
      const { handler, ledger, token } = setup(100)
      const other = ledger.mintToken({ subscriber: "0xother", planId: PLAN })
      ledger.fund("0xother", PLAN, 100)
      const forwarded = (yield* invoke(handler, AgentCoreEvents.request({ token }))).mcp.transformedGatewayRequest
      const issued = forwarded?.headers?.["x-nvm-agent-request-id"]
      assert.isString(issued)
      yield* invoke(handler, AgentCoreEvents.response({ token: other, forwardedHeaders: forwarded?.headers }))
      const settles = ledger.calls.filter((c) => c.operation === "settle")
      for (const settle of settles) assert.notStrictEqual(settle.agentRequestId, issued)
    }))
})
