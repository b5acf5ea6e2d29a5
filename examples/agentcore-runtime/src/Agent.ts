/**
 * A paid agent for Amazon Bedrock AgentCore Runtime. On AgentCore Runtime an agent is an HTTP server
 * on port 8080 that answers `GET /ping` (health) and `POST /invocations` (the agent's work); this one
 * also serves MCP tools at `/mcp`. `/invocations` and one of the tools are paid in Nevermined
 * credits through x402; `/ping` and the other tool are free. `gatewayTarget` serves the same tools
 * with no payment code, for an AgentCore Gateway whose payment interceptor (`gatewayInterceptor`)
 * does the paying in front of it.
 */
import { HttpPaywall, PaymentContext } from "@effect-x402/core"
import type { Facilitator } from "@effect-x402/core/Facilitator"
import * as PaidMcpTool from "@effect-x402/core/PaidMcpTool"
import * as Interceptor from "@effect-x402/lambda/Interceptor"
import { McpServer, Tool, Toolkit } from "@effect/ai"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Config, Effect, Layer, Schema } from "effect"

/** Where the agent is paid: its Nevermined plan and agent. */
export interface Options {
  readonly planId: string
  readonly agentId?: string | undefined
}

/** The body of `POST /invocations`. */
export const Invocation = Schema.Struct({ prompt: Schema.String.pipe(Schema.maxLength(10_000)) })

/**
 * One credit per started 100 characters of prompt: the price comes from the request. A body that
 * does not decode is priced 1; the handler then answers 400, which is never settled.
 */
export const priceOf = (request: HttpServerRequest.HttpServerRequest) =>
  request.json.pipe(
    Effect.flatMap(Schema.decodeUnknown(Invocation)),
    Effect.map(({ prompt }) => Math.max(1, Math.ceil(prompt.length / 100))),
    Effect.orElseSucceed(() => 1)
  )

// The agent's work: here a stand-in for a model call.
const invoke = Effect.gen(function*() {
  const { prompt } = yield* HttpServerRequest.schemaBodyJson(Invocation)
  const payment = yield* PaymentContext.PaymentContext
  return yield* HttpServerResponse.json({
    response: `You asked ${prompt.split(/\s+/).filter(Boolean).length} words' worth. Thanks, ${payment.payer}.`
  })
}).pipe(
  Effect.catchTags({
    ParseError: () =>
      HttpServerResponse.json({ error: "Bad Request", message: "expected {\"prompt\": string}" }, { status: 400 }),
    RequestError: () => HttpServerResponse.json({ error: "Bad Request", message: "unreadable body" }, { status: 400 })
  })
)

const ping = Effect.suspend(() =>
  HttpServerResponse.json({ status: "Healthy", time_of_last_update: Math.floor(Date.now() / 1000) })
)

/** `GET /ping` (free) and `POST /invocations` (paid) on the default router. */
export const routes = (options: Options): Layer.Layer<never, never, Facilitator> =>
  HttpRouter.Default.use((router) =>
    Effect.gen(function*() {
      const context = yield* Effect.context<Facilitator>()
      yield* router.get("/ping", ping)
      yield* router.post(
        "/invocations",
        invoke.pipe(
          HttpPaywall.middleware({ planId: options.planId, agentId: options.agentId, credits: priceOf }),
          Effect.provide(context)
        )
      )
    })
  )

/** A free tool. */
export const WordCount = Tool.make("word_count", {
  description: "Counts the words of a text",
  parameters: { text: Schema.String },
  success: Schema.Number
})

/** A paid tool: 2 credits per call, 1 more for a long text (the handler says so). */
export const Summarize = Tool.make("summarize", {
  description: "Summarizes a text in one sentence",
  parameters: { text: Schema.String },
  success: Schema.Struct({ summary: Schema.String })
}).pipe(PaidMcpTool.paid({ credits: 2 }))

export const Tools = Toolkit.make(WordCount, Summarize)

