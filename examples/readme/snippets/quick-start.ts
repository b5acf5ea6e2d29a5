import { toolCallOf } from "@effect-x402/lambda/AgentCore"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"

// Reads NVM_API_KEY, NVM_ENVIRONMENT (and NVM_BACKEND_URL) for the live Nevermined facilitator.
export const handler = requiresPayment({
  planId: process.env.NVM_PLAN_ID ?? "",
  agentId: process.env.NVM_AGENT_ID,
  credits: 1,
  endpoint: "https://gateway.bedrock-agentcore.amazonaws.com/mcp",
  // What `tools/list` shows, each tool with its price; a call of anything else never runs the handler.
  tools: {
    getPatient: {
      description: "A patient's record",
      inputSchema: { type: "object", properties: { patient_id: { type: "string" } }, required: ["patient_id"] }
    },
    getHistory: {
      description: "A patient's full history",
      inputSchema: { type: "object", properties: { patient_id: { type: "string" } }, required: ["patient_id"] },
      credits: 5 // its own price; a function of the event works too
    }
  }
})((event) => {
  // Runs only for a declared tool, and only when the payment is verified.
  const call = toolCallOf(event)
  const result = { tool: call?.tool, patient: call?.arguments.patient_id, status: "stable" }
  return { content: [{ type: "text", text: JSON.stringify(result) }] }
})
