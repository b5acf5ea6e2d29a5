import { httpHandler } from "@effect-x402/lambda/HttpHandler"

// API Gateway HTTP API (v2) and Lambda Function URLs: a real 402 with `payment-required`, 502 when
// the facilitator fails, no charge when the handler answers >= 400, `payment-response` on success.
export const handler = httpHandler({ planId: process.env.NVM_PLAN_ID ?? "plan-123", credits: 1 })(
  async (event) => ({
    statusCode: 200,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ answer: `You asked for ${event.rawPath}` })
  })
)
