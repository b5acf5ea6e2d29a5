/**
 * What every candidate shares: the plan, the constant answers of an immediate facilitator, the
 * handler's work and the events.
 */
import type { Facilitator } from "@effect-x402/core/Facilitator"
import * as FacilitatorModule from "@effect-x402/core/Facilitator"
import type * as X402 from "@effect-x402/core/X402"
import type { APIGatewayProxyEventV2, Context } from "aws-lambda"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export const PLAN_ID = "plan-1"
export const AGENT_ID = "agent-1"
export const NETWORK = "eip155:84532"
export const ENDPOINT = "https://gateway.example/mcp"
export const PAYER = "0x5ub5cr1b3r00000000000000000000000000001"
export const TOKEN = "nvm_tok_00000001.k3y0f4cc3ss"

export const planIdsOf = (n: number): ReadonlyArray<string> =>
  n === 1 ? [PLAN_ID] : Array.from({ length: n }, (_, i) => `plan-${i + 1}`)

export const VERIFIED: X402.VerifyResponse = { isValid: true, payer: PAYER, network: NETWORK, agentRequestId: "areq_1" }
export const SETTLED: X402.SettleResponse = {
  success: true,
  payer: PAYER,
  transaction: `0x${"1".padStart(64, "0")}`,
  network: NETWORK,
  creditsRedeemed: "1",
  remainingBalance: "99"
}

/** A facilitator that answers at once, with constant answers: the pipeline's own cost, nothing else. */
export const immediateFacilitator: Layer.Layer<Facilitator> = Layer.succeed(
  FacilitatorModule.Facilitator,
  FacilitatorModule.Facilitator.of({
    verify: () => Effect.succeed(VERIFIED),
    settle: () => Effect.succeed(SETTLED),
    networkFor: () => Effect.succeed(NETWORK),
    // As the live layer answers when its plan cache is warm: at once, for every plan.
    networksFor: (planIds) => Effect.succeed(planIds.map(() => NETWORK)),
    cachedNetworks: (planIds) => planIds.map(() => NETWORK),
    // An answer at once meets every deadline: as the live layer, it takes the call's deadline with
    // the request, so Paywall sets no timer of its own (the live layer's one timer per operation is
    // in section 3's figures).
    honoursDeadline: true
  })
)

/** The same, for code without Effect: a Promise that resolves at once. */
export interface PlainFacilitator {
  readonly verify: (request: {
    readonly paymentRequired: unknown
    readonly token: string
    readonly maxAmount: string
  }) => Promise<X402.VerifyResponse>
  readonly settle: (request: {
    readonly paymentRequired: unknown
    readonly token: string
    readonly maxAmount: string
    readonly agentRequestId?: string | undefined
  }) => Promise<X402.SettleResponse>
}

export const immediatePlainFacilitator: PlainFacilitator = {
  verify: async () => VERIFIED,
  settle: async () => SETTLED
}

/** The tool's work: the same constant answer for every candidate. */
export const MCP_RESULT = { content: [{ type: "text", text: "{\"patient\":\"123\",\"allergies\":[\"penicillin\"]}" }] }
export const mcpTool = async (_event: unknown): Promise<typeof MCP_RESULT> => MCP_RESULT

export const HTTP_RESULT = {
  statusCode: 200,
  headers: { "content-type": "application/json" },
  body: "{\"answer\":42}"
}
export const httpRoute = async (_event: unknown): Promise<typeof HTTP_RESULT> => HTTP_RESULT

/** Arguments whose JSON is about `bytes` long: many small fields, like a real tool call. */
export const argumentsOf = (bytes: number): Record<string, unknown> => {
  const rows: Array<{ readonly id: number; readonly note: string }> = []
  let size = 12
  for (let id = 0; size < bytes; id++) {
    const row = { id, note: `row ${id} of the patient record, some free text` }
    rows.push(row)
    size += JSON.stringify(row).length + 1
  }
  return { patient_id: "123", rows }
}

export const agentCoreEvent = (
  options: { readonly token?: string; readonly arguments?: Record<string, unknown> } = {}
) => ({
  interceptorInputVersion: "1.0",
  mcp: {
    gatewayRequest: {
      path: "/mcp",
      httpMethod: "POST",
      headers: {
        "Content-Type": "application/json",
        ...(options.token !== undefined ? { "payment-signature": options.token } : {})
      },
      body: {
        jsonrpc: "2.0",
        id: "req-1",
        method: "tools/call",
        params: { name: "Target___getPatient", arguments: options.arguments ?? { patient_id: "123" } }
      }
    }
  }
})

export type AgentCoreEvent = ReturnType<typeof agentCoreEvent>

const DOMAIN = "abc123.execute-api.us-east-1.amazonaws.com"

export const httpEvent = (
  options: { readonly token?: string; readonly body?: string } = {}
): APIGatewayProxyEventV2 => ({
  version: "2.0",
  routeKey: "$default",
  rawPath: "/agent",
  rawQueryString: "",
  headers: {
    host: DOMAIN,
    "content-type": "application/json",
    ...(options.token !== undefined ? { "payment-signature": options.token } : {})
  },
  requestContext: {
    accountId: "123456789012",
    apiId: "abc123",
    domainName: DOMAIN,
    domainPrefix: "abc123",
    http: { method: "POST", path: "/agent", protocol: "HTTP/1.1", sourceIp: "203.0.113.7", userAgent: "bench" },
    requestId: "req-http-1",
    routeKey: "$default",
    stage: "$default",
    time: "01/Jan/2026:00:00:00 +0000",
    timeEpoch: 1767225600000
  },
  body: options.body ?? "{\"question\":\"life\"}",
  isBase64Encoded: false
})

export const lambdaContext: Context = {
  callbackWaitsForEmptyEventLoop: true,
  functionName: "paid-agent",
  functionVersion: "$LATEST",
  invokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:paid-agent",
  memoryLimitInMB: "512",
  awsRequestId: "00000000-0000-4000-8000-000000000001",
  logGroupName: "/aws/lambda/paid-agent",
  logStreamName: "2026/01/01/[$LATEST]0123456789abcdef",
  getRemainingTimeInMillis: () => 30_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined
}
