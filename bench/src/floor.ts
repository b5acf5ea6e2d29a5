/**
 * The Effect floor: the least an Effect program can do for a paid AgentCore tool call, the same
 * work as ours and nothing more. A `ManagedRuntime` built once, and one generator per call that
 * decodes the event with a Schema, verifies through a facilitator service from a Layer, runs the
 * handler, settles and answers with a base64 JSON receipt. No hooks, no policies, no logging.
 * "Effect floor (1 span)" is the same generator inside one `Effect.withSpan`.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { AGENT_ID, ENDPOINT, NETWORK, PLAN_ID, SETTLED, VERIFIED } from "./fixtures.js"

export const FLOOR_NO_SPAN = "Effect floor (no span)"
export const FLOOR_ONE_SPAN = "Effect floor (1 span)"

interface VerifyResponse {
  readonly isValid: boolean
  readonly agentRequestId?: string | undefined
}
interface SettleResponse {
  readonly success: boolean
  readonly transaction: string
  readonly network: string
  readonly creditsRedeemed?: string | undefined
}

class FloorFacilitator extends Context.Tag("bench/FloorFacilitator")<FloorFacilitator, {
  readonly verify: (request: { readonly token: string; readonly maxAmount: string }) => Effect.Effect<VerifyResponse>
  readonly settle: (
    request: { readonly token: string; readonly maxAmount: string; readonly agentRequestId?: string | undefined }
  ) => Effect.Effect<SettleResponse>
}>() {}

const layer = Layer.succeed(FloorFacilitator, {
  verify: () => Effect.succeed(VERIFIED),
  settle: () => Effect.succeed(SETTLED)
})

const Event = Schema.Struct({
  mcp: Schema.Struct({
    gatewayRequest: Schema.Struct({
      headers: Schema.Record({ key: Schema.String, value: Schema.String }),
      body: Schema.Struct({
        jsonrpc: Schema.Literal("2.0"),
        id: Schema.Union(Schema.Number, Schema.String),
        method: Schema.String,
        params: Schema.optional(Schema.Struct({ name: Schema.String }))
      })
    })
  })
})
const decode = Schema.decodeUnknown(Event)

const paymentRequired = {
  x402Version: 2,
  resource: { url: ENDPOINT, mimeType: "application/json" },
  accepts: [{ scheme: "nvm:erc4337", network: NETWORK, planId: PLAN_ID, extra: { version: "1", agentId: AGENT_ID } }],
  extensions: {}
}

const base64Json = (value: unknown): string => Buffer.from(JSON.stringify(value), "utf8").toString("base64")

const program = (event: unknown, handler: (event: unknown) => Promise<unknown>) =>
  Effect.gen(function*() {
    const decoded = yield* Effect.orDie(decode(event))
    const { body, headers } = decoded.mcp.gatewayRequest
    const token = headers["payment-signature"]
    const facilitator = yield* FloorFacilitator
    const verification = yield* facilitator.verify({ token, maxAmount: "1" })
    if (!verification.isValid) return { error: 402, paymentRequired }
    const result = yield* Effect.promise(() => handler(event))
    const settlement = yield* facilitator.settle({
      token,
      maxAmount: "1",
      agentRequestId: verification.agentRequestId
    })
    const receipt = base64Json({
      success: settlement.success,
      transactionHash: settlement.transaction,
      network: settlement.network,
      creditsRedeemed: settlement.creditsRedeemed
    })
    return {
      interceptorOutputVersion: "1.0",
      mcp: {
        transformedGatewayResponse: {
          statusCode: 200,
          headers: { "Content-Type": "application/json", "payment-response": receipt },
          body: { jsonrpc: "2.0", id: body.id, result }
        }
      }
    }
  })

/**
 * The two floor handlers. `tracer`, when given, is installed in the 1-span floor's runtime (the
 * 1-span floor is then what one exported span costs, to compare with ours under the same tracer).
 */
export const make = (
  handler: (event: unknown) => Promise<unknown>,
  tracer?: Layer.Layer<never>
): {
  readonly noSpan: (event: unknown) => Promise<unknown>
  readonly oneSpan: (event: unknown) => Promise<unknown>
} => {
  const plain = ManagedRuntime.make(layer)
  const traced = ManagedRuntime.make(tracer === undefined ? layer : Layer.merge(layer, tracer))
  return {
    noSpan: (event) => plain.runPromise(program(event, handler)),
    oneSpan: (event) =>
      traced.runPromise(Effect.withSpan(program(event, handler), "floor.handle", { captureStackTrace: false }))
  }
}
