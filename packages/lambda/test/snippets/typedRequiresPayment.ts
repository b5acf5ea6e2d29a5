import type { Facilitator } from "@effect-x402/core/Facilitator"
import { toolCallOf } from "@effect-x402/lambda/AgentCore"
import type { LambdaContext } from "@effect-x402/lambda/LambdaRuntime"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { Context, Effect, Layer } from "effect"

class Pricing extends Context.Tag("Pricing")<Pricing, { readonly creditsFor: (tool: string) => number }>() {}
class Db extends Context.Tag("Db")<Db, { readonly patient: (id: string) => Effect.Effect<string> }>() {}

const PricingLive = Layer.succeed(Pricing, { creditsFor: (tool) => (tool === "getHistory" ? 5 : 1) })
const DbLive = Layer.succeed(Db, { patient: (id) => Effect.succeed(`patient ${id}: stable`) })

// No type arguments: what `credits` (Pricing) and the handler (Db) need is what `services` provides;
// leave one out of `services` and it does not compile, naming it.
export const paidHandler = (planId: string, facilitator?: Layer.Layer<Facilitator>) =>
  requiresPayment({
    planId,
    layer: facilitator, // default: the live Nevermined facilitator from the environment
    credits: (event) => Effect.map(Pricing, (pricing) => pricing.creditsFor(toolCallOf(event)?.tool ?? "")),
    services: Layer.mergeAll(PricingLive, DbLive)
  })((event) =>
    Effect.gen(function*() {
      const db = yield* Db
      const text = yield* db.patient(String(toolCallOf(event)?.arguments.patient_id))
      return { content: [{ type: "text" as const, text }] }
    })
  )

// In a test, the answer is typed: its text and its receipt read without `as any`.
export const answerOf = async (handler: ReturnType<typeof paidHandler>, event: unknown, context: LambdaContext) => {
  const { body } = (await handler(event, context)).mcp.transformedGatewayResponse
  return { text: body?.result?.content[0]?.text, receipt: body?.result?._meta?.["x402/payment-response"] }
}
