import { McpPayment, PaymentContext, X402 } from "@effect-x402/core"
import * as PaidMcpTool from "@effect-x402/core/PaidMcpTool"
import { TestFacilitator } from "@effect-x402/testing"
import { McpServer, Tool, Toolkit } from "@effect/ai"
import { HttpLayerRouter, HttpRouter } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect, Layer, Schema } from "effect"
import { serveLayer } from "./HttpPaywall.fixtures.js"

class SearchFailed extends Schema.TaggedError<SearchFailed>()("SearchFailed", { query: Schema.String }) {}

const Search = Tool.make("search", {
  description: "Searches the web",
  parameters: { query: Schema.String },
  success: Schema.Struct({ hits: Schema.Array(Schema.String) }),
  failure: SearchFailed
}).pipe(PaidMcpTool.paid({ planId: "plan-1", credits: 2 }))

const Echo = Tool.make("echo", { parameters: { text: Schema.String }, success: Schema.String })

// MCP wants `structuredContent` to be an object: an array result must travel as text only.
const Tags = Tool.make("tags", { success: Schema.Array(Schema.String) }).pipe(
  PaidMcpTool.paid({ planId: "plan-1", credits: 1 })
)

const Tools = Toolkit.make(Search, Echo, Tags)

const ToolsLive = Tools.toLayer({
  search: ({ query }) =>
    Effect.gen(function*() {
      if (query === "fail") return yield* new SearchFailed({ query })
      // a deep search costs more than verified
      if (query.startsWith("deep")) yield* PaymentContext.chargeCredits(4)
      return { hits: [`result for ${query}`] }
    }),
  echo: ({ text }) => Effect.succeed(text),
  tags: () => Effect.succeed(["a", "b"])
})

const serveMcp = (
  ledger: TestFacilitator.Ledger,
  mcp = PaidMcpTool.layerHttp({ name: "agent", version: "1.0.0", path: "/mcp" })
) =>
  serveLayer(
    Layer.mergeAll(PaidMcpTool.toolkit(Tools, { defaults: { agentId: "agent-1" } }), HttpRouter.Default.serve()).pipe(
      Layer.provide(ToolsLive),
      Layer.provide(mcp),
      Layer.provide(TestFacilitator.layer(ledger))
    )
  )

const connect = (url: string, headers: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Client({ name: "test-client", version: "1.0.0" })
      await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers } }))
      return client
    }),
    (client) => Effect.promise(() => client.close())
  )

interface Result {
  readonly isError?: boolean
  readonly content: Array<{ type: string; text?: string }>
  readonly structuredContent?: Record<string, unknown>
  readonly _meta?: Record<string, unknown>
}

const call = (client: Client, name: string, args: Record<string, unknown>, meta?: Record<string, unknown>) =>
  Effect.promise(() =>
    client.callTool({ name, arguments: args, ...(meta !== undefined ? { _meta: meta } : {}) }) as Promise<Result>
  )

const receiptOf = (result: Result) => result._meta?.[McpPayment.PAYMENT_RESPONSE_META_KEY] as X402.SettleResponse

const setup = () => {
  const { ledger, subscriber, token } = TestFacilitator.seeded({ credits: 10, agentId: "agent-1" })
  return { ledger, subscriber, token }
}

describe("PaidMcpTool.paid", () => {
  it("checks a fixed price where the tool is defined", () => {
    assert.throws(() => PaidMcpTool.paid({ planId: "plan-1", credits: -1 }), RangeError)
    assert.throws(() => PaidMcpTool.paid({ credits: 0.5 }), RangeError)
  })

  it.scopedLive("the plan may come from the registration's defaults; a paid tool without any plan stops the server", () => {
    const { ledger, token } = setup()
    const Priced = Tool.make("priced", { success: Schema.String }).pipe(PaidMcpTool.paid({ credits: 3 }))
    const PricedTools = Toolkit.make(Priced)
    const server = (defaults: Partial<PaidMcpTool.Options>) =>
      serveLayer(
        Layer.mergeAll(PaidMcpTool.toolkit(PricedTools, { defaults }), HttpRouter.Default.serve()).pipe(
          Layer.provide(PricedTools.toLayer({ priced: () => Effect.succeed("ok") })),
          Layer.provide(PaidMcpTool.layerHttp({ name: "agent", version: "1.0.0", path: "/mcp" })),
          Layer.provide(TestFacilitator.layer(ledger))
        )
      )
    return Effect.gen(function*() {
      const client = yield* connect(yield* server({ planId: "plan-1", agentId: "agent-1" }))
      const result = yield* call(client, "priced", {}, { [McpPayment.PAYMENT_META_KEY]: token })
      assert.strictEqual(receiptOf(result).creditsRedeemed, "3")
      const exit = yield* Effect.exit(Effect.scoped(server({ agentId: "agent-1" })))
      assert.isTrue(exit._tag === "Failure" && String(exit.cause).includes("no plan to charge with"))
    })
  })
})

