/**
 * The example paid agent: three weather tools behind x402, priced three ways.
 *
 * - `forecast`: a fixed price, 1 credit;
 * - `report`: dynamic credits, 1 per day asked for (verified up front from the arguments);
 * - `research`: 2 credits verified, but the work decides the charge: 1 per source it used, returned
 *   as `_meta.creditsToCharge`.
 *
 * It ships in both AgentCore flavours: `paidAgent` is one Lambda that verifies, runs and settles
 * (`requiresPayment`, the decorator); `paymentInterceptor` + `toolServer` are a gateway
 * interceptor Lambda in front of a plain MCP target; `paymentInterceptor` + `runtimeTarget` put the
 * same interceptor in front of an HTTP target, the agent served as AgentCore Runtime serves one. The facilitator is a Layer: the demo gives
 * it a local fake Nevermined or the live sandbox, and the code here does not change.
 */
import { type Facilitator, SettlementLedger } from "@effect-x402/core"
import { AgentCore } from "@effect-x402/lambda"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { Effect, Either, Layer, Logger, LogLevel, Redacted, Schema, type Scope } from "effect"
import * as Crypto from "node:crypto"
import * as Http from "node:http"

/** An own property of a JSON value (never one its prototype carries), else `undefined`. */
const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null && Object.prototype.hasOwnProperty.call(value, key)
    ? (value as Record<string, unknown>)[key]
    : undefined

/** What the agent needs to know to get paid. */
export interface PaymentConfig {
  readonly planId: string
  readonly agentId?: string | undefined
  /** Advertised in the 402 as `resource.url`: where clients call the agent. */
  readonly endpoint?: string | undefined
  /** The facilitator: the live Nevermined layer, pointed at the sandbox or at a local fake. */
  readonly layer: Layer.Layer<Facilitator.Facilitator, unknown>
  /** Where the agent's warnings and errors go, one logfmt line each. Default: stderr. */
  readonly logTo?: ((line: string) => void) | undefined
}

// ---------------------------------------------------------------------------
// The tools: what they take, what they cost, what they do
// ---------------------------------------------------------------------------

/** The tool list (free to read): MCP `tools/list`. */
export const tools = [
  {
    name: "forecast",
    description: "Tomorrow's weather in a city. 1 credit.",
    inputSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
  },
  {
    name: "report",
    description: "A day-by-day outlook for 1 to 7 days. 1 credit per day.",
    inputSchema: {
      type: "object",
      properties: { city: { type: "string" }, days: { type: "integer", minimum: 1, maximum: 7 } },
      required: ["city", "days"]
    }
  },
  {
    name: "research",
    description: "Climate research on a city from several sources. 2 credits up front; 1 per source used.",
    inputSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
  }
] as const

const City = Schema.Struct({ city: Schema.NonEmptyTrimmedString })
const Report = Schema.Struct({ city: Schema.NonEmptyTrimmedString, days: Schema.Int.pipe(Schema.between(1, 7)) })

const text = (value: string) => ({ content: [{ type: "text", text: value }] })

/** An MCP error result: the paywall never charges it. */
const invalid = (message: string) => ({ isError: true, content: [{ type: "text", text: message }] })

const SKIES = ["Sunny", "Cloudy", "Light rain", "Windy", "Clear"] as const
const skyOf = (city: string, day: number) => SKIES[(city.length + day) % SKIES.length]

const forecast = ({ city }: typeof City.Type) => Effect.succeed(text(`${skyOf(city, 1)}, 21°C in ${city} tomorrow`))

const report = ({ city, days }: typeof Report.Type) =>
  Effect.succeed(
    text(Array.from({ length: days }, (_, day) => `day ${day + 1}: ${skyOf(city, day + 1)}`).join("; "))
  )

const research = ({ city }: typeof City.Type) =>
  Effect.gen(function*() {
    const sources = ["station records", "satellite data", "sea temperatures", "river levels", "pollen counts"]
    yield* Effect.annotateCurrentSpan("sources", sources.length)
    return {
      ...text(`${city}: ${sources.length} sources agree on a mild, wet spring`),
      // The price is known only now: the paywall settles this instead of the 2 credits it verified.
      _meta: { creditsToCharge: sources.length }
    }
  })

/** Runs a tool: the agent's work, an Effect. Bad arguments are an error result (never charged). */
export const runTool = (name: string | undefined, args: unknown) => {
  const withArgs = <A, I>(schema: Schema.Schema<A, I>, work: (a: A) => Effect.Effect<object>) =>
    Either.match(Schema.decodeUnknownEither(schema)(args), {
      onLeft: () => Effect.succeed(invalid(`invalid arguments for ${name}`)),
      onRight: work
    })
  switch (name) {
    case "forecast":
      return withArgs(City, forecast)
    case "report":
      return withArgs(Report, report)
    case "research":
      return withArgs(City, research)
    default:
      return Effect.succeed(invalid(`unknown tool: ${name}`))
  }
}

/** Credits verified before a call: `report` costs its days (an invalid value verifies 1 and is then refused). */
export const creditsOf = (event: unknown): number => {
  const call = AgentCore.toolCallOf(event)
  switch (call?.tool) {
    case "report": {
      const days = call.arguments.days
      return typeof days === "number" && Number.isInteger(days) && days >= 1 && days <= 7 ? days : 1
    }
    case "research":
      return 2
    default:
      return 1
  }
}

