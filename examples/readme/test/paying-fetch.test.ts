// The README's paying fetch, run as a user would: the MCP SDK client through the LocalGateway
// (interceptor in front of an MCP target) over HTTP, the subscriber's settings from the environment.
import { Adapter } from "@effect-x402/core"
import type { LocalGateway } from "@effect-x402/testing"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as PayingGateway from "../../../packages/testing/test/fixtures/payingGateway.js"

const saved = { ...process.env }
let paying: PayingGateway.PayingGateway

const target: LocalGateway.Target = ({ body }) => ({
  statusCode: 200,
  headers: { "Content-Type": "application/json" },
  body: {
    jsonrpc: "2.0",
    id: Adapter.own(body, "id") ?? null,
    result: Adapter.own(body, "method") === "tools/list"
      ? { tools: [{ name: "getPatient", inputSchema: { type: "object" } }] }
      : { content: [{ type: "text", text: "stable" }] }
  }
})

beforeAll(async () => {
  paying = await PayingGateway.start({ planId: "plan-123", credits: 3, target })
  Object.assign(process.env, paying.subscriberEnv)
})

afterAll(async () => {
  process.env = saved
  await paying?.close()
})

describe("the paying fetch", () => {
  it("lets the MCP SDK client pay for a tool call: one settlement, the receipt in _meta", async () => {
    const { connectPaid, payingFetch } = await import("../snippets/paying-fetch.js")
    const { fake, gateway } = paying
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
