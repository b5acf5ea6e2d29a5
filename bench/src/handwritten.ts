/**
 * The hand-written baselines: what a careful developer would write without any framework to
 * protect a handler with x402 (header lookup, PaymentRequired building, verify, run, settle,
 * base64 JSON receipt, result wrapping). No Schema, no Effect, no hooks, no logging.
 */
import type { PlainFacilitator } from "./fixtures.js"

export interface Config {
  readonly planIds: ReadonlyArray<string>
  readonly agentId: string
  readonly endpoint: string
  readonly network: string
  readonly credits: number
}

type Json = Record<string, unknown>

const isRecord = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

/** A header's trimmed value, found case-insensitively (shared with the wire's Effect floor). */
export const headerOf = (headers: unknown, name: string): string | undefined => {
  if (!isRecord(headers)) return undefined
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === name) {
      const value = headers[key]
      if (typeof value === "string" && value.trim().length > 0) return value.trim()
    }
  }
  return undefined
}

export const base64Json = (value: unknown): string => Buffer.from(JSON.stringify(value), "utf8").toString("base64")

/** The PaymentRequired of a call, built per call as a hand-written agent builds it. */
export const paymentRequiredOf = (config: Config, httpVerb: string, url: string) => ({
  x402Version: 2,
  resource: { url, mimeType: "application/json" },
  accepts: config.planIds.map((planId) => ({
    scheme: "nvm:erc4337",
    network: config.network,
    planId,
    extra: { version: "1", agentId: config.agentId, httpVerb }
  })),
  extensions: {}
})

const rpcError = (id: unknown, text: unknown, paymentRequired?: unknown) => ({
  interceptorOutputVersion: "1.0",
  mcp: {
    transformedGatewayResponse: {
      statusCode: 200,
      headers: {
        "Content-Type": "application/json",
        ...(paymentRequired !== undefined ? { "payment-required": base64Json(paymentRequired) } : {})
      },
      body: {
        jsonrpc: "2.0",
        id,
        result: { isError: true, content: [{ type: "text", text: JSON.stringify(text) }] }
      }
    }
  }
})

/** `@requires_payment` for an AgentCore gateway event, by hand. */
export const agentCore = (
  config: Config,
  facilitator: PlainFacilitator,
  handler: (event: unknown) => Promise<unknown>
) =>
async (event: unknown): Promise<unknown> => {
  const request = isRecord(event) && isRecord(event.mcp) ? event.mcp.gatewayRequest : undefined
  if (!isRecord(request)) return { statusCode: 500, body: { error: "Internal interceptor error" } }
  const body = typeof request.body === "string" ? JSON.parse(request.body) as unknown : request.body
  if (!isRecord(body) || typeof body.method !== "string") return rpcError(null, { error: "Invalid request" })
  const id = body.id ?? null
  const wrap = (result: unknown, headers: Record<string, string>) => ({
    interceptorOutputVersion: "1.0",
    mcp: {
      transformedGatewayResponse: {
        statusCode: 200,
        headers: { "Content-Type": "application/json", ...headers },
        body: { jsonrpc: "2.0", id, result }
      }
    }
  })
  if (body.method !== "tools/call") return wrap(await handler(event), {})
  const paymentRequired = paymentRequiredOf(config, "POST", config.endpoint)
  const token = headerOf(request.headers, "payment-signature")
  if (token === undefined) {
    return rpcError(id, { error: "Payment required", code: 402, message: "Payment required" }, paymentRequired)
  }
  const maxAmount = String(config.credits)
  const verification = await facilitator.verify({ paymentRequired, token, maxAmount })
  if (!verification.isValid) {
    return rpcError(id, { error: "Payment required", code: 402, message: verification.invalidReason }, paymentRequired)
  }
  const result = await handler(event)
  if (isRecord(result) && result.isError === true) return wrap(result, {})
  const meta = isRecord(result) && isRecord(result._meta) ? result._meta : {}
  const charge = typeof meta.creditsToCharge === "number" ? String(meta.creditsToCharge) : maxAmount
  const settlement = await facilitator.settle({
    paymentRequired,
    token,
    maxAmount: charge,
    agentRequestId: verification.agentRequestId
  })
  if (!settlement.success) return rpcError(id, { error: "Settlement failed", code: 402 })
  const receipt = {
    success: true,
    transactionHash: settlement.transaction,
    network: settlement.network,
    creditsRedeemed: settlement.creditsRedeemed,
    remainingBalance: settlement.remainingBalance
  }
  const x402 = {
    success: true,
    transaction: settlement.transaction,
    network: settlement.network,
    creditsRedeemed: settlement.creditsRedeemed,
    remainingBalance: settlement.remainingBalance
  }
  return wrap(
    { ...(isRecord(result) ? result : { value: result }), _meta: { ...meta, x402 } },
    { "payment-response": base64Json(receipt) }
  )
}

interface HttpEventLike {
  readonly headers?: Record<string, string | undefined> | undefined
  readonly rawPath?: string | undefined
  readonly requestContext?: { readonly domainName?: string | undefined; readonly http?: { readonly method?: string } }
}

/** An API Gateway v2 / Function URL handler with the x402 HTTP transport, by hand. */
export const http = (
  config: Config,
  facilitator: PlainFacilitator,
  handler: (event: unknown) => Promise<{ statusCode: number; headers?: Record<string, string>; body?: string }>
) =>
async (event: unknown): Promise<unknown> => {
  const e = event as HttpEventLike
  const method = e.requestContext?.http?.method ?? "GET"
  const url = `https://${e.requestContext?.domainName ?? ""}${e.rawPath ?? "/"}`
  const paymentRequired = paymentRequiredOf(config, method, url)
  const token = headerOf(e.headers, "payment-signature")
  const refuse = (message: string | undefined) => ({
    statusCode: 402,
    headers: { "content-type": "application/json", "payment-required": base64Json(paymentRequired) },
    body: JSON.stringify({ error: "Payment Required", message })
  })
  if (token === undefined) return refuse("Payment required")
  const maxAmount = String(config.credits)
  const verification = await facilitator.verify({ paymentRequired, token, maxAmount })
  if (!verification.isValid) return refuse(verification.invalidReason)
  const result = await handler(event)
  if (result.statusCode >= 400) return result
  const override = headerOf(result.headers, "x-credits-to-charge")
  const settlement = await facilitator.settle({
    paymentRequired,
    token,
    maxAmount: override ?? maxAmount,
    agentRequestId: verification.agentRequestId
  })
  if (!settlement.success) return refuse("Settlement failed")
  return {
    ...result,
    headers: { ...result.headers, "payment-response": base64Json(settlement) }
  }
}
