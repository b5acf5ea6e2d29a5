/**
 * Paid tools in an `@effect/ai` `McpServer`: mark tools of a `Toolkit` as paid with
 * `PaidMcpTool.paid({ planId, credits })`, register the toolkit with `PaidMcpTool.toolkit`, and each
 * paid tool's handler runs inside `Paywall.protect`, in band (docs/mcp.md); unpaid tools stay free.
 *
 * Serve it with `PaidMcpTool.layerHttp` (`McpServer.layerHttp` plus the reading of the in-band
 * payment in `params._meta`, which the server's own request decoding drops). Under a plain
 * `McpServer.layerHttp`, paid tools still accept the `payment-signature` header of the HTTP request.
 *
 * This module needs `@effect/ai` (an optional peer dependency): import it by path,
 * `@effect-x402/core/PaidMcpTool`; the package's index does not load it.
 *
 * @since 0.1.0
 */
import * as McpSchema from "@effect/ai/McpSchema"
import * as McpServer from "@effect/ai/McpServer"
import * as AiTool from "@effect/ai/Tool"
import type * as Toolkit from "@effect/ai/Toolkit"
import type * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import type * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as JSONSchema from "effect/JSONSchema"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as Credits from "./Credits.js"
import type { Facilitator } from "./Facilitator.js"
import * as Answers from "./internal/answers.js"
import { answerInternal, sealFailures } from "./internal/internalFailure.js"
import { own } from "./internal/json.js"
import { redactTokenHeaders } from "./internal/serverSpan.js"
import * as McpPayment from "./McpPayment.js"
import type * as PaymentContext from "./PaymentContext.js"
import * as Paywall from "./Paywall.js"

/**
 * A tool call, as a credits function sees it: the tool's name and its raw arguments.
 *
 * @since 0.1.0
 * @category models
 */
export interface ToolCall {
  readonly name: string
  readonly arguments: { readonly [key: string]: unknown }
}

/**
 * How a tool is priced and advertised.
 *
 * Unless the options name them, the advertised `resource.url` is the MCP endpoint's URL (or
 * `mcp://tool/<name>` outside HTTP) and `extra.httpVerb` is `POST`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends Paywall.Options<ToolCall, never, McpPayment.ToolResult> {
  /**
   * Headers of the MCP HTTP request that may carry the token. Default `payment-signature`; never
   * `Authorization` (a `RangeError` where the tool is marked paid).
   */
  readonly tokenHeaders?: ReadonlyArray<string> | undefined
}

/**
 * The annotation that makes a tool paid.
 *
 * @since 0.1.0
 * @category annotations
 */
export class Paid extends Context.Tag("@effect-x402/core/PaidMcpTool/Paid")<Paid, Options>() {}

/**
 * Marks a tool as paid. Its handler may then use `PaymentContext` (the paywall provides it). The
 * plan may come here or from the `defaults` of the registration (one plan for the agent, a price per
 * tool). A bad fixed price throws a `RangeError` where the tool is defined; a paid tool left without
 * a plan stops the server at startup.
 *
 * @example
 * ```ts
 * import { Tool, Toolkit } from "@effect/ai"
 * import * as PaidMcpTool from "@effect-x402/core/PaidMcpTool"
 * import { Schema } from "effect"
 *
 * const Search = Tool.make("search", {
 *   parameters: { query: Schema.String },
 *   success: Schema.Array(Schema.String)
 * }).pipe(PaidMcpTool.paid({ credits: 2 }))
 *
 * // one plan for the agent, set where the toolkit is registered
 * const ToolsMcp = PaidMcpTool.toolkit(Toolkit.make(Search), { defaults: { planId: "plan-1" } })
 * ```
 *
 * @since 0.1.0
 * @category annotations
 */
export const paid = (options: Options) => {
  if (options.credits !== undefined && typeof options.credits !== "function") {
    Credits.validateSync(options.credits, "credits option")
  }
  Answers.tokenHeaderNames(options.tokenHeaders)
  return <
    Name extends string,
    Config extends {
      readonly parameters: AiTool.AnyParametersSchema
      readonly success: Schema.Schema.Any
      readonly failure: Schema.Schema.All
      readonly failureMode: AiTool.FailureMode
    },
    R
  >(tool: AiTool.Tool<Name, Config, R>): AiTool.Tool<Name, Config, R | PaymentContext.PaymentContext> =>
    tool.annotate(Paid, options)
}

