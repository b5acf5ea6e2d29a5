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
      assert.strictEqual(receipt.success, true)
      assert.strictEqual(receipt.transaction, fake.ledger.settlements[0].transaction)
      assert.strictEqual(receipt.creditsRedeemed, "3")
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 7)
      // the verify and settle the backend received name the MCP endpoint and the tool's price
      const verify = JSON.parse(fake.requests.find((r) => r.route === "verify")!.body)
      assert.strictEqual(verify.paymentRequired.resource.url, `${url}/mcp`)
      assert.strictEqual(verify.maxAmount, "3")
      assert.strictEqual(fake.calls("settle"), 1)
    }))
})
