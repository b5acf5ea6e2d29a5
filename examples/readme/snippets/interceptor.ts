import { interceptor } from "@effect-x402/lambda/Interceptor"

// A separate Lambda the AgentCore Gateway calls twice per request: REQUEST verifies the token and
// forwards the call to the target (MCP server, OpenAPI, Lambda); RESPONSE settles and adds the receipt.
export const handler = interceptor({
  planId: process.env.NVM_PLAN_ID ?? "plan-123",
  agentId: process.env.NVM_AGENT_ID,
  // The default price; tools without a price of their own and without a default pass for free.
  credits: 1,
  tools: {
    getPatient: { credits: 2 },
    exportRecords: { planId: "plan-premium", credits: 10 }
  }
})
