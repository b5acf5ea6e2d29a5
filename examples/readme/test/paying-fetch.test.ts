// The README's paying fetch, run as a user would: the MCP SDK client through the LocalGateway
// (interceptor in front of an MCP target) over HTTP, the subscriber's settings from the environment.
import { Nevermined } from "@effect-x402/core"
import { AgentCore } from "@effect-x402/lambda"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { FakeNevermined, LocalGateway } from "@effect-x402/testing"
import { FetchHttpClient } from "@effect/platform"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Layer, Logger } from "effect"

const saved = { ...process.env }
let fake: Awaited<ReturnType<typeof FakeNevermined.start>>
let gateway: Awaited<ReturnType<typeof LocalGateway.start>>

const target: LocalGateway.Target = ({ body }) => ({
  statusCode: 200,
  headers: { "Content-Type": "application/json" },
  body: {
    jsonrpc: "2.0",
    id: AgentCore.own(body, "id") ?? null,
    result: AgentCore.own(body, "method") === "tools/list"
      ? { tools: [{ name: "getPatient", inputSchema: { type: "object" } }] }
      : { content: [{ type: "text", text: "stable" }] }
  }
})

beforeAll(async () => {
  fake = await FakeNevermined.start()
  fake.ledger.addPlan({ planId: "plan-123" })
  fake.ledger.fund(fake.subscriber, "plan-123", 10)
  const delegation = fake.ledger.delegate(fake.subscriber)
  gateway = await LocalGateway.start({
    interceptor: interceptor({
      planId: "plan-123",
      credits: 3,
      endpoint: "http://127.0.0.1/mcp",
      services: Logger.replace(Logger.defaultLogger, Logger.none) as Layer.Layer<never>,
      layer: Nevermined.layer({ apiKey: fake.apiKey, backendUrl: fake.url }).pipe(Layer.provide(FetchHttpClient.layer))
    }),
    target
  })
  Object.assign(process.env, {
    NVM_API_KEY: fake.subscriberApiKey,
    NVM_BACKEND_URL: fake.url,
    NVM_DELEGATION_ID: delegation.delegationId
  })
})

afterAll(async () => {
  process.env = saved
  await gateway.close()
  await fake.close()
})

describe("the paying fetch", () => {
  it("lets the MCP SDK client pay for a tool call: one settlement, the receipt in _meta", async () => {
    const { connectPaid, payingFetch } = await import("../snippets/paying-fetch.js")
    const client = await connectPaid(gateway.url)
    try {
      const result = await client.callTool({ name: "getPatient", arguments: { patient_id: "123" } })
      assert.deepStrictEqual(result.content, [{ type: "text", text: "stable" }])
      assert.strictEqual((result._meta?.x402 as { creditsRedeemed?: string }).creditsRedeemed, "3")
      assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-123"), 7)
      assert.strictEqual(fake.ledger.settlements.length, 1)
    } finally {
      await client.close()
      await payingFetch.dispose()
    }
  })
})
