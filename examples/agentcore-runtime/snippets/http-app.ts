import { HttpPaywall, PaymentContext } from "@effect-x402/core"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Schema } from "effect"

// A fixed price: 2 credits per call.
const summarize = HttpServerResponse.json({ summary: "..." }).pipe(
  HttpPaywall.middleware({ planId: "plan-1", agentId: "agent-1", credits: 2 })
)

const Translation = Schema.Struct({ text: Schema.String, pages: Schema.Int })

// A price from the request (1 credit per page), and a handler that charges what the work cost.
const translate = Effect.gen(function*() {
  const { text } = yield* HttpServerRequest.schemaBodyJson(Translation)
  const payment = yield* PaymentContext.PaymentContext
  if (text.length > 5_000) yield* payment.chargeCredits(payment.credits + 1)
  return yield* HttpServerResponse.json({ translation: text, payer: payment.payer })
}).pipe(
  HttpPaywall.middleware({
    planId: "plan-1",
    credits: (request) =>
      request.json.pipe(Effect.flatMap(Schema.decodeUnknown(Translation)), Effect.map(({ pages }) => pages))
  })
)

export const router = HttpRouter.empty.pipe(
  HttpRouter.post("/summarize", summarize),
  HttpRouter.post("/translate", translate),
  HttpRouter.get("/health", HttpServerResponse.text("ok")) // free
)
