// The interceptor's span: with a tracer installed, each phase of a paid call is one
// `Interceptor.handle` span carrying the call's attributes (and never the token); with tracing
// switched off, the same round trip settles and opens none.
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { AgentCoreEvents, TestFacilitator, TestTelemetry } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { forwardedOf, receiptOf } from "./helpers.js"

const paidRoundTrip = (services: Layer.Layer<never>) =>
  Effect.gen(function*() {
    const seeded = TestFacilitator.seeded({ planId: "plan-1", credits: 20 })
    const handler = interceptor({ planId: "plan-1", layer: TestFacilitator.layer(seeded.ledger), services })
    const ctx = AgentCoreEvents.context()
    const options = { token: seeded.token, tool: "getPatient" }
    const forwarded = forwardedOf(yield* Effect.promise(() => handler(AgentCoreEvents.request(options), ctx)))
    const output = yield* Effect.promise(() =>
      handler(AgentCoreEvents.response({ ...options, forwardedHeaders: forwarded.headers }), ctx)
    )
    return { output, seeded }
  })

describe("interceptor: spans", () => {
  it.effect("a tracer sees one span per phase, with the call's attributes and no token", () =>
    Effect.gen(function*() {
      const captured = TestTelemetry.make()
      const { output, seeded } = yield* paidRoundTrip(captured.layer)
      assert.isDefined(receiptOf(output))
      assert.strictEqual(seeded.ledger.settlements.length, 1)
      const spans = captured.spans.filter((span) => span.name === "Interceptor.handle")
      assert.deepStrictEqual(spans.map((span) => span.attributes.get("x402.phase")), ["REQUEST", "RESPONSE"])
      for (const span of spans) {
        assert.strictEqual(span.attributes.get("mcp.method"), "tools/call")
        assert.strictEqual(span.attributes.get("mcp.tool"), "getPatient")
        assert.strictEqual(span.attributes.get("x402.billable"), true)
      }
      assert.notInclude(captured.text(), seeded.token)
    }))

  it.effect("tracing switched off: the paid round trip settles and no span is recorded", () =>
    Effect.gen(function*() {
      const captured = TestTelemetry.make()
      const { output, seeded } = yield* paidRoundTrip(Layer.merge(captured.layer, Layer.setTracerEnabled(false)))
      assert.isDefined(receiptOf(output))
      assert.strictEqual(seeded.ledger.settlements.length, 1)
      assert.deepStrictEqual(captured.spans.map((span) => span.name), [])
    }))
})
