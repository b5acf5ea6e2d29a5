// Over the wire: an @effect/ai McpServer with a paid tool on a Node server, the live Nevermined
// facilitator talking to FakeNevermined, and the MCP SDK client paying in band with a token the
// subscriber minted for what the payment-required result asked.
import { McpPayment, PaymentContext, type X402 } from "@effect-x402/core"
import * as PaidMcpTool from "@effect-x402/core/PaidMcpTool"
import { FakeNevermined } from "@effect-x402/testing"
import { Tool, Toolkit } from "@effect/ai"
import { HttpRouter } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect, Layer, Redacted, Schema } from "effect"
import { liveFacilitator, liveSubscriber, serveLayer } from "./HttpPaywall.fixtures.js"

const PLAN = "plan-1"
const AGENT = "agent-1"

const Forecast = Tool.make("forecast", {
  parameters: { city: Schema.String },
  success: Schema.Struct({ city: Schema.String, sky: Schema.String, payer: Schema.optional(Schema.String) })
}).pipe(PaidMcpTool.paid({ planId: PLAN, agentId: AGENT, credits: 3 }))

const Tools = Toolkit.make(Forecast)

const ToolsLive = Tools.toLayer({
  forecast: ({ city }) =>
    Effect.map(PaymentContext.PaymentContext, (payment) => ({ city, sky: "clear", payer: payment.payer }))
})

interface Result {
  readonly isError?: boolean
  readonly structuredContent?: Record<string, unknown>
  readonly _meta?: Record<string, unknown>
}

describe("PaidMcpTool over the wire: MCP SDK client → @effect/ai McpServer → FakeNevermined", () => {
  it.scopedLive("payment required, the subscriber mints a token for it, the paid call settles", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      fake.ledger.addPlan({ planId: PLAN, agentId: AGENT })
      fake.ledger.fund(fake.subscriber, PLAN, 10)
      const url = yield* serveLayer(
        Layer.mergeAll(PaidMcpTool.toolkit(Tools), HttpRouter.Default.serve()).pipe(
          Layer.provide(ToolsLive),
          Layer.provide(PaidMcpTool.layerHttp({ name: "weather", version: "1.0.0", path: "/mcp" })),
          Layer.provide(yield* liveFacilitator(fake))
        )
      )
      const client = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const client = new Client({ name: "weather-client", version: "1.0.0" })
          await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`)))
          return client
        }),
        (client) => Effect.promise(() => client.close())
      )
      const forecast = (meta?: Record<string, unknown>) =>
        Effect.promise(() =>
          client.callTool({ name: "forecast", arguments: { city: "Lisbon" }, ...(meta ? { _meta: meta } : {}) })
        ) as Effect.Effect<Result>

      const demand = yield* forecast()
      assert.isTrue(demand.isError)
      const required = demand.structuredContent as unknown as X402.PaymentRequired
      assert.strictEqual(fake.calls("verify"), 0)
      // Exactly the Python SDK's fields: no resource.mimeType or description unless configured
      // (docs/protocol.md §2), the same PaymentRequired as the JSON text of content[0] (§9).
      const expected = {
        x402Version: 2,
        resource: { url: `${url}/mcp` },
        accepts: [{
          scheme: "nvm:erc4337",
          network: "eip155:84532",
          planId: PLAN,
          extra: { version: "1", agentId: AGENT, httpVerb: "POST" }
        }],
        extensions: {}
      }
      // the x402 MCP transport adds the human-readable `error` beside it
      const inBand = { ...expected, error: "Payment required for tool: forecast" }
      assert.deepStrictEqual(required as unknown, inBand)
      const text = (demand as { content?: Array<{ text?: string }> }).content?.[0]?.text ?? ""
      assert.deepStrictEqual(JSON.parse(text), inBand)

      const subscriber = yield* liveSubscriber(fake)
      const accepted = required.accepts[0]
      const token = yield* subscriber.accessToken({
        planId: accepted.planId,
        agentId: accepted.extra?.agentId,
        network: accepted.network
      }).pipe(Effect.orDie)

      const paid = yield* forecast({ [McpPayment.PAYMENT_META_KEY]: Redacted.value(token) })
      assert.isFalse(paid.isError)
      assert.deepStrictEqual(paid.structuredContent, { city: "Lisbon", sky: "clear", payer: fake.subscriber })
      const receipt = paid._meta?.[McpPayment.PAYMENT_RESPONSE_META_KEY] as X402.SettleResponse
      // the facilitator's settle answer, absent fields left out
      assert.deepStrictEqual(receipt, {
        success: true,
        payer: fake.subscriber,
        transaction: fake.ledger.settlements[0].transaction,
        network: "eip155:84532",
        creditsRedeemed: "3",
        remainingBalance: "7"
      })
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 7)
      // the verify and settle the backend received name the MCP endpoint and the tool's price
      const verify = JSON.parse(fake.requests.find((r) => r.route === "verify")!.body)
      assert.deepStrictEqual(verify, {
        paymentRequired: expected,
        x402AccessToken: Redacted.value(token),
        maxAmount: "3"
      })
      const settle = JSON.parse(fake.requests.find((r) => r.route === "settle")!.body)
      assert.deepStrictEqual(settle, { ...verify, agentRequestId: fake.ledger.settlements[0].agentRequestId })
      assert.strictEqual(fake.calls("settle"), 1)
    }))
})
