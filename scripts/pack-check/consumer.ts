// A user's project outside the workspace: imports the three packed packages, type-checks with
// tsc, and runs a paid call end to end on the in-memory facilitator.
import { Adapter, CallSpan, HttpApiPaywall, Paywall, X402 } from "@effect-x402/core"
import { RequiresPayment } from "@effect-x402/lambda"
import { AgentCoreEvents, TestFacilitator } from "@effect-x402/testing"
import { Effect } from "effect"
import assert from "node:assert/strict"

const { ledger, subscriber, token } = TestFacilitator.seeded({ planId: "plan-1", credits: 3 })

const handler = RequiresPayment.requiresPayment({ planId: "plan-1", credits: 1, layer: TestFacilitator.layer(ledger) })(
  () => ({ content: [{ type: "text", text: "paid answer" }] })
)

const unpaid = await handler(AgentCoreEvents.request({ tool: "weather" }), AgentCoreEvents.context())
const header = unpaid.mcp.transformedGatewayResponse?.headers?.["payment-required"]
assert.ok(typeof header === "string", "a 402 carries payment-required")
const required = await Effect.runPromise(X402.PaymentRequiredHeader.decode(header))
assert.equal(required.accepts[0].planId, "plan-1")

const paid = await handler(
  AgentCoreEvents.request({ tool: "weather", token }),
  AgentCoreEvents.context()
)
const receipt = paid.mcp.transformedGatewayResponse?.headers?.["payment-response"]
assert.ok(typeof receipt === "string", "a paid answer carries payment-response")
assert.equal(ledger.balance(subscriber, "plan-1"), 2)
assert.equal(Paywall.make({ planId: "p" }).planIds[0], "p")
// What an adapter author needs is public; the internal modules are not (`"./internal/*": null`).
assert.equal(Adapter.redact("GET https://x.example/?api_key=k1"), "GET https://x.example/?<redacted>")
assert.equal(await Effect.runPromise(CallSpan.wrap(Adapter.fromCallback(() => Promise.resolve(7)), "call")), 7)
assert.equal(typeof HttpApiPaywall.layer, "function")
for (
  const path of [
    "@effect-x402/core/internal/callSpan",
    "@effect-x402/core/internal/answers",
    "@effect-x402/lambda/internal/redact",
    "@effect-x402/testing/internal/startScoped"
  ]
) {
  await assert.rejects(
    import(path),
    (error: { code?: string }) => error.code === "ERR_PACKAGE_PATH_NOT_EXPORTED",
    `${path} must not be importable`
  )
}
console.log("pack-check: the packed packages type-check and run outside the workspace; internal/* is not exported")
