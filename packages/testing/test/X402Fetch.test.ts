// The paying fetch as the MCP TypeScript SDK's transport fetch: the real SDK client, through the
// LocalGateway (interceptor in front of an MCP target) over HTTP, paying on FakeNevermined.
import { Nevermined, Subscriber, type X402, X402Client, X402Fetch } from "@effect-x402/core"
import { Adapter } from "@effect-x402/core"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { FakeNevermined, LocalGateway } from "@effect-x402/testing"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect, Layer, Logger } from "effect"

const PLAN = "plan-fetch"
const AGENT = "agent-fetch"

const TOOLS = [{ name: "forecast", description: "The weather (2 credits)", inputSchema: { type: "object" } }]

const target: LocalGateway.Target = ({ body }) => {
  const id = Adapter.own(body, "id") ?? null
  const params = Adapter.own(body, "params")
  const args = Adapter.own(params, "arguments")
  const result = Adapter.own(body, "method") === "tools/list"
    ? { tools: TOOLS }
    : { content: [{ type: "text", text: `Sunny in ${String(Adapter.own(args, "city"))}` }] }
  return { statusCode: 200, headers: { "Content-Type": "application/json" }, body: { jsonrpc: "2.0", id, result } }
}

const setup = (credits: number) =>
  Effect.gen(function*() {
    const fake = yield* FakeNevermined.make()
    fake.ledger.addPlan({ planId: PLAN, agentId: AGENT })
    fake.ledger.fund(fake.subscriber, PLAN, credits)
    const handler = interceptor({
      planId: PLAN,
      agentId: AGENT,
      credits: 2,
      endpoint: "http://127.0.0.1/mcp",
      services: Logger.replace(Logger.defaultLogger, Logger.none) as Layer.Layer<never>,
      layer: Nevermined.layer({ apiKey: fake.apiKey, backendUrl: fake.url }).pipe(Layer.provide(FetchHttpClient.layer))
    })
    yield* Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose()))
    const gateway = yield* LocalGateway.make({ interceptor: handler, target })
    const subscriber = Subscriber.layer({ apiKey: fake.subscriberApiKey, backendUrl: fake.url }).pipe(
      Layer.provide(FetchHttpClient.layer)
    )
    const delegation = yield* Effect.flatMap(Subscriber.Subscriber, (s) =>
      s.createDelegation({ provider: "erc4337", spendingLimitCents: 1000, durationSecs: 3600, currency: "usdc" })).pipe(
        Effect.provide(subscriber),
        Effect.orDie
      )
    const payingFetch = X402Fetch.fromLayer(
      X402Client.layer({ delegationId: delegation.delegationId }).pipe(
        Layer.provide(subscriber),
        Layer.provide(FetchHttpClient.layer)
      )
    )
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => payingFetch.dispose())
    )
    const client = yield* Effect.acquireRelease(
      Effect.promise(async () => {
        const client = new Client({ name: "x402-fetch-test", version: "1.0.0" })
        await client.connect(new StreamableHTTPClientTransport(new URL(gateway.url), { fetch: payingFetch }))
        return client
      }),
      (client) => Effect.promise(() => client.close())
    )
    return { fake, gateway, client, payingFetch }
  })

interface ToolResult {
  readonly isError?: boolean
  readonly content: Array<{ readonly type: string; readonly text?: string }>
  readonly _meta?: { readonly x402?: X402.MetaX402 }
}

describe("X402Fetch: a fetch that pays", () => {
  it.scopedLive("as the MCP SDK's transport fetch: tools/list free, tools/call paid once with its receipt", () =>
    Effect.gen(function*() {
      const { client, fake } = yield* setup(5)
      const listed = yield* Effect.promise(() => client.listTools())
      assert.deepStrictEqual(listed.tools.map((tool) => tool.name), ["forecast"])
      assert.strictEqual(fake.ledger.settlements.length, 0)

      const result = (yield* Effect.promise(() =>
        client.callTool({ name: "forecast", arguments: { city: "Lisbon" } })
      )) as ToolResult
      assert.notStrictEqual(result.isError, true)
      assert.deepStrictEqual(result.content, [{ type: "text", text: "Sunny in Lisbon" }])
      assert.strictEqual(result._meta?.x402?.creditsRedeemed, "2")
      assert.strictEqual(fake.ledger.settlements.length, 1)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 3)
    }))

  it.scopedLive("plain calls: the request body is resent on the paid retry; the answer carries payment-response", () =>
    Effect.gen(function*() {
      const { fake, gateway, payingFetch } = yield* setup(5)
      const response = yield* Effect.promise(() =>
        payingFetch(gateway.url, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
          body: JSON.stringify({
            jsonrpc: "2.0",
            id: 7,
            method: "tools/call",
            params: { name: "forecast", arguments: { city: "Oslo" } }
          })
        })
      )
      assert.strictEqual(response.status, 200)
      assert.isString(response.headers.get("payment-response"))
      const body = yield* Effect.promise(() => response.text())
      assert.include(body, "Sunny in Oslo")
      assert.strictEqual(fake.ledger.settlements.length, 1)
    }))

  it.scopedLive("a refused payment rejects with the typed X402ClientError, and nothing is charged", () =>
    Effect.gen(function*() {
      const { client, fake } = yield* setup(1)
      const error = yield* Effect.promise(() =>
        client.callTool({ name: "forecast", arguments: { city: "Lisbon" } }).then(
          () => undefined,
          (error: unknown) => error
        )
      )
      assert.instanceOf(error, X402Client.X402ClientError)
      assert.strictEqual((error as X402Client.X402ClientError).reason, "PaymentRefused")
      assert.strictEqual(fake.ledger.settlements.length, 0)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 1)
    }))
})