describe("PaidMcpTool in an @effect/ai McpServer, called by the MCP SDK client over HTTP", () => {
  it.scopedLive("lists paid and free tools alike; a free tool needs no payment", () => {
    const { ledger } = setup()
    return Effect.gen(function*() {
      const client = yield* connect(yield* serveMcp(ledger))
      const { tools } = yield* Effect.promise(() => client.listTools())
      assert.deepStrictEqual(tools.map((tool) => tool.name).sort(), ["echo", "search", "tags"])
      const search = tools.find((tool) => tool.name === "search")
      assert.deepStrictEqual(search?.inputSchema.required, ["query"])
      const echo = yield* call(client, "echo", { text: "hi" })
      assert.isFalse(echo.isError)
      assert.strictEqual(echo.content[0].text, "\"hi\"")
      assert.strictEqual(ledger.calls.length, 0)
    })
  })

  it.scopedLive("no payment: the payment-required result, and the tool does not run", () => {
    const { ledger } = setup()
    return Effect.gen(function*() {
      const client = yield* connect(yield* serveMcp(ledger))
      const url = (client as unknown as { _transport: { _url: URL } })._transport._url
      const result = yield* call(client, "search", { query: "effect" })
      assert.isTrue(result.isError)
      const required = result.structuredContent!
      assert.strictEqual(required.x402Version, 2)
      assert.strictEqual(required.error, "Payment required for tool: search")
      assert.deepStrictEqual(required.accepts, [{
        scheme: "nvm:erc4337",
        network: "eip155:84532",
        planId: "plan-1",
        extra: { version: "1", agentId: "agent-1", httpVerb: "POST" }
      }])
      assert.deepStrictEqual((required.resource as { url: string }).url, url.href)
      assert.deepStrictEqual(JSON.parse(result.content[0].text!), required)
      assert.strictEqual(ledger.calls.length, 0)
    })
  })

  it.scopedLive("paid in band: the handler runs inside the paywall, the receipt is in _meta", () => {
    const { ledger, subscriber, token } = setup()
    return Effect.gen(function*() {
      const client = yield* connect(yield* serveMcp(ledger))
      const result = yield* call(client, "search", { query: "effect" }, { [McpPayment.PAYMENT_META_KEY]: token })
      assert.isFalse(result.isError)
      assert.deepStrictEqual(result.structuredContent, { hits: ["result for effect"] })
      const receipt = receiptOf(result)
      assert.strictEqual(receipt.success, true)
      assert.strictEqual(receipt.creditsRedeemed, "2")
      assert.strictEqual(receipt.remainingBalance, "8")
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 8)
      assert.deepStrictEqual(ledger.calls.map((c) => c.operation), ["verify", "settle"])

      // the handler charged more for a deep search
      const deep = yield* call(client, "search", { query: "deep effect" }, { [McpPayment.PAYMENT_META_KEY]: token })
      assert.strictEqual(receiptOf(deep).creditsRedeemed, "4")
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 4)
    })
  })

  it.scopedLive("a paid tool with an array result: text only, accepted by the MCP SDK client", () => {
    const { ledger, token } = setup()
    return Effect.gen(function*() {
      const client = yield* connect(yield* serveMcp(ledger))
      const result = yield* call(client, "tags", {}, { [McpPayment.PAYMENT_META_KEY]: token })
      assert.isUndefined(result.structuredContent)
      assert.strictEqual(result.content[0].text, "[\"a\",\"b\"]")
      assert.strictEqual(receiptOf(result).creditsRedeemed, "1")
    })
  })

  it.scopedLive("paid in band with an x402 PaymentPayload object (its token is the base64 of its JSON)", () => {
    const { ledger, subscriber } = setup()
    const payload = {
      x402Version: 2,
      accepted: { scheme: "nvm:erc4337", network: "eip155:84532", planId: "plan-1" },
      payload: { authorization: { from: subscriber } }
    }
    ledger.tokens.set(X402.encodeBase64(JSON.stringify(payload)), { planId: "plan-1", subscriber })
    return Effect.gen(function*() {
      const client = yield* connect(yield* serveMcp(ledger))
      const result = yield* call(client, "search", { query: "x" }, { [McpPayment.PAYMENT_META_KEY]: payload })
      assert.strictEqual(receiptOf(result).success, true)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 8)
    })
  })

  it.scopedLive("paid with the payment-signature header of the HTTP request", () => {
    const { ledger, subscriber, token } = setup()
    return Effect.gen(function*() {
      const client = yield* connect(yield* serveMcp(ledger), { "payment-signature": token })
      const result = yield* call(client, "search", { query: "x" })
      assert.strictEqual(receiptOf(result).success, true)
      // the free tool stays free even when a token comes along
      yield* call(client, "echo", { text: "hi" })
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 8)
      assert.strictEqual(ledger.calls.length, 2)
    })
  })

  it.scopedLive("layerHttpRouter: the same on an HttpLayerRouter", () => {
    const { ledger, subscriber, token } = setup()
    return Effect.gen(function*() {
      const url = yield* serveLayer(
        HttpLayerRouter.serve(
          PaidMcpTool.toolkit(Tools, { defaults: { agentId: "agent-1" } }).pipe(
            Layer.provide(ToolsLive),
            Layer.provide(PaidMcpTool.layerHttpRouter({ name: "agent", version: "1.0.0", path: "/mcp" })),
            Layer.provide(TestFacilitator.layer(ledger))
          ),
          { disableLogger: true, disableListenLog: true }
        )
      )
      const client = yield* connect(url)
      const result = yield* call(client, "search", { query: "x" }, { [McpPayment.PAYMENT_META_KEY]: token })
      assert.strictEqual(receiptOf(result).creditsRedeemed, "2")
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 8)
    })
  })

  it.scopedLive("a plain McpServer.layerHttp drops the in-band payment but still takes the header", () => {
    const { ledger, token } = setup()
    const plain = McpServer.layerHttp({ name: "agent", version: "1.0.0", path: "/mcp" })
    return Effect.gen(function*() {
      const url = yield* serveMcp(ledger, plain)
      const inBand = yield* connect(url)
      const dropped = yield* call(inBand, "search", { query: "x" }, { [McpPayment.PAYMENT_META_KEY]: token })
      assert.isTrue(dropped.isError)
      assert.strictEqual(dropped.structuredContent?.x402Version, 2)
      const withHeader = yield* connect(url, { "payment-signature": token })
      assert.strictEqual(receiptOf(yield* call(withHeader, "search", { query: "x" })).success, true)
    })
  })

  it.scopedLive("a refused token, a tool failure: not settled", () => {
    const { ledger, subscriber, token } = setup()
    return Effect.gen(function*() {
      const client = yield* connect(yield* serveMcp(ledger))
      const refused = yield* call(client, "search", { query: "x" }, { [McpPayment.PAYMENT_META_KEY]: "forged" })
      assert.isTrue(refused.isError)
      assert.strictEqual(refused.structuredContent?.error, "Verification failed: invalid_payload")
      const failed = yield* call(client, "search", { query: "fail" }, { [McpPayment.PAYMENT_META_KEY]: token })
      assert.isTrue(failed.isError)
      assert.deepStrictEqual(failed.structuredContent, { _tag: "SearchFailed", query: "fail" })
      assert.isUndefined(failed._meta?.[McpPayment.PAYMENT_RESPONSE_META_KEY])
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 10)
      assert.isFalse(ledger.calls.some((c) => c.operation === "settle"))
    })
  })

  it.scopedLive("facilitator trouble: 502-coded error at verify; a failed settlement withholds the output", () => {
    const { ledger, token } = setup()
    return Effect.gen(function*() {
      const client = yield* connect(yield* serveMcp(ledger))
      ledger.failNext("verify", { _tag: "Timeout" })
      const verify = yield* call(client, "search", { query: "x" }, { [McpPayment.PAYMENT_META_KEY]: token })
      assert.isTrue(verify.isError)
      assert.strictEqual(JSON.parse(verify.content[0].text!).code, 502)

      ledger.failNext("settle", { _tag: "Rejected", reason: "insufficient_funds" })
      const settle = yield* call(client, "search", { query: "x" }, { [McpPayment.PAYMENT_META_KEY]: token })
      assert.isTrue(settle.isError)
      assert.notInclude(JSON.stringify(settle), "result for")
      assert.strictEqual(settle.structuredContent?.error, "Settlement rejected: insufficient_funds")
      assert.strictEqual(receiptOf(settle).success, false)
    })
  })
})