/**
 * The raw MCP request behind the tool call being served: its `params._meta` and the headers it
 * came with, read before the server's decoding drops what it does not know.
 *
 * @since 0.1.0
 * @category in-band
 */
export class McpRequest extends Context.Tag("@effect-x402/core/PaidMcpTool/McpRequest")<McpRequest, {
  readonly meta: unknown
  readonly headers: { readonly [name: string]: string }
}>() {}

const headersOf = (input: unknown): { readonly [name: string]: string } => {
  const headers: Record<string, string> = {}
  if (!Array.isArray(input)) return headers
  for (const entry of input) {
    if (Array.isArray(entry) && typeof entry[0] === "string" && typeof entry[1] === "string") {
      headers[entry[0].toLowerCase()] = entry[1]
    }
  }
  return headers
}

/**
 * Wraps an RPC server protocol so that each `tools/call` request's raw `params._meta` and headers
 * are available to its handler as `McpRequest`: the tool handler runs in a fiber that inherits the
 * context in which the request was delivered.
 *
 * @since 0.1.0
 * @category in-band
 */
export const withInBandPayments = (
  protocol: RpcServer.Protocol["Type"],
  tokenHeaderNames: ReadonlyArray<string> = Answers.DEFAULT_TOKEN_HEADERS
): RpcServer.Protocol["Type"] =>
  RpcServer.Protocol.of({
    ...protocol,
    run: (f) =>
      protocol.run((clientId, message) =>
        message._tag !== "Request" ? f(clientId, message) : Effect.suspend(() => {
          const headers = headersOf(message.headers)
          // Delivered in the HTTP request's fiber, whose span is the server's: a client that sends
          // its token with every request (initialize, notifications) must not leave it there.
          const redact = redactTokenHeaders(headers, tokenHeaderNames)
          return message.tag === "tools/call"
            ? Effect.zipRight(
              redact,
              Effect.provideService(f(clientId, message), McpRequest, { meta: own(message.payload, "_meta"), headers })
            )
            : Effect.zipRight(redact, f(clientId, message))
        })
      )
  })

const layerInBand = <E, R>(protocol: Layer.Layer<RpcServer.Protocol, E, R>): Layer.Layer<RpcServer.Protocol, E, R> =>
  Layer.effect(RpcServer.Protocol, Effect.map(RpcServer.Protocol, (inner) => withInBandPayments(inner))).pipe(
    Layer.provide(protocol)
  )

