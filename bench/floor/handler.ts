/**
 * The floor of the cold-start comparison: the least an Effect Lambda doing the same job can ship
 * and load. Schema decodes the event and the backend's answers, `HttpClient` (over fetch) makes the
 * same three calls (plan, verify, settle), `ManagedRuntime` runs it; nothing of effect-x402.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"

const Event = Schema.Struct({
  mcp: Schema.Struct({
    gatewayRequest: Schema.Struct({
      headers: Schema.Record({ key: Schema.String, value: Schema.String }),
      body: Schema.Struct({
        id: Schema.Union(Schema.String, Schema.Number, Schema.Null),
        method: Schema.String,
        params: Schema.Unknown
      })
    })
  })
})
const Plan = Schema.Struct({
  metadata: Schema.optional(Schema.Struct({
    plan: Schema.optional(Schema.Struct({ fiatPaymentProvider: Schema.optional(Schema.String) }))
  }))
})
const Verify = Schema.Struct({ isValid: Schema.Boolean, agentRequestId: Schema.optional(Schema.String) })
const Settle = Schema.Struct({ success: Schema.Boolean, transaction: Schema.String, network: Schema.String })

const runtime = ManagedRuntime.make(FetchHttpClient.layer)
const base = process.env.NVM_BACKEND_URL ?? "http://127.0.0.1:3001"
const headers = {
  authorization: `Bearer ${process.env.NVM_API_KEY ?? ""}`,
  accept: "application/json",
  "nevermined-version": "1.1"
}
const planId = process.env.NVM_PLAN_ID ?? ""

const program = (event: unknown) =>
  Effect.gen(function*() {
    const { mcp } = yield* Schema.decodeUnknown(Event)(event)
    const client = yield* HttpClient.HttpClient
    const call = <A, I>(request: HttpClientRequest.HttpClientRequest, schema: Schema.Schema<A, I>) =>
      client.execute(HttpClientRequest.setHeaders(request, headers)).pipe(
        Effect.flatMap(HttpClientResponse.schemaBodyJson(schema)),
        Effect.timeout("10 seconds")
      )
    const plan = yield* call(HttpClientRequest.get(`${base}/api/v1/protocol/plans/${planId}`), Plan)
    const paymentRequired = {
      x402Version: 2,
      resource: { url: "" },
      accepts: [{
        scheme: "nvm:erc4337",
        network: plan.metadata?.plan?.fiatPaymentProvider ?? "eip155:84532",
        planId,
        extra: { version: "1", agentId: process.env.NVM_AGENT_ID }
      }]
    }
    const token = mcp.gatewayRequest.headers["payment-signature"] ?? ""
    const body = { paymentRequired, x402AccessToken: token, maxAmount: "1" }
    const verified = yield* call(
      HttpClientRequest.bodyUnsafeJson(HttpClientRequest.post(`${base}/api/v1/x402/verify`), body),
      Verify
    )
    const settled = yield* call(
      HttpClientRequest.bodyUnsafeJson(HttpClientRequest.post(`${base}/api/v1/x402/settle`), {
        ...body,
        agentRequestId: verified.agentRequestId
      }),
      Settle
    )
    return {
      interceptorOutputVersion: "1.0",
      mcp: {
        transformedGatewayResponse: {
          statusCode: 200,
          headers: { "payment-response": Buffer.from(JSON.stringify(settled)).toString("base64") },
          body: { jsonrpc: "2.0", id: mcp.gatewayRequest.body.id, result: { content: [] } }
        }
      }
    }
  })

export const handler = (event: unknown, _context: unknown) => runtime.runPromise(program(event))