export const ToolsLive = Tools.toLayer({
  word_count: ({ text }) => Effect.succeed(text.split(/\s+/).filter(Boolean).length),
  summarize: ({ text }) =>
    Effect.gen(function*() {
      if (text.length > 1_000) yield* PaymentContext.chargeCredits(3)
      return { summary: `${text.split(/(?<=[.!?])\s/)[0]}` }
    })
})

/** The MCP server at `/mcp`, with its tools; the paid ones are paid with the agent's plan. */
export const mcp = (options: Options): Layer.Layer<never, never, Facilitator> =>
  PaidMcpTool.toolkit(Tools, { defaults: { planId: options.planId, agentId: options.agentId } }).pipe(
    Layer.provide(ToolsLive),
    Layer.provide(PaidMcpTool.layerHttp({ name: "agentcore-runtime-example", version: "1.0.0", path: "/mcp" }))
  )

/**
 * The whole agent, served by the `HttpServer` it is given. The token header is redacted from
 * everything the server records, on every route.
 */
export const layer = (options: Options) =>
  Layer.mergeAll(routes(options), mcp(options), HttpRouter.Default.serve()).pipe(HttpPaywall.withTokenRedaction())

/** The agent configured from the environment: `NVM_PLAN_ID`, and `NVM_AGENT_ID` when the plan names one. */
export const layerConfig = Layer.unwrapEffect(
  Effect.map(
    Config.all({ planId: Config.string("NVM_PLAN_ID"), agentId: Config.option(Config.string("NVM_AGENT_ID")) }),
    ({ agentId, planId }) => layer({ planId, agentId: agentId._tag === "Some" ? agentId.value : undefined })
  )
)

// ---------------------------------------------------------------------------
// Behind an AgentCore Gateway with the payment interceptor (an HTTP target)
// ---------------------------------------------------------------------------

/**
 * The same tools, unpaid: for the agent served as a gateway's HTTP target, where the interceptor
 * Lambda (`@effect-x402/lambda/Interceptor`) verifies in its REQUEST phase and settles in its
 * RESPONSE phase. `summarize` asks for 3 credits on a long text through `_meta.creditsToCharge`,
 * which the interceptor reads, instead of `PaymentContext.chargeCredits`.
 */
export const ToolsBehindGateway = Tools.toLayer({
  word_count: ({ text }) => Effect.succeed(text.split(/\s+/).filter(Boolean).length),
  summarize: ({ text }) => Effect.succeed({ summary: `${text.split(/(?<=[.!?])\s/)[0]}` })
})

/**
 * The agent as an HTTP target behind the gateway's payment interceptor: `GET /ping` and the MCP
 * tools at `/mcp`, no payment code at all (the interceptor prices `summarize`; `word_count` is free).
 */
export const gatewayTarget = Layer.mergeAll(
  HttpRouter.Default.use((router) => router.get("/ping", ping)),
  McpServer.toolkit(Tools).pipe(
    Layer.provide(ToolsBehindGateway),
    Layer.provide(McpServer.layerHttp({ name: "agentcore-runtime-example", version: "1.0.0", path: "/mcp" }))
  ),
  HttpRouter.Default.serve()
)

/**
 * The interceptor Lambda that fronts `gatewayTarget` (deploy it for both REQUEST and RESPONSE):
 * 2 credits per `summarize`; other tools are forwarded unpriced. The RESPONSE phase of an HTTP
 * target finds its call through the ledger: deploy it with a shared `SettlementLedger` (a
 * `DynamoDbLedger`) and `X402_REQUEST_SEAL_KEY` (docs/protocol.md, "HTTP targets").
 */
export const gatewayInterceptor = <LE = never, SE = never>(
  options: Options & Omit<Interceptor.Options<never, LE, SE>, "planId" | "tools">
) =>
  Interceptor.interceptor({
    ...options,
    planId: undefined,
    tools: { summarize: { planId: options.planId, credits: 2 } }
  })
