import * as AgentCore from "@effect-x402/lambda/AgentCore"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { Effect } from "effect"

const PLAN_ID = process.env.NVM_PLAN_ID ?? "plan-123"
const work = () => ({ content: [{ type: "text", text: "done" }] })

// Basic
export const basic = requiresPayment({ planId: PLAN_ID, credits: 1 })(work)

// With an agent id and the advertised endpoint
export const withAgent = requiresPayment({
  planId: PLAN_ID,
  credits: 1,
  agentId: process.env.NVM_AGENT_ID,
  endpoint: "https://my-gateway.amazonaws.com/mcp"
})(work)

// Dynamic credits: a function of the event (it may also return a Promise or an Effect)
const calcCredits = (event: AgentCore.InterceptorInput) =>
  AgentCore.toolCallOf(event)?.arguments.detailed === true ? 10 : 1

export const dynamic = requiresPayment({ planId: PLAN_ID, credits: calcCredits })(work)

// A custom token header, or a list tried in order (any case). Never `Authorization`: behind a
// gateway it carries the caller's identity token, so naming it is refused at cold start.
export const customHeader = requiresPayment({
  planId: PLAN_ID,
  credits: 1,
  tokenHeader: ["X-Payment", "payment-signature"]
})(work)

// Lifecycle hooks: plain functions, Promises or Effects. A failing hook is logged, never fatal.
export const withHooks = requiresPayment({
  planId: PLAN_ID,
  credits: 1,
  onBeforeVerify: (paymentRequired) => Effect.log(`Verifying payment for plan ${paymentRequired.accepts[0].planId}`),
  onAfterVerify: (verification) => Effect.log(`Verified! Payer: ${verification.payer}`),
  onAfterSettle: (creditsUsed, settlement) =>
    Effect.log(`Settled ${creditsUsed} credits, tx: ${settlement.transaction}`),
  // Return a response (in any handler format) to send instead of the default one, or nothing.
  onPaymentError: (error) =>
    error._tag === "PaymentRequired"
      ? { isError: true, content: [{ type: "text", text: "Buy credits at https://example.com/plans" }] }
      : undefined
})(work)
