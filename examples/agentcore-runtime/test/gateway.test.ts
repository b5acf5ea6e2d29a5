// The agent served as an AgentCore Gateway HTTP target, over real HTTP: the MCP SDK client →
// LocalGateway (the `http` interceptor events) → the payment interceptor Lambda → the agent's
// `gatewayTarget` (no payment code) on loopback, paid on FakeNevermined through the live layer.
import { Nevermined, SettlementLedger, Subscriber, X402 } from "@effect-x402/core"
import { FakeNevermined, LocalGateway } from "@effect-x402/testing"
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Context, Effect, Layer, Logger, Redacted } from "effect"
import { createServer } from "node:http"
import * as Agent from "../src/Agent.js"

const PLAN_ID = "plan-1"
const AGENT_ID = "agent-1"

interface ToolResult {
  readonly isError?: boolean
  readonly content: Array<{ readonly type: string; readonly text?: string }>
  readonly structuredContent?: Record<string, unknown>
  readonly _meta?: Record<string, unknown>
}

const setup = Effect.gen(function*() {
  const fake = yield* FakeNevermined.make()
  fake.ledger.addPlan({ planId: PLAN_ID, agentId: AGENT_ID })
  fake.ledger.fund(fake.subscriber, PLAN_ID, 10)
  // The agent: an HTTP server on an ephemeral port, with no payment code.
  const context = yield* Layer.build(
    Agent.gatewayTarget.pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })))
  ).pipe(Effect.orDie)
  const address = Context.get(context, HttpServer.HttpServer).address
  const agentUrl = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : ""
  // The interceptor Lambda in front of it, with the shared ledger and seal key it needs.
  const handler = Agent.gatewayInterceptor({
    planId: PLAN_ID,
    agentId: AGENT_ID,
    requestSealKey: Redacted.make("seal key shared by the interceptor's instances"),
    layer: Nevermined.layer({ apiKey: fake.apiKey, backendUrl: fake.url }).pipe(Layer.provide(FetchHttpClient.layer)),
    services: Layer.merge(SettlementLedger.layerMemory(), Logger.remove(Logger.defaultLogger))
  })
  yield* Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose()))
  const gateway = yield* LocalGateway.make({ interceptor: handler, httpTarget: `${agentUrl}/mcp` })
  const subscriber = yield* Subscriber.make({ apiKey: fake.subscriberApiKey, backendUrl: fake.url }).pipe(
    Effect.provide(FetchHttpClient.layer),
    Effect.orDie
  )
  return { fake, gateway, subscriber, agentUrl }
})

const mcpClient = (url: string, headers: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Client({ name: "agentcore-gateway-test", version: "1.0.0" })
      await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }))
      return client
    }),
    (client) => Effect.promise(() => client.close())
  )

describe("AgentCore Runtime example behind the gateway's payment interceptor (HTTP target)", () => {
  it.scopedLive("the handshake, the listing and the free tool pass unpaid; summarize is 402 without a token", () =>
    Effect.gen(function*() {
      const { fake, gateway } = yield* setup
      const mcp = yield* mcpClient(gateway.url)
      const { tools } = yield* Effect.promise(() => mcp.listTools())
      assert.deepStrictEqual(tools.map((tool) => tool.name).sort(), ["summarize", "word_count"])
      const count = (yield* Effect.promise(() =>
        mcp.callTool({ name: "word_count", arguments: { text: "one two three" } })
      )) as ToolResult
      assert.strictEqual(count.content[0].text, "3")
      const demand = (yield* Effect.promise(() =>
        mcp.callTool({ name: "summarize", arguments: { text: "A text. More." } })
      )) as ToolResult
      assert.isTrue(demand.isError)
      assert.strictEqual(JSON.parse(demand.content[0].text!).code, 402)
      assert.strictEqual(fake.calls("verify"), 0)
      assert.strictEqual(fake.ledger.settlements.length, 0)
    }))

  it.scopedLive("a paid summarize: verified, run by the agent, settled once; receipt and ledger agree", () =>
    Effect.gen(function*() {
      const { fake, gateway, subscriber } = yield* setup
      const delegation = yield* subscriber.createDelegation({
        provider: "erc4337",
        spendingLimitCents: 1000,
        durationSecs: 3600,
        currency: "usdc"
      }).pipe(Effect.orDie)
      const token = yield* subscriber.accessToken({
        planId: PLAN_ID,
        agentId: AGENT_ID,
        delegationId: delegation.delegationId
      }).pipe(Effect.orDie)
      const mcp = yield* mcpClient(gateway.url, { [X402.PAYMENT_SIGNATURE_HEADER]: Redacted.value(token) })
      const paid = (yield* Effect.promise(() =>
        mcp.callTool({ name: "summarize", arguments: { text: "x402 pays for tools. It settles after the work." } })
      )) as ToolResult
      assert.notStrictEqual(paid.isError, true)
      assert.deepStrictEqual(paid.structuredContent, { summary: "x402 pays for tools." })
      const meta = paid._meta?.x402 as X402.MetaX402
      assert.isTrue(meta.success)
      assert.strictEqual(meta.creditsRedeemed, "2")
      assert.strictEqual(fake.ledger.settlements.length, 1)
      assert.strictEqual(meta.transaction, fake.ledger.settlements[0].transaction)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN_ID), 8)
      // The gateway's route: REQUEST (http event), the agent over HTTP, RESPONSE with no request in it.
      const responses = gateway.invocations.filter((i) =>
        i._tag === "Lambda" && i.phase === "RESPONSE"
      )
      assert.isTrue(
        responses.every((i) =>
          (i as { event: { http?: { gatewayRequest?: unknown } } }).event.http?.gatewayRequest === null
        )
      )
    }))
})
