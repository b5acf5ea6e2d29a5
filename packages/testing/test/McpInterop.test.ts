// The official MCP TypeScript SDK client (Streamable HTTP) against a paid Lambda behind the
// LocalGateway, in both flavours, paying with a token minted on FakeNevermined by the Subscriber.
import { Nevermined, Subscriber, X402 } from "@effect-x402/core"
import { Adapter } from "@effect-x402/core"
import { AgentCore } from "@effect-x402/lambda"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { FakeNevermined, LocalGateway } from "@effect-x402/testing"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect, Either, Layer, Redacted } from "effect"

const PLAN = "plan-mcp"
const AGENT = "agent-mcp"

const TOOLS = [{
  name: "forecast",
  description: "The weather in a city (1 credit)",
  inputSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
}]

const forecastOf = (args: { readonly [name: string]: unknown }) => `Sunny in ${String(args.city)}`

/** The agent as one Lambda (the decorator flavour): `requiresPayment` lists its declared tools. */
const agentLambda = (event: AgentCore.InterceptorInput) => {
  const call = AgentCore.toolCallOf(event)
  return { content: [{ type: "text", text: forecastOf(call?.arguments ?? {}) }] }
}

/** The same tools as a plain MCP target behind the interceptor flavour. */
const target: LocalGateway.Target = ({ body }) => {
  const id = Adapter.own(body, "id") ?? null
  const params = Adapter.own(body, "params")
  const result = Adapter.own(body, "method") === "tools/list"
    ? { tools: TOOLS }
    : { content: [{ type: "text", text: forecastOf((Adapter.own(params, "arguments") ?? {}) as never) }] }
  return { statusCode: 200, headers: { "Content-Type": "application/json" }, body: { jsonrpc: "2.0", id, result } }
}

interface ToolResult {
  readonly isError?: boolean
  readonly content: Array<{ readonly type: string; readonly text?: string }>
  readonly _meta?: { readonly [key: string]: unknown }
}

/** An MCP SDK client that sends `headers` on every request and keeps each answer's headers. */
const connect = (url: string, headers: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const seen: Array<Headers> = []
      const client = new Client({ name: "interop-test", version: "1.0.0" })
      await client.connect(
        new StreamableHTTPClientTransport(new URL(url), {
          requestInit: { headers },
          fetch: async (input, init) => {
            const response = await fetch(input, init)
            seen.push(response.headers)
            return response
          }
        })
      )
      return { client, lastHeaders: () => seen[seen.length - 1] }
    }),
    ({ client }) => Effect.promise(() => client.close())
  )

const setup = (flavour: "decorator" | "interceptor") =>
  Effect.gen(function*() {
    const fake = yield* FakeNevermined.make()
    fake.ledger.addPlan({ planId: PLAN, agentId: AGENT })
    fake.ledger.fund(fake.subscriber, PLAN, 5)
    const facilitator = Nevermined.layer({ apiKey: fake.apiKey, backendUrl: fake.url }).pipe(
      Layer.provide(FetchHttpClient.layer)
    )
    const paid = { planId: PLAN, agentId: AGENT, credits: 2, endpoint: "http://127.0.0.1/mcp", layer: facilitator }
    const declared = Object.fromEntries(
      TOOLS.map((
        { name, ...tool }
      ) => [name, { ...tool, inputSchema: { ...tool.inputSchema, type: "object" as const } }])
    )
    const handler = flavour === "decorator"
      ? requiresPayment({ ...paid, tools: declared })(agentLambda)
      : interceptor(paid)
    yield* Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose()))
    const gateway = yield* LocalGateway.make(flavour === "decorator" ? { handler } : { interceptor: handler, target })
    const subscriber = yield* Subscriber.make({ apiKey: fake.subscriberApiKey, backendUrl: fake.url }).pipe(
      Effect.provide(FetchHttpClient.layer)
    )
    return { fake, gateway, subscriber }
  })

describe.each(["decorator", "interceptor"] as const)("MCP SDK client through the LocalGateway (%s)", (flavour) => {
  it.scopedLive("tools/list is free; an unpaid call gets the payment-required result; a paid call the content", () =>
    Effect.gen(function*() {
      const { fake, gateway, subscriber } = yield* setup(flavour)

      const unpaid = yield* connect(gateway.url)
      const listed = yield* Effect.promise(() => unpaid.client.listTools())
      assert.deepStrictEqual(listed.tools.map((tool) => tool.name), ["forecast"])
      if (flavour === "decorator") {
        // requiresPayment answers tools/list itself, each tool with its price.
        assert.deepStrictEqual(listed.tools[0]._meta?.["x402/price"], { planIds: [PLAN], agentId: AGENT, credits: 2 })
      }
      assert.strictEqual(fake.calls("verify"), 0)

      const refused = (yield* Effect.promise(() =>
        unpaid.client.callTool({ name: "forecast", arguments: { city: "Lisbon" } })
      )) as ToolResult
      assert.isTrue(refused.isError)
      assert.strictEqual(JSON.parse(refused.content[0].text!).code, 402)
      assert.deepStrictEqual(refused._meta, { x402: true })
      const header = unpaid.lastHeaders().get(X402.PAYMENT_REQUIRED_HEADER)
      assert.isString(header)
      const required = Either.getOrThrow(X402.PaymentRequiredHeader.decodeEither(header!))
      assert.strictEqual(required.accepts[0].planId, PLAN)
      assert.strictEqual(required.accepts[0].extra?.agentId, AGENT)
      assert.strictEqual(fake.ledger.settlements.length, 0)

      // The client pays with what the 402 asked for: a token for that plan and agent.
      const delegation = yield* subscriber.createDelegation({
        provider: "erc4337",
        spendingLimitCents: 1000,
        durationSecs: 3600,
        currency: "usdc"
      })
      const token = yield* subscriber.accessToken({
        planId: required.accepts[0].planId,
        agentId: required.accepts[0].extra?.agentId,
        delegationId: delegation.delegationId
      })
      const paying = yield* connect(gateway.url, { [X402.PAYMENT_SIGNATURE_HEADER]: Redacted.value(token) })
      const result = (yield* Effect.promise(() =>
        paying.client.callTool({ name: "forecast", arguments: { city: "Lisbon" } })
      )) as ToolResult
      assert.notStrictEqual(result.isError, true)
      assert.deepStrictEqual(result.content, [{ type: "text", text: "Sunny in Lisbon" }])
      const meta = result._meta?.x402 as X402.MetaX402
      assert.isTrue(meta.success)
      assert.strictEqual(meta.creditsRedeemed, "2")

      const receipt = Either.getOrThrow(
        X402.ReceiptHeader.decodeEither(paying.lastHeaders().get(X402.PAYMENT_RESPONSE_HEADER)!)
      )
      assert.strictEqual(receipt.transactionHash, fake.ledger.settlements[0].transaction)
      assert.strictEqual(receipt.transactionHash, meta.transaction)
      assert.strictEqual(receipt.remainingBalance, "3")
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 3)
      assert.strictEqual(fake.ledger.settlements.length, 1)

      // Listing with a token is still free.
      yield* Effect.promise(() =>
        paying.client.listTools()
      )
      assert.strictEqual(fake.ledger.settlements.length, 1)
    }))
})