// The demo prints its own story on stdout: the agent logs only what needs a human, to stderr (or
// where the demo's caller says: its tests keep the lines instead of printing them).
const quietly = (config: PaymentConfig) =>
  Layer.merge(
    Logger.minimumLogLevel(LogLevel.Warning),
    Logger.replace(
      Logger.defaultLogger,
      config.logTo === undefined
        ? Logger.withConsoleError(Logger.logfmtLogger)
        : Logger.map(Logger.logfmtLogger, config.logTo)
    )
  )

// ---------------------------------------------------------------------------
// Flavour 1: the agent is the Lambda (`requiresPayment`, the decorator)
// ---------------------------------------------------------------------------

/**
 * The paid agent as one Lambda: verify → run → settle in one invocation. `requiresPayment` answers
 * `tools/list` (free) from the declared tools, with their prices; an undeclared tool never runs.
 */
export const paidAgent = (config: PaymentConfig) =>
  requiresPayment({
    planId: config.planId,
    agentId: config.agentId,
    endpoint: config.endpoint,
    credits: creditsOf,
    tools: Object.fromEntries(tools.map(({ name, ...tool }) => [name, tool])),
    layer: config.layer,
    services: quietly(config)
  })((event) => {
    const call = AgentCore.toolCallOf(event)
    return runTool(call?.tool, call?.arguments)
  })

// ---------------------------------------------------------------------------
// Flavour 2: a payment interceptor in front of an unchanged MCP target
// ---------------------------------------------------------------------------

/** The gateway interceptor Lambda: REQUEST verifies, RESPONSE settles. Prices per tool. */
export const paymentInterceptor = (config: PaymentConfig) =>
  interceptor({
    planId: config.planId,
    agentId: config.agentId,
    endpoint: config.endpoint,
    layer: config.layer,
    // One instance serves both phases here, so its memory is the shared ledger and its key the
    // shared seal key. Deployed, use a `DynamoDbLedger` and `X402_REQUEST_SEAL_KEY` (or `NVM_API_KEY`).
    requestSealKey: Redacted.make(Crypto.randomBytes(32).toString("base64url")),
    services: Layer.merge(quietly(config), SettlementLedger.layerMemory()),
    tools: {
      forecast: { credits: 1 },
      report: { credits: creditsOf },
      research: { credits: 2 }
    }
  })

/** The target behind the interceptor: a plain MCP tool server that knows nothing about payments. */
export const toolServer = async (request: { readonly body: unknown }) => {
  const id = field(request.body, "id") ?? null
  const method = field(request.body, "method")
  const params = field(request.body, "params")
  const headers = { "Content-Type": "application/json" }
  if (method !== "tools/list" && method !== "tools/call") {
    return {
      statusCode: 200,
      headers,
      body: { jsonrpc: "2.0", id, error: { code: -32601, message: "Method not found" } }
    }
  }
  const result = method === "tools/list"
    ? { tools }
    : await Effect.runPromise(runTool(AgentCore.toolNameOf(method, params), field(params, "arguments")))
  return { statusCode: 200, headers, body: { jsonrpc: "2.0", id, result } }
}

// ---------------------------------------------------------------------------
// Flavour 3: the same interceptor in front of an HTTP target (an AgentCore Runtime agent)
// ---------------------------------------------------------------------------

const RESEARCH_STEPS = ["station records", "satellite data", "sea temperatures", "river levels", "pollen counts"]

/**
 * The agent as AgentCore Runtime serves one: an HTTP server with `GET /ping` (health) and
 * `POST /mcp` (the tools, as `toolServer` answers them), knowing nothing about payments. A
 * `research` call whose client accepts SSE is streamed: a progress notification per source, then
 * the result; the gateway calls the RESPONSE interceptor once for the result event (the only one
 * with an id), which settles it.
 */
export const runtimeTarget: Effect.Effect<{ readonly url: string }, never, Scope.Scope> = Effect.acquireRelease(
  Effect.async<Http.Server>((resume) => {
    const server = Http.createServer((req, res) => {
      if (req.method === "GET" && req.url === "/ping") {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify({ status: "Healthy", time_of_last_update: Math.floor(Date.now() / 1000) }))
        return
      }
      if (req.method !== "POST" || req.url !== "/mcp") {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "Not found" }))
        return
      }
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        let body: unknown
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"))
        } catch {
          res.writeHead(400, { "content-type": "application/json" })
          res.end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } }))
          return
        }
        if (field(body, "id") === undefined) {
          res.writeHead(202).end()
          return
        }
        const params = field(body, "params")
        const streamed = field(body, "method") === "tools/call" &&
          field(params, "name") === "research" &&
          (req.headers.accept ?? "").includes("text/event-stream")
        toolServer({ body }).then((answer) => {
          if (!streamed) {
            res.writeHead(answer.statusCode, answer.headers).end(JSON.stringify(answer.body))
            return
          }
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
          RESEARCH_STEPS.forEach((source, i) => {
            const progress = {
              jsonrpc: "2.0",
              method: "notifications/progress",
              params: { progressToken: "research", progress: i + 1, total: RESEARCH_STEPS.length, message: source }
            }
            res.write(`event: message\ndata: ${JSON.stringify(progress)}\n\n`)
          })
          res.end(`event: message\ndata: ${JSON.stringify(answer.body)}\n\n`)
        }, () => res.writeHead(500).end())
      })
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) =>
    Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
).pipe(
  Effect.map((server) => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    return { url: `http://127.0.0.1:${port}/mcp` }
  })
)