/**
 * `McpServer.layerHttp` that also reads in-band payments: serves the MCP server over HTTP at
 * `path` of the default `HttpRouter` (`HttpRouter.Default`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttp = (options: {
  readonly name: string
  readonly version: string
  readonly path: HttpRouter.PathInput
}): Layer.Layer<McpServer.McpServer | McpSchema.McpServerClient> =>
  McpServer.layer(options).pipe(
    Layer.provide(layerInBand(RpcServer.layerProtocolHttp(options))),
    Layer.provide(RpcSerialization.layerJsonRpc())
  )

/**
 * `McpServer.layerHttpRouter` that also reads in-band payments, for an `HttpLayerRouter`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttpRouter = (options: {
  readonly name: string
  readonly version: string
  readonly path: HttpRouter.PathInput
}): Layer.Layer<McpServer.McpServer | McpSchema.McpServerClient, never, HttpLayerRouter.HttpRouter> =>
  McpServer.layer(options).pipe(
    Layer.provide(layerInBand(RpcServer.layerProtocolHttpRouter(options))),
    Layer.provide(RpcSerialization.layerJsonRpc())
  )

// The same JSON Schema `McpServer.registerToolkit` advertises, so that a paid tool looks to
// clients exactly like a free one.
const inputSchemaOf = (ast: SchemaAST.AST): unknown => {
  if (SchemaAST.getPropertySignatures(ast).length === 0) {
    return { type: "object", properties: {}, required: [], additionalProperties: false }
  }
  const $defs: Record<string, JSONSchema.JsonSchema7> = {}
  const schema = JSONSchema.fromAST(ast, { definitions: $defs, topLevelReferenceStrategy: "skip" })
  return Object.keys($defs).length === 0 ? schema : { ...schema, $defs }
}

const mcpToolOf = (tool: AiTool.Any): McpSchema.Tool =>
  new McpSchema.Tool({
    name: tool.name,
    description: tool.description,
    inputSchema: inputSchemaOf(tool.parametersSchema.ast),
    annotations: new McpSchema.ToolAnnotations({
      ...Option.match(Context.getOption(tool.annotations, AiTool.Title), {
        onNone: () => ({}),
        onSome: (title) => ({ title })
      }),
      readOnlyHint: Context.get(tool.annotations, AiTool.Readonly),
      destructiveHint: Context.get(tool.annotations, AiTool.Destructive),
      idempotentHint: Context.get(tool.annotations, AiTool.Idempotent),
      openWorldHint: Context.get(tool.annotations, AiTool.OpenWorld)
    })
  })

const textOf = (value: unknown): McpPayment.TextContent => ({ type: "text", text: JSON.stringify(value) ?? "null" })

const resultOf = (isError: boolean, value: unknown): McpPayment.ToolResult => ({
  isError,
  // MCP wants an object here: an array or a scalar result goes only in the text.
  structuredContent: typeof value === "object" && value !== null && !Array.isArray(value) ? value : undefined,
  content: [textOf(value)]
})

const decodeResult = Schema.decodeUnknown(McpSchema.CallToolResult)

// `Toolkit.handle` fails with `MalformedOutput` when the call's arguments do not decode.
const isBadArguments = (error: unknown): boolean =>
  typeof error === "object" && error !== null && (error as { readonly _tag?: unknown })._tag === "MalformedOutput"

const badArguments = (name: string): McpPayment.ToolResult => ({
  isError: true,
  content: [textOf({ error: `Invalid arguments for tool ${name}`, code: 400 })]
})

const defined = <A extends object>(options: A): Partial<A> =>
  Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<A>

// A tool that names its own plans takes none from the defaults: it accepts exactly the ones it names.
const mergeOptions = (defaults: Partial<Options> | undefined, own: Options): Options => {
  const { planId, planIds, ...rest } = defined(defaults ?? {})
  const ownPlans = own.planId !== undefined || own.planIds !== undefined
  return {
    httpVerb: "POST",
    ...rest,
    ...(ownPlans ? {} : { planId, planIds }),
    ...defined(own)
  }
}

const resourceUrlOf = (request: Option.Option<HttpServerRequest.HttpServerRequest>, name: string): string =>
  Option.flatMap(request, HttpServerRequest.toURL).pipe(
    Option.match({ onNone: () => `mcp://tool/${name}`, onSome: (url) => `${url.origin}${url.pathname}` })
  )

/**
 * Registers a toolkit with the `McpServer`, like `McpServer.registerToolkit`, with its paid tools
 * (those marked with `paid`) behind the paywall: each call is verified before the handler runs and
 * settled after a successful result (a failure, a `failureMode: "return"` failure or a defect is
 * not settled); the result carries the receipt in `_meta["x402/payment-response"]`, and a missing or
 * refused payment answers the payment-required result. Handlers may read the payment, and charge
 * another amount, with `PaymentContext`.
 *
 * A failure the tool declares (its `failure` schema) is answered as `McpServer.registerToolkit`
 * does, and arguments that do not decode get `Invalid arguments for tool <name>`; any other failure
 * or defect, of a paid or a free tool, answers `{"error": "Internal error; nothing was charged",
 * "code": 500, "requestId": id}`, its detail logged (redacted) under the same id.
 *
 * `defaults` apply to every paid tool under its own options (e.g. `agentId`, `network`).
 *
 * @since 0.1.0
 * @category tools
 */
export const registerToolkit: <Tools extends Record<string, AiTool.Any>>(
  toolkit: Toolkit.Toolkit<Tools>,
  options?: { readonly defaults?: Partial<Options> | undefined }
) => Effect.Effect<
  void,
  never,
  | McpServer.McpServer
  | Facilitator
  | AiTool.HandlersFor<Tools>
  | Exclude<AiTool.Requirements<Tools>, McpSchema.McpServerClient>
