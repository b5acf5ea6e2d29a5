// The README's metrics setup, run: paid and refused calls through requiresPayment with the live
// layer against FakeNevermined, the metrics read through @effect/opentelemetry by an OpenTelemetry
// metric reader. What an operator would check: the metric names, their values after the calls,
// and no token or API key in any attribute.
import { AgentCoreEvents } from "@effect-x402/testing"
import { assert, describe, it, vi } from "@effect/vitest"
import { MetricReader, type ResourceMetrics } from "@opentelemetry/sdk-metrics"
import { PLAN_ID, useFundedBackend } from "./fundedBackend.js"

const backend = useFundedBackend()

/** A reader the test collects from on demand (an exporter would do the same on a timer). */
class InMemoryReader extends MetricReader {
  protected override onForceFlush() {
    return Promise.resolve()
  }
  protected override onShutdown() {
    return Promise.resolve()
  }
}

const points = (metrics: ResourceMetrics, name: string) =>
  metrics.scopeMetrics.flatMap((scope) => scope.metrics).filter((m) => m.descriptor.name === name)
    .flatMap((m) => m.dataPoints as ReadonlyArray<{ readonly attributes: object; readonly value: unknown }>)

const sum = (metrics: ResourceMetrics, name: string, attributes: Record<string, string> = {}) =>
  points(metrics, name)
    .filter((p) => Object.entries(attributes).every(([k, v]) => (p.attributes as Record<string, unknown>)[k] === v))
    .reduce((total, p) => total + Number(p.value), 0)

describe("metrics", () => {
  it("2 paid calls and 2 refused ones: the counters and the latency histogram, no secret in any attribute", async () => {
    // The refused calls log a line each (the handler's default logger): kept out of the test output.
    const logged = vi.spyOn(console, "log").mockImplementation(() => undefined)
    const { makeHandler } = await import("../snippets/metrics.js")
    const reader = new InMemoryReader()
    const handler = makeHandler(reader)
    const token = backend().ledger.mintToken({ planId: PLAN_ID, subscriber: backend().subscriber })
    // Metrics are process-global: the assertions are on what these calls added.
    await handler(AgentCoreEvents.request({ tool: "forecast" }), AgentCoreEvents.context())
    const before = (await reader.collect()).resourceMetrics
    await handler(AgentCoreEvents.request({ tool: "forecast", token }), AgentCoreEvents.context())
    await handler(AgentCoreEvents.request({ tool: "forecast", token }), AgentCoreEvents.context())
    await handler(AgentCoreEvents.request({ tool: "forecast" }), AgentCoreEvents.context())
    await handler(AgentCoreEvents.request({ tool: "forecast", token: `${token}-forged` }), AgentCoreEvents.context())
    const { resourceMetrics } = await reader.collect()
    await handler.runtime.dispose()
    logged.mockRestore()

    const added = (name: string, attributes?: Record<string, string>) =>
      sum(resourceMetrics, name, attributes) - sum(before, name, attributes)
    assert.strictEqual(added("x402_calls_paid"), 2)
    assert.strictEqual(added("x402_credits_settled"), 4)
    assert.strictEqual(added("x402_calls_refused", { reason: "missing_token" }), 1)
    assert.strictEqual(added("x402_calls_refused", { reason: "invalid" }), 1)
    assert.strictEqual(added("x402_settle_outcome_unknown"), 0)
    const settleLatency = points(resourceMetrics, "x402_facilitator_duration_ms")
      .filter((p) => (p.attributes as Record<string, unknown>)["operation"] === "settle")
      .map((p) => (p.value as { readonly count: number }).count)
    assert.deepStrictEqual(settleLatency, [2])

    const everything = JSON.stringify(resourceMetrics.scopeMetrics)
    assert.notInclude(everything, token)
    assert.notInclude(everything, backend().apiKey.split(":")[1])
  })
})
