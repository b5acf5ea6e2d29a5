/**
 * The `@x402/core` comparison: its framework-agnostic HTTP resource server
 * (`x402HTTPResourceServer`) doing `processHTTPRequest` + `processSettlement` around the same
 * handler, with a facilitator client that answers at once (the same kind of mock as ours).
 */
import type { FacilitatorClient, HTTPAdapter } from "@x402/core/server"
import { x402HTTPResourceServer, x402ResourceServer } from "@x402/core/server"
import type { Network, PaymentPayload, PaymentRequirements, SchemeNetworkServer } from "@x402/core/types"
import { PAYER, SETTLED } from "./fixtures.js"

const SCHEME = "nvm:erc4337"

/** An immediate facilitator client in `@x402/core`'s shape. */
const immediateClient = (network: Network): FacilitatorClient => ({
  verify: async () => ({ isValid: true, payer: PAYER }),
  settle: async (_payload, requirements) => ({
    success: true,
    transaction: SETTLED.transaction,
    network: requirements.network,
    payer: PAYER
  }),
  getSupported: async () => ({ kinds: [{ x402Version: 2, scheme: SCHEME, network }], extensions: [], signers: {} })
})

/** A scheme server for credits: the price is a number of credits, nothing to enrich. */
const creditsScheme: SchemeNetworkServer = {
  scheme: SCHEME,
  defaultAssetTransferMethod: "default",
  paymentFlows: { default: { supported: ["authorization"], default: "authorization" } },
  parsePrice: async (price) => ({ amount: String(price), asset: "credits" }),
  enhancePaymentRequirements: async (requirements) => requirements
}

const adapterOf = (headers: unknown, method: string, path: string, url: string): HTTPAdapter => ({
  getHeader: (name) => {
    if (typeof headers !== "object" || headers === null) return undefined
    const wanted = name.toLowerCase()
    for (const [key, value] of Object.entries(headers)) {
      if (key.toLowerCase() === wanted && typeof value === "string") return value
    }
    return undefined
  },
  getMethod: () => method,
  getPath: () => path,
  getUrl: () => url,
  getAcceptHeader: () => "application/json",
  getUserAgent: () => "bench"
})

export interface X402Core {
  readonly server: x402HTTPResourceServer
  /** A `payment-signature` header value this server accepts (base64 PaymentPayload). */
  readonly paymentSignature: string
}

export const make = async (options: {
  readonly planIds: ReadonlyArray<string>
  readonly agentId: string
  readonly network: string
  readonly endpoint: string
}): Promise<X402Core> => {
  const network = options.network as Network
  const resourceServer = new x402ResourceServer(immediateClient(network)).register(network, creditsScheme)
  const accepts = options.planIds.map((planId) => ({
    scheme: SCHEME,
    network,
    payTo: options.agentId,
    price: "1",
    extra: { planId, agentId: options.agentId }
  }))
  const route = { accepts, resource: options.endpoint, description: "paid tool", mimeType: "application/json" }
  const server = new x402HTTPResourceServer(resourceServer, { "POST /mcp": route, "POST /agent": route })
  await server.initialize()
  const unpaid = await server.processHTTPRequest({
    adapter: adapterOf({}, "POST", "/mcp", options.endpoint),
    path: "/mcp",
    method: "POST"
  })
  if (unpaid.type !== "payment-error") throw new Error("bench setup: @x402/core did not ask for payment")
  const required = JSON.parse(
    Buffer.from(unpaid.response.headers["PAYMENT-REQUIRED"] ?? "", "base64").toString("utf8")
  ) as { readonly resource: unknown; readonly accepts: ReadonlyArray<PaymentRequirements> }
  const payload = {
    x402Version: 2,
    resource: required.resource,
    accepted: required.accepts[0],
    payload: { token: "nvm_tok_00000001.k3y0f4cc3ss" }
  } as PaymentPayload
  return { server, paymentSignature: Buffer.from(JSON.stringify(payload), "utf8").toString("base64") }
}

type Json = Record<string, unknown>
const isRecord = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

/** An AgentCore gateway event through `@x402/core`, answered as an InterceptorOutput. */
export const agentCore =
  (core: X402Core, endpoint: string, handler: (event: unknown) => Promise<unknown>) =>
  async (event: unknown): Promise<unknown> => {
    const request = (event as { mcp: { gatewayRequest: { headers?: unknown; body: unknown } } }).mcp.gatewayRequest
    const body = request.body as Json
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
    const adapter = adapterOf(request.headers, "POST", "/mcp", endpoint)
    const processed = await core.server.processHTTPRequest({ adapter, path: "/mcp", method: "POST" })
    if (processed.type === "payment-error") {
      return wrap({ isError: true, content: [{ type: "text", text: "Payment required" }] }, processed.response.headers)
    }
    const result = await handler(event)
    if (processed.type === "no-payment-required") return wrap(result, {})
    const settled = await core.server.processSettlement(
      processed.paymentPayload,
      processed.paymentRequirements,
      processed.declaredExtensions
    )
    if (!settled.success) return wrap({ isError: true, content: [] }, settled.headers)
    const meta = isRecord(result) && isRecord(result._meta) ? result._meta : {}
    const x402 = { success: true, transaction: settled.transaction, network: settled.network }
    return wrap({ ...(result as Json), _meta: { ...meta, x402 } }, settled.headers)
  }

/** An API Gateway v2 event through `@x402/core`. */
export const http = (
  core: X402Core,
  handler: (event: unknown) => Promise<{ statusCode: number; headers?: Record<string, string>; body?: string }>
) =>
async (event: unknown): Promise<unknown> => {
  const e = event as {
    headers?: unknown
    rawPath: string
    requestContext: { domainName: string; http: { method: string } }
  }
  const method = e.requestContext.http.method
  const adapter = adapterOf(e.headers, method, e.rawPath, `https://${e.requestContext.domainName}${e.rawPath}`)
  const processed = await core.server.processHTTPRequest({ adapter, path: e.rawPath, method })
  if (processed.type === "payment-error") {
    return {
      statusCode: processed.response.status,
      headers: processed.response.headers,
      body: JSON.stringify(processed.response.body ?? {})
    }
  }
  const result = await handler(event)
  if (processed.type === "no-payment-required" || result.statusCode >= 400) return result
  const settled = await core.server.processSettlement(
    processed.paymentPayload,
    processed.paymentRequirements,
    processed.declaredExtensions
  )
  if (!settled.success) {
    return { statusCode: settled.response.status, headers: settled.headers, body: JSON.stringify({}) }
  }
  return { ...result, headers: { ...result.headers, ...settled.headers } }
}
