import { X402 } from "@effect-x402/core"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { AgentCoreEvents, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"

describe("my paid agent", () => {
  // An in-memory ledger: a plan, a subscriber with 3 credits, and an access token for them.
  const { ledger, subscriber, token } = TestFacilitator.seeded({ planId: "plan-1", credits: 3 })
  const handler = requiresPayment({ planId: "plan-1", credits: 2, layer: TestFacilitator.layer(ledger) })(
    () => ({ content: [{ type: "text", text: "forecast: sunny" }] })
  )

  it.effect("asks for payment, then charges for the call", () =>
    Effect.gen(function*() {
      const unpaid = yield* Effect.promise(() =>
        handler(AgentCoreEvents.request({ tool: "forecast" }), AgentCoreEvents.context())
      )
      const header = unpaid.mcp.transformedGatewayResponse?.headers?.["payment-required"] ?? ""
      const required = yield* X402.PaymentRequiredHeader.decode(header)
      assert.strictEqual(required.accepts[0].planId, "plan-1")
      assert.strictEqual(ledger.calls.length, 0) // no facilitator call without a token

      const paid = yield* Effect.promise(() =>
        handler(AgentCoreEvents.request({ tool: "forecast", token }), AgentCoreEvents.context())
      )
      const receipt = yield* X402.ReceiptHeader.decode(
        paid.mcp.transformedGatewayResponse?.headers?.["payment-response"] ?? ""
      )
      assert.strictEqual(receipt.creditsRedeemed, "2")
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 1)
    }))
})
