import { PaymentContext } from "@effect-x402/core"
import * as PaidMcpTool from "@effect-x402/core/PaidMcpTool"
import { Tool, Toolkit } from "@effect/ai"
import { HttpRouter } from "@effect/platform"
import { Effect, Layer, Schema } from "effect"

const Search = Tool.make("search", {
  parameters: { query: Schema.String },
  success: Schema.Array(Schema.String)
}).pipe(PaidMcpTool.paid({ credits: 2 })) // paid: 2 credits a call

const Echo = Tool.make("echo", { parameters: { text: Schema.String }, success: Schema.String }) // free

const Tools = Toolkit.make(Search, Echo)

const ToolsLive = Tools.toLayer({
  search: ({ query }) =>
    Effect.gen(function*() {
      if (query.length > 100) yield* PaymentContext.chargeCredits(3)
      return [`result for ${query}`]
    }),
  echo: ({ text }) => Effect.succeed(text)
})

// Serve with an HttpServer (e.g. NodeHttpServer.layer) and a Facilitator (e.g. Nevermined.layerConfig()).
export const McpLive = Layer.mergeAll(
  PaidMcpTool.toolkit(Tools, { defaults: { planId: "plan-1", agentId: "agent-1" } }),
  HttpRouter.Default.serve()
).pipe(
  Layer.provide(ToolsLive),
  Layer.provide(PaidMcpTool.layerHttp({ name: "my-agent", version: "1.0.0", path: "/mcp" }))
)
