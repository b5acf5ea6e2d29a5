/**
 * A paid MCP tool served by an AWS Lambda behind the Bedrock AgentCore Gateway: the TypeScript
 * version of the Nevermined Python SDK's `@requires_payment` quick start (docs/protocol.md).
 *
 * Environment: `NVM_API_KEY` (required), `NVM_ENVIRONMENT` (`sandbox` by default),
 * `NVM_PLAN_ID` (required), `NVM_AGENT_ID` and `NVM_ENDPOINT` (optional); `NVM_BACKEND_URL` points
 * at another backend.
 */
import * as AgentCore from "@effect-x402/lambda/AgentCore"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import * as Effect from "effect/Effect"

// The agent's work. An Effect, so it can use services and typed errors; a plain or async function
// works as well.
const lookupPatient = (patientId: string) =>
  Effect.succeed({ patientId, name: `Patient ${patientId}`, allergies: ["penicillin"] }).pipe(
    Effect.withSpan("lookupPatient", { attributes: { patientId } })
  )

// The tools this Lambda serves: the library answers `initialize`, `ping` and `tools/list` from them
// (each tool's price in its `_meta`), refuses undeclared tools and unknown methods, and runs the
// handler only for a paid `tools/call`.
const tools = {
  getPatient: {
    description: "A patient's record. 1 credit; 2 with detailed: true.",
    inputSchema: {
      type: "object" as const,
      properties: { patient_id: { type: "string" }, detailed: { type: "boolean" } },
      required: ["patient_id"]
    }
  }
}

export const handler = requiresPayment({
  planId: process.env.NVM_PLAN_ID ?? "",
  agentId: process.env.NVM_AGENT_ID,
  endpoint: process.env.NVM_ENDPOINT,
  tools,
  // A detailed report costs more: verified up front, settled after the work.
  credits: (event) => AgentCore.toolCallOf(event)?.arguments.detailed === true ? 2 : 1
})((event) =>
  Effect.gen(function*() {
    const call = AgentCore.toolCallOf(event)
    const patientId = String(call?.arguments.patient_id ?? "")
    if (patientId.length === 0) {
      // An error result: never charged.
      return { isError: true, content: [{ type: "text", text: "patient_id is required" }] }
    }
    const patient = yield* lookupPatient(patientId)
    return { content: [{ type: "text", text: JSON.stringify({ tool: call?.tool, patient }) }] }
  })
)
