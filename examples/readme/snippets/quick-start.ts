import { toolCallOf } from "@effect-x402/lambda/AgentCore"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"

// Reads NVM_API_KEY, NVM_ENVIRONMENT (and NVM_BACKEND_URL) for the live Nevermined facilitator.
export const handler = requiresPayment({
  planId: process.env.NVM_PLAN_ID ?? "",
  agentId: process.env.NVM_AGENT_ID,
  credits: 1,
  endpoint: "https://gateway.bedrock-agentcore.amazonaws.com/mcp"
})((event) => {
  // Runs only when the payment is verified.
  const call = toolCallOf(event)
  const result = { tool: call?.tool, patient: call?.arguments.patient_id, status: "stable" }
  return { content: [{ type: "text", text: JSON.stringify(result) }] }
})