> = Effect.fnUntraced(function*<Tools extends Record<string, AiTool.Any>>(
  toolkit: Toolkit.Toolkit<Tools>,
  options?: { readonly defaults?: Partial<Options> | undefined }
) {
  const registry = yield* McpServer.McpServer
  // The toolkit's handler types are invariant in its tools; past registration only names matter.
  const built = (yield* toolkit) as unknown as {
    readonly tools: { readonly [name: string]: AiTool.Any }
    readonly handle: (
      name: string,
      params: unknown
    ) => Effect.Effect<AiTool.HandlerResult<AiTool.Any>, unknown>
  }
  const context = yield* Effect.context<Facilitator>()
  for (const tool of Object.values(built.tools)) {
    const name = tool.name
    const declared = Schema.is(tool.failureSchema as Schema.Schema<unknown, unknown, never>)
    // A failure the tool declares (its failure schema) is its answer to the caller, as under
    // `McpServer.registerToolkit`; arguments that do not decode are the caller's own mistake. Any
    // other failure or defect is sealed: logged, redacted, and answered generically.
    const call = (payload: { readonly [key: string]: unknown }) =>
      built.handle(name, payload).pipe(
        Effect.map((result) => resultOf(result.isFailure, result.encodedResult)),
        Effect.catchIf(
          (error) => declared(error) || isBadArguments(error),
          (error) => Effect.succeed(declared(error) ? resultOf(true, error) : badArguments(name))
        )
      )
    const paywall = Option.map(Context.getOption(tool.annotations, Paid), (paidOptions) => {
      const merged = mergeOptions(options?.defaults, paidOptions)
      return { paywall: Paywall.make(merged), tokenHeaders: Answers.tokenHeaderNames(merged.tokenHeaders) }
    })
    yield* registry.addTool({
      tool: mcpToolOf(tool),
      handle: (payload: { readonly [key: string]: unknown }) =>
        Option.match(paywall, {
          onNone: () => sealFailures(call(payload), "a free tool failed"),
          onSome: ({ paywall, tokenHeaders }) =>
            Effect.gen(function*() {
              const request = yield* Effect.serviceOption(McpRequest)
              const http = yield* Effect.serviceOption(HttpServerRequest.HttpServerRequest)
              const headers: Answers.HeadersInput = Option.match(request, {
                onSome: (request) => request.headers,
                onNone: () => Option.getOrUndefined(Option.map(http, (http) => http.headers))
              })
              return yield* McpPayment.protect(paywall, {
                request: { name, arguments: payload },
                meta: Option.getOrUndefined(Option.map(request, (request) => request.meta)),
                headers,
                tokenHeaders,
                toolName: name,
                resourceUrl: resourceUrlOf(http, name)
              }, call(payload))
            })
        }).pipe(
          Effect.provide(context),
          Effect.catchAllCause((cause) => answerInternal(cause, McpPayment.internalErrorResult, "a tool call failed")),
          Effect.flatMap(toCallToolResult)
        )
    })
  }
})

const toCallToolResult = (result: McpPayment.ToolResult): Effect.Effect<McpSchema.CallToolResult> =>
  decodeResult(result).pipe(
    Effect.catchAll((error) =>
      Effect.zipRight(
        Effect.logWarning(
          `x402: a tool result is not a valid CallToolResult: ${ParseResult.TreeFormatter.formatErrorSync(error)}`
        ),
        Effect.succeed(
          new McpSchema.CallToolResult({
            isError: true,
            content: [{ type: "text", text: JSON.stringify({ error: "Invalid tool result", code: 500 }) }]
          })
        )
      )
    )
  )

/**
 * Registers a toolkit with its paid tools, as a layer (see `registerToolkit`).
 *
 * @since 0.1.0
 * @category tools
 */
export const toolkit = <Tools extends Record<string, AiTool.Any>>(
  toolkit: Toolkit.Toolkit<Tools>,
  options?: { readonly defaults?: Partial<Options> | undefined }
): Layer.Layer<
  never,
  never,
  Facilitator | AiTool.HandlersFor<Tools> | Exclude<AiTool.Requirements<Tools>, McpSchema.McpServerClient>
> => Layer.effectDiscard(registerToolkit(toolkit, options)).pipe(Layer.provide(McpServer.McpServer.layer))
