// The README's observability setup, run: a paid call through requiresPayment with the live layer
// against FakeNevermined, traced by @effect/opentelemetry into an in-memory exporter. What an
// operator would check: one span per call, named for the adapter, with the x402 attributes, and no
// token or API key in any span (paid, unpaid and refused calls).
import { AgentCoreEvents } from "@effect-x402/testing"
import { assert, describe, it, vi } from "@effect/vitest"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { PLAN_ID, useFundedBackend } from "./fundedBackend.js"

const backend = useFundedBackend()

describe("observability", () => {
  it("a paid call is one span with its x402 attributes, and no secret in any span", async () => {
    const { makeHandler } = await import("../snippets/observability.js")
    const exporter = new InMemorySpanExporter()
    const handler = makeHandler(new SimpleSpanProcessor(exporter))
    const token = backend().ledger.mintToken({ planId: PLAN_ID, subscriber: backend().subscriber })
    // The JSON log lines go to the console: kept here (not printed) and checked.
    const printed: Array<string> = []
    const log = vi.spyOn(console, "log").mockImplementation((...parts: ReadonlyArray<unknown>) => {
      printed.push(parts.map(String).join(" "))
    })
    try {
      await handler(AgentCoreEvents.request({ tool: "forecast", token }), AgentCoreEvents.context())
      await handler(AgentCoreEvents.request({ tool: "forecast" }), AgentCoreEvents.context())
      await handler(AgentCoreEvents.request({ tool: "forecast", token: `${token}-forged` }), AgentCoreEvents.context())
    } finally {
      log.mockRestore()
    }
    // One JSON object per line (what CloudWatch Logs Insights reads), without the token.
    const refused = printed.map((line) => JSON.parse(line) as { message: unknown; logLevel: string })
      .find((line) => String(line.message).includes("Verification failed"))
    assert.isDefined(refused)
    assert.notInclude(printed.join("\n"), token)
    // Read before dispose: shutting the SDK down empties the in-memory exporter.
    const spans = [...exporter.getFinishedSpans()]
    await handler.runtime.dispose()
    const calls = spans.filter((span) => span.name === "RequiresPayment.handle")
    assert.strictEqual(calls.length, 3, spans.map((s) => s.name).join(", "))
    const paid = calls[0].attributes
    assert.strictEqual(paid["mcp.method"], "tools/call")
    assert.strictEqual(paid["mcp.tool"], "forecast")
    assert.strictEqual(paid["x402.plan_ids"], PLAN_ID)
    assert.strictEqual(paid["x402.credits"], 2)
    assert.strictEqual(paid["x402.outcome"], "settled")
    assert.strictEqual(calls[1].attributes["x402.outcome"], "payment_required")
    const everything = JSON.stringify(spans.map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })))
    assert.notInclude(everything, token)
    assert.notInclude(everything, backend().apiKey)
    assert.strictEqual(calls[2].attributes["x402.outcome"], "invalid")
  })
})
