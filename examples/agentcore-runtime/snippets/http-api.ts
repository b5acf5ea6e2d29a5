import { HttpPaywall, PaymentContext } from "@effect-x402/core"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Effect, Layer, Schema } from "effect"

class Api extends HttpApi.make("agent").add(
  HttpApiGroup.make("tools").add(
    HttpApiEndpoint.post("answer", "/answer")
      .setPayload(Schema.Struct({ question: Schema.String }))
      .addSuccess(Schema.Struct({ answer: Schema.String }))
      .middleware(HttpPaywall.Paid) // documents the 402 in the API too
  )
) {}

const ToolsLive = HttpApiBuilder.group(
  Api,
  "tools",
  (handlers) =>
    handlers.handle("answer", ({ payload }) =>
      Effect.gen(function*() {
        const payment = yield* PaymentContext.PaymentContext // the verified payment, as a service
        return { answer: `${payload.question}? 42, for ${payment.payer}` }
      }))
)

export const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide(ToolsLive),
  Layer.provide(HttpPaywall.layerHttpApi({ planId: "plan-1", credits: 2 }))
)
