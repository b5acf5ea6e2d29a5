// The servers' own telemetry: the platform's HTTP server span records request headers, and the
// x402 token travels in one. Nothing a paid server logs or traces may contain it.
import { HttpPaywall, McpPayment } from "@effect-x402/core"
import * as PaidMcpTool from "@effect-x402/core/PaidMcpTool"
import { TestFacilitator, TestTelemetry } from "@effect-x402/testing"
import { Tool, Toolkit } from "@effect/ai"
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect, Layer, Schema } from "effect"
import { post, serve, serveLayer } from "./HttpPaywall.fixtures.js"

const Paid = Tool.make("paid", { success: Schema.String }).pipe(PaidMcpTool.paid({ planId: "plan-1" }))
const Tools = Toolkit.make(Paid)

describe("secrets never leak from a paid server", () => {
  it.scopedLive("HttpApp, paid and refused calls: the token is redacted on the server span", () => {
    const captured = TestTelemetry.make()
    const { ledger, token } = TestFacilitator.seeded()
    const app = HttpServerResponse.text("ok").pipe(HttpPaywall.middleware({ planId: "plan-1" }))
    return Effect.gen(function*() {
      const url = yield* serve(app)
      assert.strictEqual((yield* post(url, { token })).status, 200)
      ledger.failNext("settle", { _tag: "Timeout" })
      assert.strictEqual((yield* post(url, { token })).status, 502)
      ledger.revoke(token)
      assert.strictEqual((yield* post(url, { token })).status, 402)

      const servers = captured.spans.filter((span) => span.name.startsWith("http.server"))
      assert.strictEqual(servers.length, 3)
      for (const span of servers) {
        assert.strictEqual(span.attributes.get("http.request.header.payment-signature"), "<redacted>")
      }
      assert.isTrue(captured.spans.some((span) => span.name === "Paywall.settle"))
      assert.notInclude(captured.text(), token)
    }).pipe(Effect.provide(Layer.merge(captured.layer, TestFacilitator.layer(ledger))))
  })

  it.scopedLive("MCP with the token in the header: redacted on the server span", () => {
    const captured = TestTelemetry.make()
    const { ledger, token } = TestFacilitator.seeded()
    return Effect.gen(function*() {
      const url = yield* serveLayer(
        Layer.mergeAll(PaidMcpTool.toolkit(Tools), HttpRouter.Default.serve()).pipe(
          Layer.provide(Tools.toLayer({ paid: () => Effect.succeed("ok") })),
          Layer.provide(PaidMcpTool.layerHttp({ name: "agent", version: "1.0.0", path: "/mcp" }))
        )
      )
      const result = yield* Effect.acquireUseRelease(
        Effect.promise(async () => {
          const client = new Client({ name: "test", version: "1.0.0" })
          await client.connect(
            new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
              requestInit: { headers: { "payment-signature": token } }
            })
          )
          return client
        }),
        (client) => Effect.promise(() => client.callTool({ name: "paid", arguments: {} })),
        (client) => Effect.promise(() => client.close())
      )
      assert.strictEqual(
        (result._meta as Record<string, { success: boolean }>)[McpPayment.PAYMENT_RESPONSE_META_KEY].success,
        true
      )
      // initialize, notifications/initialized and tools/call all carried the header
      const servers = captured.spans.filter((span) => span.attributes.has("http.request.header.payment-signature"))
      assert.isAtLeast(servers.length, 3)
      assert.notInclude(captured.text(), token)
    }).pipe(Effect.provide(Layer.merge(captured.layer, TestFacilitator.layer(ledger))))
  })

  it.scopedLive("withTokenRedaction: a route the paywall does not guard does not record the token either", () => {
    const captured = TestTelemetry.make()
    const { token } = TestFacilitator.seeded()
    const router = HttpRouter.empty.pipe(HttpRouter.post("/free", HttpServerResponse.text("free")))
    return Effect.gen(function*() {
      const url = yield* serveLayer(HttpServer.serve(router).pipe(HttpPaywall.withTokenRedaction()))
      assert.strictEqual((yield* post(`${url}/free`, { token })).text, "free")
      const server = captured.spans.find((span) => span.name.startsWith("http.server"))
      assert.isTrue(server !== undefined && server.attributes.has("http.request.header.payment-signature"))
      assert.notInclude(captured.text(), token)
    }).pipe(Effect.provide(captured.layer))
  })
})
