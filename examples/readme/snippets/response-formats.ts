import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { TestFacilitator } from "@effect-x402/testing"

// The facilitator of these examples: an in-memory ledger (see "Testing your agent").
export const ledger = new TestFacilitator.Ledger()
const paid = requiresPayment({ planId: "plan-1", credits: 1, layer: TestFacilitator.layer(ledger) })

// 1. A bare MCP result (simplest).
export const bare = paid(() => ({ content: [{ type: "text", text: "Hello!" }] }))

// 2. With a credits override: settle 5 credits instead of 1.
export const expensive = paid(() => ({
  content: [{ type: "text", text: "Expensive result" }],
  _meta: { creditsToCharge: 5 }
}))

// 3. A full JSON-RPC response body.
export const jsonRpc = paid(() => ({
  jsonrpc: "2.0",
  id: "req-1",
  result: { content: [{ type: "text", text: "Hello!" }] }
}))

// 4. A complete InterceptorOutput.
export const complete = paid(() => ({
  interceptorOutputVersion: "1.0",
  mcp: {
    transformedGatewayResponse: {
      statusCode: 200,
      headers: { "Content-Type": "application/json" },
      body: { jsonrpc: "2.0", id: "req-1", result: { content: [{ type: "text", text: "Hello!" }] } }
    }
  }
}))

// An Effect works as well, and so does an async function.
// Every format comes back with a `payment-response` header and `_meta.x402`.
