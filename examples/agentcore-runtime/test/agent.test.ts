// The agent served on loopback, paid against FakeNevermined through the live Nevermined layer, and
// called the way its users call it: X402Client for /invocations, the MCP SDK client for /mcp.
import { McpPayment, Nevermined, Subscriber, type X402, X402Client } from "@effect-x402/core"
import { FakeNevermined } from "@effect-x402/testing"
import { FetchHttpClient, HttpClientRequest, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { createServer } from "node:http"
import * as Agent from "../src/Agent.js"

const PLAN_ID = "plan-1"
const AGENT_ID = "agent-1"

/** FakeNevermined with a funded subscriber, the agent on an ephemeral port, and both paying clients. */
const setup = Effect.gen(function*() {
  const fake = yield* FakeNevermined.make()
  fake.ledger.addPlan({ planId: PLAN_ID, agentId: AGENT_ID })
  fake.ledger.fund(fake.subscriber, PLAN_ID, 20)
  const context = yield* Layer.build(
    Agent.layer({ planId: PLAN_ID, agentId: AGENT_ID }).pipe(
      Layer.provide(Nevermined.layer({ apiKey: fake.apiKey, backendUrl: fake.url })),
      Layer.provide(FetchHttpClient.layer),
      Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
    )
  ).pipe(Effect.orDie)
  const address = Context.get(context, HttpServer.HttpServer).address
  const url = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : ""
  const http = yield* Layer.build(FetchHttpClient.layer)
  const subscriber = yield* Subscriber.make({ apiKey: fake.subscriberApiKey, backendUrl: fake.url }).pipe(
    Effect.provide(http),
    Effect.orDie
  )
  const client = yield* X402Client.make().pipe(
    Effect.provideService(Subscriber.Subscriber, subscriber),
    Effect.provide(http)
  )
  return { fake, url, client, subscriber }
})

const invoke = (url: string, prompt: string) =>
  HttpClientRequest.bodyUnsafeJson(HttpClientRequest.post(`${url}/invocations`), { prompt })

const mcpClient = (url: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Client({ name: "agentcore-runtime-test", version: "1.0.0" })
      await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`)))
      return client
    }),
    (client) => Effect.promise(() => client.close())
  )

interface ToolResult {
  readonly isError?: boolean
  readonly structuredContent?: Record<string, unknown>
  readonly _meta?: Record<string, unknown>
}

describe("AgentCore Runtime example", () => {
  it.scopedLive("GET /ping is free and healthy", () =>
    Effect.gen(function*() {
      const { client, fake, url } = yield* setup
      const ping = yield* client.execute(HttpClientRequest.get(`${url}/ping`))
      assert.strictEqual(ping.response.status, 200)
      assert.strictEqual(((yield* ping.response.json) as { status: string }).status, "Healthy")
      assert.isFalse(ping.paid)
      assert.strictEqual(fake.requests.length, 0)
    }))

  it.scopedLive("POST /invocations is paid with X402Client, priced by the prompt's length", () =>
    Effect.gen(function*() {
      const { client, fake, url } = yield* setup
      const short = yield* client.execute(invoke(url, "What is x402?"))
      assert.strictEqual(short.response.status, 200)
      assert.match(((yield* short.response.json) as { response: string }).response, /Thanks, 0x/)
      assert.strictEqual(Option.getOrThrow(short.receipt).creditsRedeemed, "1")

      const long = yield* client.execute(invoke(url, "x".repeat(250)))
      assert.strictEqual(Option.getOrThrow(long.receipt).creditsRedeemed, "3")
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN_ID), 16)
      assert.deepStrictEqual(
        fake.ledger.settlements.map((s) => s.transaction),
        [short, long].map((paid) => Option.getOrThrow(paid.receipt).transactionHash)
      )
    }))

  it.scopedLive("POST /invocations: no payment is 402, a bad body is 400 and never settled", () =>
    Effect.gen(function*() {
      const { fake, url } = yield* setup
      const unpaid = yield* Effect.promise(() =>
        fetch(`${url}/invocations`, { method: "POST", body: JSON.stringify({ prompt: "hi" }) })
      )
      assert.strictEqual(unpaid.status, 402)
      assert.isNotNull(unpaid.headers.get("payment-required"))
      const token = fake.ledger.mintToken({ planId: PLAN_ID, subscriber: fake.subscriber, agentId: AGENT_ID })
      const bad = yield* Effect.promise(() =>
        fetch(`${url}/invocations`, { method: "POST", headers: { "payment-signature": token }, body: "{}" })
      )
      assert.strictEqual(bad.status, 400)
      assert.strictEqual(fake.calls("settle"), 0)
    }))

  it.scopedLive("/mcp: the MCP SDK client lists the tools, calls the free one, pays for the other in band", () =>
    Effect.gen(function*() {
      const { fake, subscriber, url } = yield* setup
      const mcp = yield* mcpClient(url)
      const { tools } = yield* Effect.promise(() => mcp.listTools())
      assert.deepStrictEqual(tools.map((tool) => tool.name).sort(), ["summarize", "word_count"])

      const count = (yield* Effect.promise(() =>
        mcp.callTool({ name: "word_count", arguments: { text: "one two three" } })
      )) as ToolResult & { content: Array<{ text: string }> }
      assert.strictEqual(count.content[0].text, "3")

      const text = "x402 pays for tools. It settles after the work."
      const demand = (yield* Effect.promise(() =>
        mcp.callTool({ name: "summarize", arguments: { text } })
      )) as ToolResult
      assert.isTrue(demand.isError)
      const accepted = (demand.structuredContent as unknown as X402.PaymentRequired).accepts[0]
      const token = yield* subscriber.accessToken({
        planId: accepted.planId,
        agentId: accepted.extra?.agentId,
        network: accepted.network
      }).pipe(Effect.orDie)

      const paid = (yield* Effect.promise(() =>
        mcp.callTool({
          name: "summarize",
          arguments: { text },
          _meta: { [McpPayment.PAYMENT_META_KEY]: Redacted.value(token) }
        })
      )) as ToolResult
      assert.deepStrictEqual(paid.structuredContent, { summary: "x402 pays for tools." })
      const receipt = paid._meta?.[McpPayment.PAYMENT_RESPONSE_META_KEY] as X402.SettleResponse
      assert.strictEqual(receipt.creditsRedeemed, "2")
      assert.strictEqual(receipt.transaction, fake.ledger.settlements[0].transaction)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN_ID), 18)
    }))
})
