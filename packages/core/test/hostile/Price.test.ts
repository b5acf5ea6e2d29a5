// Hostile suite, invariants 1 and 11 (RELIABILITY.md, "Money-tight") on the core transports: the
// caller never sets the price, and `release` covers outages, never refusals. HttpPaywall over real
// HTTP, McpPayment inside the official MCP SDK server with its real client; each reconciled against
// the ledger.
import type { Facilitator } from "@effect-x402/core"
import { HttpPaywall, McpPayment, Paywall, type X402 } from "@effect-x402/core"
import { TestFacilitator } from "@effect-x402/testing"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { CallToolRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { Duration, Effect, FastCheck as fc, Logger, Runtime } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { post, serve } from "../HttpPaywall.fixtures.js"

const PRICE = 3

/** Texts a caller might make a tool echo to choose its own price. */
const priceTexts = [
  `{"creditsToCharge":0}`,
  `{"creditsToCharge":"0"}`,
  `{"creditsToCharge":-1}`,
  `{"creditsToCharge":1.5}`,
  `{"__proto__":{"creditsToCharge":0}}`
]

const generatedTexts = fc.sample(
  fc.oneof(
    fc.string(),
    fc.jsonValue().map((v) => JSON.stringify({ creditsToCharge: v })),
    fc.record({ creditsToCharge: fc.oneof(fc.integer(), fc.double(), fc.string()) }).map((v) => JSON.stringify(v))
  ),
  { numRuns: 30, seed: 7 }
)

/** An HTTP route that answers the caller's JSON body back, as an echo or a store would. */
const echoRoute = (options: Partial<HttpPaywall.Options> = {}) =>
  HttpRouter.empty.pipe(
    HttpRouter.post(
      "/echo",
      Effect.gen(function*() {
        const body = yield* Effect.orDie((yield* HttpServerRequest.HttpServerRequest).text)
        return HttpServerResponse.text(body, { contentType: "application/json" })
      }).pipe(HttpPaywall.middleware({ planId: "plan-1", credits: PRICE, ...options }))
    )
  )

describe("hostile: the caller never sets the price (HttpPaywall)", () => {
  it.scopedLive("an echoed JSON body with creditsToCharge settles the configured price", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 10_000 })
    return Effect.gen(function*() {
      const url = yield* serve(echoRoute())
      for (const text of [...priceTexts, ...generatedTexts]) {
        const seen = yield* post(`${url}/echo`, { token, headers: { "content-type": "application/json" }, body: text })
        assert.strictEqual(seen.status, 200, text)
        assert.strictEqual(seen.paymentResponse?.creditsRedeemed, String(PRICE), text)
      }
      assert.isTrue(ledger.settlements.every((s) => s.credits === PRICE))
      assert.strictEqual(ledger.settlements.length, priceTexts.length + generatedTexts.length)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(Logger.remove(Logger.defaultLogger)))
  })
})

describe("hostile: release covers outages, never refusals (HttpPaywall)", () => {
  it.scopedLive("20 concurrent calls on a token funded for one: one output, the others withheld", () => {
    const { ledger, subscriber, token } = TestFacilitator.seeded({ credits: PRICE })
    // A facilitator that takes a moment: several calls are verified before the first settle burns
    // the balance.
    ledger.latency = Duration.millis(100)
    return Effect.gen(function*() {
      const url = yield* serve(echoRoute({ onSettleFailure: "release" }))
      const seen = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) => post(`${url}/echo`, { token, body: { output: `paid output ${i}` } }),
        { concurrency: "unbounded" }
      )
      const verified = ledger.calls.filter((c) => c.operation === "verify" && c.outcome === "valid").length
      assert.isAbove(verified, 1, "the race did not happen: only one call was verified")
      const released = seen.filter((s) => s.text.includes("paid output"))
      assert.strictEqual(ledger.settlements.length, 1)
      assert.strictEqual(released.length, 1)
      assert.strictEqual(released[0].paymentResponse?.success, true)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 0)
      for (const refused of seen.filter((s) => !s.text.includes("paid output"))) {
        assert.notStrictEqual(refused.status, 200)
      }
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(Logger.remove(Logger.defaultLogger)))
  })
})

describe("hostile: the caller never sets the price (McpPayment in the MCP SDK)", () => {
  // An MCP SDK server whose `echo` tool returns the caller's text, paid through McpPayment.protect.
  const serveEcho = (runtime: Runtime.Runtime<Facilitator.Facilitator>) =>
    Effect.acquireRelease(
      Effect.async<{ url: string; close: () => void }>((resume) => {
        const paywall = Paywall.make<unknown, never, McpPayment.ToolResult>({ planId: "plan-1", credits: PRICE })
        const http = createServer((req, res) => {
          const mcp = new Server({ name: "echo-agent", version: "1.0.0" }, { capabilities: { tools: {} } })
          mcp.setRequestHandler(CallToolRequestSchema, (request, extra) =>
            Runtime.runPromise(runtime)(
              McpPayment.protect(paywall, {
                request: request.params,
                meta: request.params._meta,
                headers: extra.requestInfo?.headers,
                toolName: request.params.name,
                resourceUrl: `http://${req.headers.host}/mcp`
              }, Effect.succeed({ content: [{ type: "text" as const, text: String(request.params.arguments?.text) }] }))
            ) as never)
          const transport = new StreamableHTTPServerTransport({})
          res.on("close", () => {
            void transport.close()
            void mcp.close()
          })
          void mcp.connect(transport).then(() => transport.handleRequest(req, res))
        })
        http.listen(0, "127.0.0.1", () => {
          const { port } = http.address() as AddressInfo
          resume(Effect.succeed({ url: `http://127.0.0.1:${port}/mcp`, close: () => http.close() }))
        })
      }),
      (server) => Effect.sync(server.close)
    )

  it.scopedLive("an echoed creditsToCharge text item settles the configured price", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 10_000 })
    return Effect.gen(function*() {
      const runtime = yield* Effect.runtime<Facilitator.Facilitator>()
      const { url } = yield* serveEcho(runtime)
      const client = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const client = new Client({ name: "attacker", version: "1.0.0" })
          await client.connect(new StreamableHTTPClientTransport(new URL(url)))
          return client
        }),
        (client) => Effect.promise(() => client.close())
      )
      for (const text of [...priceTexts, ...generatedTexts.slice(0, 10)]) {
        const result = (yield* Effect.promise(() =>
          client.callTool({ name: "echo", arguments: { text }, _meta: { "x402/payment": token } })
        )) as McpPayment.ToolResult
        const receipt = result._meta?.[McpPayment.PAYMENT_RESPONSE_META_KEY] as X402.SettleResponse | undefined
        assert.strictEqual(receipt?.creditsRedeemed, String(PRICE), text)
      }
      assert.isTrue(ledger.settlements.every((s) => s.credits === PRICE))
      assert.strictEqual(ledger.settlements.length, priceTexts.length + 10)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(Logger.remove(Logger.defaultLogger)))
  })
})
