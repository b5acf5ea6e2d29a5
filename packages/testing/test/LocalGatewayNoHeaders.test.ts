// An MCP target whose RESPONSE interceptor gets no request headers (the gateway's
// `passRequestHeaders: false` for RESPONSE): the official MCP SDK client pays through the
// LocalGateway over real HTTP, the interceptor (`passRequestHeaders: false`) settles through the
// ledger with the id its REQUEST phase forwarded, and FakeNevermined's ledger agrees with the
// receipts. A target that drops the forwarded id gets its paid output withheld, nothing settled.
import { Nevermined, SettlementLedger, Subscriber, X402 } from "@effect-x402/core"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { FakeNevermined, LocalGateway } from "@effect-x402/testing"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect, Layer, Logger, Redacted } from "effect"

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any

const PLAN = "plan-no-headers"
const AGENT = "agent-no-headers"

interface Seen {
  readonly headers: { readonly [name: string]: string }
  readonly body: Json
}

/** An MCP tool server that knows nothing of payments; `dropId` answers under an id of its own. */
const mcpTarget =
  (seen: Array<Seen>, options: { readonly dropId?: boolean } = {}): LocalGateway.Target => (request) => {
    const body = request.body as Json
    seen.push({ headers: request.headers, body })
    const id = options.dropId === true ? "not-the-forwarded-id" : body.id
    const result = body.method === "tools/list"
      ? { tools: [{ name: "forecast", description: "The weather (paid)", inputSchema: { type: "object" } }] }
      : { content: [{ type: "text", text: "sunny" }] }
    return { statusCode: 200, headers: { "content-type": "application/json" }, body: { jsonrpc: "2.0", id, result } }
  }

const connect = (url: string, headers: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Client({ name: "no-headers-test", version: "1.0.0" })
      await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }))
      return client
    }),
    (client) => Effect.promise(() => client.close())
  )

const setup = (options: { readonly dropId?: boolean } = {}) =>
  Effect.gen(function*() {
    const fake = yield* FakeNevermined.make()
    fake.ledger.addPlan({ planId: PLAN, agentId: AGENT })
    fake.ledger.fund(fake.subscriber, PLAN, 10)
    const handler = interceptor({
      planId: PLAN,
      agentId: AGENT,
      credits: 2,
      endpoint: "http://127.0.0.1/mcp",
      passRequestHeaders: false,
      requestSealKey: Redacted.make("seal key shared by the interceptor's instances"),
      layer: Nevermined.layer({ apiKey: fake.apiKey, backendUrl: fake.url }).pipe(Layer.provide(FetchHttpClient.layer)),
      services: Layer.merge(SettlementLedger.layerMemory(), Logger.remove(Logger.defaultLogger))
    })
    yield* Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose()))
    const seen: Array<Seen> = []
    const gateway = yield* LocalGateway.make({
      interceptor: handler,
      target: mcpTarget(seen, options),
      passRequestHeaders: { request: true, response: false }
    })
    const subscriber = yield* Subscriber.make({ apiKey: fake.subscriberApiKey, backendUrl: fake.url }).pipe(
      Effect.provide(FetchHttpClient.layer)
    )
    const delegation = fake.ledger.delegate(fake.subscriber)
    const token = yield* subscriber.accessToken({ planId: PLAN, agentId: AGENT, delegationId: delegation.delegationId })
    return { fake, gateway, seen, token }
  })

interface ToolResult {
  readonly isError?: boolean
  readonly content: Array<{ readonly type: string; readonly text?: string }>
  readonly _meta?: { readonly [key: string]: unknown }
}

describe("MCP SDK client → LocalGateway (RESPONSE without request headers) → interceptor → MCP target", () => {
  it.scopedLive("a paid call settles once through the ledger; the RESPONSE events carry no headers", () =>
    Effect.gen(function*() {
      const { fake, gateway, seen, token } = yield* setup()
      const paying = yield* connect(gateway.url, { [X402.PAYMENT_SIGNATURE_HEADER]: Redacted.value(token) })
      const listed = yield* Effect.promise(() => paying.listTools())
      assert.deepStrictEqual(listed.tools.map((tool) => tool.name), ["forecast"])
      for (let i = 0; i < 2; i++) {
        const paid = (yield* Effect.promise(() => paying.callTool({ name: "forecast", arguments: {} }))) as ToolResult
        assert.deepStrictEqual(paid.content, [{ type: "text", text: "sunny" }])
        const receipt = paid._meta?.x402 as X402.MetaX402
        assert.isTrue(receipt.success)
        assert.strictEqual(receipt.creditsRedeemed, "2")
      }
      // The gateway gave RESPONSE no request headers, and the paid calls reached the target under
      // ids the REQUEST phase forwarded (never the caller's own), without the token.
      const responses = gateway.invocations.filter((i) => i._tag === "Lambda" && i.phase === "RESPONSE")
      assert.isAbove(responses.length, 0)
      for (const invocation of responses) {
        assert.isUndefined((invocation as Json).event.mcp.gatewayRequest.headers)
      }
      const calls = seen.filter((s) => s.body.method === "tools/call")
      assert.strictEqual(calls.length, 2)
      for (const call of calls) {
        assert.notStrictEqual(typeof call.body.id === "number" && call.body.id < 2 ** 20, true)
        assert.notInclude(JSON.stringify(call.headers), Redacted.value(token))
      }
      assert.strictEqual(fake.ledger.settlements.length, 2)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 6)
    }))

  it.scopedLive("a target that answers under another id: the paid output is withheld, nothing settled", () =>
    Effect.gen(function*() {
      const { fake, gateway, token } = yield* setup({ dropId: true })
      const response = yield* Effect.promise(() =>
        fetch(gateway.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            accept: "application/json, text/event-stream",
            [X402.PAYMENT_SIGNATURE_HEADER]: Redacted.value(token)
          },
          body: JSON.stringify({
            jsonrpc: "2.0",
            id: 5,
            method: "tools/call",
            params: { name: "forecast", arguments: {} }
          })
        })
      )
      const text = yield* Effect.promise(() => response.text())
      assert.notInclude(text, "sunny")
      assert.strictEqual(fake.ledger.settlements.length, 0)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 10)
    }))
})
