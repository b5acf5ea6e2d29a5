import { HttpPaywall, PaymentContext } from "@effect-x402/core"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware } from "@effect/platform"
import { Effect, Layer, Schema } from "effect"

// A second price in the same API: one more tag, with the same options as HttpPaywall.Paid.
class Premium extends HttpApiMiddleware.Tag<Premium>()("Premium", HttpPaywall.paidTagOptions) {}

const Question = Schema.Struct({ question: Schema.String })
const Answer = Schema.Struct({ answer: Schema.String })

class Api extends HttpApi.make("agent").add(
  HttpApiGroup.make("tools")
    .add(HttpApiEndpoint.post("answer", "/answer").setPayload(Question).addSuccess(Answer).middleware(HttpPaywall.Paid))
    .add(HttpApiEndpoint.post("research", "/research").setPayload(Question).addSuccess(Answer).middleware(Premium))
) {}

const ToolsLive = HttpApiBuilder.group(Api, "tools", (handlers) =>
  handlers
    .handle("answer", ({ payload }) =>
      Effect.gen(function*() {
        const payment = yield* PaymentContext.PaymentContext // the verified payment, as a service
        return { answer: `${payload.question}? 42, for ${payment.payer}` }
      }))
    .handle("research", ({ payload }) => Effect.succeed({ answer: `${payload.question}? It depends.` })))

export const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide(ToolsLive),
  Layer.provide(HttpPaywall.layerHttpApi({ planId: "plan-1", credits: 2 })),
  Layer.provide(Layer.effect(Premium, HttpPaywall.httpApiMiddleware({ planId: "plan-1", credits: 10 })))
)
