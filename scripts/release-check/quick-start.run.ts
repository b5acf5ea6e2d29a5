// Runs the README's quick start, installed from the local registry, against FakeNevermined on
// loopback (the live Nevermined layer over HTTP): a 402 without a token, then a paid answer.
import { X402 } from "@effect-x402/core"
import { AgentCoreEvents, FakeNevermined } from "@effect-x402/testing"
import { Effect } from "effect"
import assert from "node:assert/strict"

const fake = await FakeNevermined.start()
try {
  fake.ledger.addPlan({ planId: "plan-123" })
  fake.ledger.fund(fake.subscriber, "plan-123", 5)
  Object.assign(process.env, {
    NVM_API_KEY: fake.apiKey,
    NVM_BACKEND_URL: fake.url,
    NVM_PLAN_ID: "plan-123",
    NVM_AGENT_ID: "agent-7"
  })
  const { handler } = await import("./quick-start.js")
  const headersOf = (out: Awaited<ReturnType<typeof handler>>) => out.mcp.transformedGatewayResponse?.headers ?? {}

  const unpaid = await handler(AgentCoreEvents.request({ tool: "getPatient" }), AgentCoreEvents.context())
  const required = await Effect.runPromise(
    X402.PaymentRequiredHeader.decode(headersOf(unpaid)["payment-required"] ?? "")
  )
  assert.equal(required.accepts[0].planId, "plan-123")

  const token = fake.ledger.mintToken({ planId: "plan-123", subscriber: fake.subscriber })
  const paid = await handler(
    AgentCoreEvents.request({ tool: "getPatient", token, arguments: { patient_id: "123" } }),
    AgentCoreEvents.context()
  )
  const receipt = await Effect.runPromise(X402.ReceiptHeader.decode(headersOf(paid)["payment-response"] ?? ""))
  assert.equal(receipt.success, true)
  assert.equal(fake.ledger.balance(fake.subscriber, "plan-123"), 4)
  console.log("release-check: the quick start answers 402, then a paid answer with its receipt (1 credit burned)")
} finally {
  await fake.close()
}
