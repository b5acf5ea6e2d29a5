/**
 * A local stand-in for the AWS Bedrock AgentCore Gateway: an HTTP server on loopback whose `POST /mcp`
 * speaks MCP (Streamable HTTP, JSON answers), turns each request into a gateway interceptor event,
 * invokes a Lambda handler in-process, and turns its `InterceptorOutput` back into the HTTP answer.
 * Any MCP client can then call a paid Lambda on your machine.
 *
 * Two flavours, as on AWS:
 * - decorator: one Lambda (e.g. `requiresPayment`) answers every call;
 * - interceptor: an interceptor Lambda runs at REQUEST, the request (as it transformed it) goes to a
 *   target, and the interceptor runs again at RESPONSE with the target's answer.
 *
 * - HTTP target: an interceptor Lambda in front of an HTTP server (an AgentCore Runtime agent, a
 *   passthrough target) reached over real HTTP, with the `http` flavour of the events (base64
 *   bodies, `gatewayRequest: null` in RESPONSE). A target answering SSE is streamed as the gateway
 *   does: one RESPONSE call per JSON-RPC event with an id (`isStreamingResponse: true`), only the
 *   first of which may change the status and headers.
 *
 * In the MCP flavours it answers `initialize`, `ping` and notifications itself, like the real
 * gateway; an HTTP target gets every request. It passes the client's HTTP headers to the Lambda
 * (`passRequestHeaders: true`) unless told otherwise.
 *
 * @since 0.1.0
 */
import * as Json from "@effect-x402/core/Adapter"
import * as X402 from "@effect-x402/core/X402"
import * as AgentCore from "@effect-x402/lambda/AgentCore"
import type * as LambdaRuntime from "@effect-x402/lambda/LambdaRuntime"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Headers from "@effect/platform/Headers"
import * as HttpRouter from "@effect/platform/HttpRouter"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import * as Http from "node:http"
import * as AgentCoreEvents from "./AgentCoreEvents.js"
import { startScoped } from "./internal/startScoped.js"

/**
 * A Lambda handler as the gateway invokes it: the Node.js runtime's `(event, context)`, answering an
 * `InterceptorOutput` (or a Promise of one). `requiresPayment` and `interceptor` handlers fit.
 *
 * @since 0.1.0
 * @category models
 */
export type LambdaHandler = (event: AgentCore.InterceptorInput, context: LambdaRuntime.LambdaContext) => unknown

/**
 * What the target receives in the interceptor flavour: the request as the REQUEST phase forwarded it.
 *
 * @since 0.1.0
 * @category models
 */
export interface TargetRequest {
  readonly headers: { readonly [name: string]: string }
  /** The JSON-RPC request (parsed JSON). */
  readonly body: unknown
}

/**
 * What a target answers. `statusCode` defaults to 200.
 *
 * @since 0.1.0
 * @category models
 */
export interface TargetResponse {
  readonly statusCode?: number | undefined
  readonly headers?: { readonly [name: string]: string } | undefined
  readonly body: unknown
}

/**
 * The gateway's target in the interceptor flavour (an MCP server, a Lambda target, ...): a function
 * of the forwarded request, sync or async. A throw becomes a status-500 JSON-RPC error answer.
 *
 * @since 0.1.0
 * @category models
 */
export type Target = (request: TargetRequest) => TargetResponse | PromiseLike<TargetResponse>

/**
 * The interception points of the interceptor flavour.
 *
 * @since 0.1.0
 * @category models
 */
export type InterceptionPoint = "REQUEST" | "RESPONSE"

/**
 * Options shared by both flavours.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommonOptions {
  /** Default `127.0.0.1`. */
  readonly host?: string | undefined
  /** Default 0: an ephemeral port. */
  readonly port?: number | undefined
  /** The MCP endpoint's path. Default `/mcp`. */
  readonly path?: string | undefined
  /**
   * Pass the client's HTTP headers to the Lambda (the gateway's `passRequestHeaders`). Default true.
   * An object sets it per interception point (the gateway configures each interceptor on its own).
   */
  readonly passRequestHeaders?: boolean | { readonly request: boolean; readonly response: boolean } | undefined
  /** The Lambda's function name, in the context of each invocation. */
  readonly functionName?: string | undefined
  /** The Lambda context of an invocation; by default one made by `AgentCoreEvents.context`. */
  readonly context?: ((invocation: { readonly phase: InterceptionPoint }) => LambdaRuntime.LambdaContext) | undefined
  /** A Lambda (or target) that answers nothing within this is a 504. Default 30 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * Requests larger than this are refused with 413 before any Lambda runs, as Lambda refuses a
   * synchronous payload over 6 MB. Default 6 MiB.
   */
  readonly maxPayloadBytes?: number | undefined
  /** What `initialize` answers as `serverInfo`. */
  readonly serverInfo?: { readonly name: string; readonly version: string } | undefined
  readonly instructions?: string | undefined
}

/**
 * The decorator flavour: one Lambda answers every call (e.g. a `requiresPayment` handler).
 *
 * @since 0.1.0
 * @category models
 */
export interface DecoratorOptions extends CommonOptions {
  readonly handler: LambdaHandler
}

/**
 * The interceptor flavour: an interceptor Lambda in front of a target (e.g. an `interceptor` handler).
 *
 * @since 0.1.0
 * @category models
 */
export interface InterceptorOptions extends CommonOptions {
  readonly interceptor: LambdaHandler
  readonly target: Target
  /** Where the interceptor runs. Default both. */
  readonly interceptionPoints?: ReadonlyArray<InterceptionPoint> | undefined
}

/**
 * An HTTP target (an AgentCore Runtime agent, a passthrough target) behind an interceptor Lambda.
 *
 * @since 0.3.0
 * @category models
 */
export interface HttpTargetOptions extends CommonOptions {
  readonly interceptor: LambdaHandler
  /** The target's URL, e.g. `http://127.0.0.1:8080/mcp`: every client request is POSTed there. */
  readonly httpTarget: string
  /** Where the interceptor runs. Default both. */
  readonly interceptionPoints?: ReadonlyArray<InterceptionPoint> | undefined
}

/**
 * Options of the gateway: `{ handler }` for the decorator flavour, `{ interceptor, target }` for
 * the interceptor flavour, `{ interceptor, httpTarget }` for an HTTP target.
 *
 * @since 0.1.0
 * @category models
 */
export type Options = DecoratorOptions | InterceptorOptions | HttpTargetOptions

/**
 * One step the gateway took for a call: a Lambda invocation (its event and output) or a target call.
 * It holds the caller's headers, tokens included: keep it in assertions, never print it.
 *
 * @since 0.1.0
 * @category models
 */
export type Invocation =
  | {
    readonly _tag: "Lambda"
    readonly phase: InterceptionPoint
    /** An `InterceptorInput`, or an `HttpInterceptorInput` for an HTTP target. */
    readonly event: AgentCore.InterceptorInput
    /** What the handler answered; `undefined` when it threw or timed out. */
    readonly output: unknown
  }
  | { readonly _tag: "Target"; readonly request: TargetRequest; readonly response: TargetResponse | undefined }

/**
 * @since 0.1.0
 * @category tags
 */
export class LocalGateway
  extends Context.Tag("@effect-x402/testing/LocalGateway")<LocalGateway, LocalGateway.Service>()
{}

/**
 * @since 0.1.0
 */
export declare namespace LocalGateway {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The MCP endpoint, e.g. `http://127.0.0.1:49152/mcp`: give it to the MCP client. */
    readonly url: string
    /** The server's origin, e.g. `http://127.0.0.1:49152`. */
    readonly origin: string
    readonly mode: "decorator" | "interceptor" | "http"
    /** Every Lambda invocation and target call, oldest first. */
    readonly invocations: ReadonlyArray<Invocation>
  }
}

/**
 * MCP protocol versions the gateway answers `initialize` with: the client's, when it is one of these.
 *
 * @since 0.1.0
 * @category constants
 */
export const PROTOCOL_VERSIONS: ReadonlyArray<string> = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]

const SESSION_HEADER = "mcp-session-id"

// JSON-RPC error codes (https://www.jsonrpc.org/specification#error_object).
const PARSE_ERROR = -32700
const INVALID_REQUEST = -32600
const INTERNAL_ERROR = -32603

// Hop-by-hop and framing headers: the gateway serialises the body itself.
const DROPPED_RESPONSE_HEADERS = new Set(["content-length", "transfer-encoding", "connection", "keep-alive"])

type JsonRpcId = AgentCore.JsonRpcId

interface Answer {
  readonly status: number
  readonly headers: { readonly [name: string]: string }
  /** JSON to serialise, raw text, or nothing. */
  readonly body: { readonly json: unknown } | { readonly text: string } | undefined
}

const jsonAnswer = (status: number, json: unknown, headers: { readonly [name: string]: string } = {}): Answer => ({
  status,
  headers,
  body: { json }
})

const rpcError = (status: number, id: JsonRpcId, code: number, message: string): Answer =>
  jsonAnswer(status, { jsonrpc: "2.0", id, error: { code, message } })

const rpcResult = (id: JsonRpcId, result: unknown, headers: { readonly [name: string]: string } = {}): Answer =>
  jsonAnswer(200, { jsonrpc: "2.0", id, result }, headers)

const toResponse = (answer: Answer): HttpServerResponse.HttpServerResponse => {
  let contentType: string | undefined
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(answer.headers)) {
    const lower = name.toLowerCase()
    if (lower === "content-type") contentType = value
    else if (!DROPPED_RESPONSE_HEADERS.has(lower)) headers[lower] = value
  }
  const options = { status: answer.status, headers }
  if (answer.body === undefined) return HttpServerResponse.empty(options)
  if ("text" in answer.body) {
    return HttpServerResponse.text(answer.body.text, { ...options, contentType: contentType ?? "application/json" })
  }
  return HttpServerResponse.text(JSON.stringify(answer.body.json) ?? "null", {
    ...options,
    contentType: contentType ?? "application/json"
  })
}

const parseJson = (text: string): Either.Either<unknown, string> => {
  try {
    return Either.right(JSON.parse(text))
  } catch (error) {
    return Either.left(error instanceof Error ? error.message : "not JSON")
  }
}

const idOf = (message: unknown): JsonRpcId => {
  const id = Json.own(message, "id")
  return typeof id === "string" || typeof id === "number" ? id : null
}

const decodeOutput = Schema.decodeUnknownEither(AgentCore.InterceptorOutput, {
  errors: "first",
  onExcessProperty: "ignore"
})

const decodeHttpOutput = Schema.decodeUnknownEither(AgentCore.HttpInterceptorOutput, {
  errors: "first",
  onExcessProperty: "ignore"
})

const toBase64 = (text: string): string => Buffer.from(text, "utf8").toString("base64")
const fromBase64 = (text: string): string => Buffer.from(text, "base64").toString("utf8")

// Not forwarded to an HTTP target: the connection's own headers, and the length of a body that changes.
const DROPPED_REQUEST_HEADERS = new Set([
  "host",
  "content-length",
  "connection",
  "keep-alive",
  "transfer-encoding",
  "accept-encoding",
  "expect",
  "upgrade"
])

/** The `data` of each SSE event, in order (multi-line data joined with newlines). */
const sseData = (text: string): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (const block of text.split(/\r?\n\r?\n/)) {
    const data = block.split(/\r?\n/).filter((line) => line.startsWith("data:")).map((line) =>
      line.slice(5).replace(/^ /, "")
    )
    if (data.length > 0) out.push(data.join("\n"))
  }
  return out
}

const decodeTargetResponse = Schema.decodeUnknownEither(
  Schema.Struct({
    statusCode: Schema.optional(Schema.Int.pipe(Schema.between(100, 599))),
    headers: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
    body: Schema.Unknown
  }),
  { errors: "first", onExcessProperty: "ignore" }
)

const formatIssue = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) return "invalid"
  return issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message
}

/** Merges header maps, names compared case-insensitively, the later map winning. */
const mergeHeaders = (
  ...maps: ReadonlyArray<{ readonly [name: string]: string }>
): Record<string, string> => {
  const out: Record<string, string> = {}
  const names = new Map<string, string>()
  for (const map of maps) {
    for (const [name, value] of Object.entries(map)) {
      const lower = name.toLowerCase()
      const previous = names.get(lower)
      if (previous !== undefined) delete out[previous]
      names.set(lower, name)
      out[name] = value
    }
  }
  return out
}

// A failure that ends the call with a JSON-RPC error answer (status, code, message).
class Failed extends Data.TaggedError("Failed")<{ readonly answer: Answer }> {}

const failed = (answer: Answer) => new Failed({ answer })

/**
 * Starts the gateway in the current scope; it stops when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<LocalGateway.Service, HttpServerError.ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const path = options.path ?? "/mcp"
    const passSetting = options.passRequestHeaders ?? true
    const passHeaders = typeof passSetting === "boolean" ? passSetting : passSetting.request
    const passResponseHeaders = typeof passSetting === "boolean" ? passSetting : passSetting.response
    const httpMode = "httpTarget" in options
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(30))
    const maxPayloadBytes = options.maxPayloadBytes ?? 6 * 1024 * 1024
    const tooLarge = rpcError(413, null, INVALID_REQUEST, `Request too large: at most ${maxPayloadBytes} bytes`)
    const interceptorMode = "interceptor" in options && !httpMode
    const points = new Set<InterceptionPoint>(
      "interceptor" in options ? (options.interceptionPoints ?? ["REQUEST", "RESPONSE"]) : ["REQUEST"]
    )
    const lambda: LambdaHandler = "interceptor" in options ? options.interceptor : options.handler
    const functionName = options.functionName ?? ("interceptor" in options ? "x402-interceptor" : "paid-agent")
    const contextFor = options.context ??
      (() => AgentCoreEvents.context({ functionName, awsRequestId: Crypto.randomUUID() }))
    const serverInfo = options.serverInfo ?? { name: "effect-x402-local-gateway", version: "0.1.0" }
    const invocations: Array<Invocation> = []

    // One invocation of the Lambda, in either event flavour, with the output decoded as that flavour
    // answers: a timeout is a 504, a failure a 502 that never carries the exception's text (as on
    // AWS: it may hold a URL with a key in it); the invocation log keeps the call for tests.
    const invokeAs = <Out>(decode: (output: unknown) => Either.Either<Out, ParseResult.ParseError>) =>
    (
      phase: InterceptionPoint,
      event: AgentCore.InterceptorInput | AgentCore.HttpInterceptorInput,
      id: JsonRpcId
    ): Effect.Effect<Out, Failed> => {
      const logged = event as AgentCore.InterceptorInput
      return Effect.tryPromise({
        try: async () => lambda(logged, contextFor({ phase })),
        catch: (error) => error
      }).pipe(
        Effect.timeoutFail({ duration: timeout, onTimeout: () => "timeout" as const }),
        Effect.tapBoth({
          onFailure: () =>
            Effect.sync(() => invocations.push({ _tag: "Lambda", phase, event: logged, output: undefined })),
          onSuccess: (output) => Effect.sync(() => invocations.push({ _tag: "Lambda", phase, event: logged, output }))
        }),
        Effect.mapError((error) =>
          error === "timeout"
            ? failed(rpcError(504, id, INTERNAL_ERROR, `The ${phase} Lambda did not answer in time`))
            : failed(rpcError(502, id, INTERNAL_ERROR, `The ${phase} Lambda failed`))
        ),
        Effect.flatMap((output) =>
          Either.match(decode(output), {
            onLeft: (error) =>
              Effect.fail(
                failed(rpcError(
                  502,
                  id,
                  INTERNAL_ERROR,
                  `The ${phase} Lambda answered an invalid InterceptorOutput: ${formatIssue(error)}`
                ))
              ),
            onRight: Effect.succeed
          })
        )
      )
    }
    const invokeLambda = invokeAs(decodeOutput)
    // The HTTP flavour: the same invocation, the `http` output shape.
    const invokeHttpLambda = invokeAs(decodeHttpOutput)

    interface HttpAnswer {
      readonly status: number
      readonly headers: { readonly [name: string]: string }
      readonly text: string
    }

    // The HTTP target, over real HTTP.
    const callHttpTarget = (
      url: string,
      request: { readonly headers: { readonly [name: string]: string }; readonly body: string },
      id: JsonRpcId
    ): Effect.Effect<HttpAnswer, Failed> => {
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(request.headers)) {
        if (!DROPPED_REQUEST_HEADERS.has(name.toLowerCase())) headers[name] = value
      }
      const recorded = (response: TargetResponse | undefined) =>
        Effect.sync(() =>
          invocations.push({
            _tag: "Target",
            request: {
              headers: request.headers,
              body: parseJson(request.body).pipe(Either.getOrElse(() => request.body))
            },
            response
          })
        )
      return Effect.tryPromise({
        try: async (signal) => {
          const response = await fetch(url, { method: "POST", headers, body: request.body, signal })
          const out: Record<string, string> = {}
          response.headers.forEach((value, name) => {
            out[name] = value
          })
          return { status: response.status, headers: out, text: await response.text() }
        },
        catch: () => "unreachable" as const
      }).pipe(
        Effect.timeoutFail({ duration: timeout, onTimeout: () => "timeout" as const }),
        Effect.tap((answer) => recorded({ statusCode: answer.status, headers: answer.headers, body: answer.text })),
        Effect.catchAll((error) =>
          Effect.zipRight(
            recorded(undefined),
            Effect.fail(failed(
              error === "timeout"
                ? rpcError(504, id, INTERNAL_ERROR, "The target did not answer in time")
                : rpcError(502, id, INTERNAL_ERROR, "The target could not be reached")
            ))
          )
        )
      )
    }

    const httpAnswerOf = (
      response: {
        readonly statusCode: number
        readonly headers?: { readonly [name: string]: string } | undefined
        readonly body: string | null
      },
      fallback: HttpAnswer | undefined
    ): Answer => {
      const text = response.body === null ? fallback?.text : fromBase64(response.body)
      return {
        status: response.statusCode,
        headers: response.headers ?? fallback?.headers ?? {},
        body: text === undefined || text.length === 0 ? undefined : { text }
      }
    }

    // One client request through an HTTP target: REQUEST, the target over HTTP, then RESPONSE once
    // (a plain answer) or once per JSON-RPC event with an id (an SSE answer).
    const dispatchHttp = (
      url: string,
      message: unknown,
      raw: string,
      headers: { readonly [name: string]: string }
    ): Effect.Effect<Answer, Failed> =>
      Effect.gen(function*() {
        const id = idOf(message)
        let forwarded: { readonly headers: { readonly [name: string]: string }; readonly body: string } = {
          headers,
          body: raw
        }
        if (points.has("REQUEST")) {
          const output = yield* invokeHttpLambda("REQUEST", {
            interceptorInputVersion: "1.0",
            http: {
              gatewayRequest: { path, httpMethod: "POST", ...(passHeaders ? { headers } : {}), body: toBase64(raw) }
            }
          }, id)
          const early = output.http.transformedGatewayResponse
          if (early !== undefined) {
            if (!points.has("RESPONSE")) return httpAnswerOf(early, undefined)
            // As on AWS: with both interceptors configured, the RESPONSE one still runs on an answer
            // the REQUEST one gave (here with that answer as the response).
            const answered = httpAnswerOf(early, undefined)
            const text = answered.body !== undefined && "text" in answered.body ? answered.body.text : ""
            const again = yield* invokeHttpLambda("RESPONSE", {
              interceptorInputVersion: "1.0",
              http: {
                gatewayRequest: null,
                gatewayResponse: {
                  statusCode: answered.status,
                  headers: answered.headers,
                  contentType: answered.headers["Content-Type"] ?? answered.headers["content-type"] ?? null,
                  body: toBase64(text)
                }
              }
            }, id)
            const final = again.http.transformedGatewayResponse
            if (final === undefined) return yield* noAnswer("RESPONSE", id)
            return httpAnswerOf(final, { status: answered.status, headers: answered.headers, text })
          }
          const transformed = output.http.transformedGatewayRequest
          if (transformed === undefined) return yield* noAnswer("REQUEST", id)
          forwarded = {
            headers: transformed.headers ?? headers,
            body: transformed.body === null ? raw : fromBase64(transformed.body)
          }
        }
        const target = yield* callHttpTarget(url, forwarded, id)
        if (!points.has("RESPONSE")) {
          return {
            status: target.status,
            headers: target.headers,
            body: target.text.length > 0 ? { text: target.text } : undefined
          }
        }
        const contentType = target.headers["content-type"] ?? null
        const responseEvent = (body: string, streaming: boolean): AgentCore.HttpInterceptorInput => ({
          interceptorInputVersion: "1.0",
          http: {
            // As on AWS: the RESPONSE event of an HTTP target carries no request.
            gatewayRequest: null,
            gatewayResponse: {
              statusCode: target.status,
              headers: target.headers,
              contentType,
              body: toBase64(body),
              ...(streaming ? { isStreamingResponse: true } : {})
            }
          }
        })
        if (contentType === null || !contentType.toLowerCase().includes("text/event-stream")) {
          const output = yield* invokeHttpLambda("RESPONSE", responseEvent(target.text, false), id)
          const response = output.http.transformedGatewayResponse
          if (response === undefined) return yield* noAnswer("RESPONSE", id)
          return httpAnswerOf(response, target)
        }
        // Streaming: one RESPONSE call per event with an id; only the first may change status and headers.
        let status = target.status
        let answerHeaders: { readonly [name: string]: string } = target.headers
        let first = true
        const events: Array<string> = []
        for (const data of sseData(target.text)) {
          const parsed = parseJson(data)
          const eventId = Either.isRight(parsed) ? Json.own(parsed.right, "id") : undefined
          if (eventId === undefined || eventId === null) {
            events.push(data)
            continue
          }
          const output = yield* invokeHttpLambda("RESPONSE", responseEvent(data, true), id)
          const response = output.http.transformedGatewayResponse
          if (response === undefined) return yield* noAnswer("RESPONSE", id)
          if (first) {
            status = response.statusCode
            answerHeaders = response.headers ?? target.headers
            first = false
          }
          events.push(response.body === null ? data : fromBase64(response.body))
        }
        return {
          status,
          headers: mergeHeaders(answerHeaders, { "content-type": "text/event-stream" }),
          body: { text: events.map((data) => `event: message\ndata: ${data}\n\n`).join("") }
        }
      })

    const callTarget = (request: TargetRequest, id: JsonRpcId): Effect.Effect<TargetResponse, Failed> => {
      if (!interceptorMode) return Effect.fail(failed(rpcError(502, id, INTERNAL_ERROR, "No target configured")))
      const target = options.target
      const recorded = (response: TargetResponse | undefined) =>
        Effect.sync(() => invocations.push({ _tag: "Target", request, response }))
      return Effect.tryPromise({ try: async () => target(request), catch: (error) => error }).pipe(
        Effect.timeoutFail({ duration: timeout, onTimeout: () => "timeout" as const }),
        Effect.flatMap((answer) =>
          Either.match(decodeTargetResponse(answer), {
            onLeft: (error) => Effect.fail(`an invalid answer: ${formatIssue(error)}`),
            onRight: (response): Effect.Effect<TargetResponse> => Effect.succeed(response)
          })
        ),
        Effect.tap(recorded),
        Effect.catchAll((error) =>
          error === "timeout"
            ? Effect.zipRight(
              recorded(undefined),
              Effect.fail(failed(rpcError(504, id, INTERNAL_ERROR, "The target did not answer in time")))
            )
            : Effect.as(
              recorded(undefined),
              // A failing target is an answer the RESPONSE phase gets to see, as on the gateway.
              {
                statusCode: 500,
                headers: { "Content-Type": "application/json" },
                body: {
                  jsonrpc: "2.0",
                  id,
                  error: {
                    code: INTERNAL_ERROR,
                    // Generic, as the gateway answers: a target's exception text stays with the target.
                    // (nor the value of an invalid answer, which may be the very output).
                    message: typeof error === "string" && error.startsWith("an invalid answer")
                      ? "The target answered an invalid response"
                      : "The target failed"
                  }
                }
              }
            )
        )
      )
    }

    const respondWith = (response: AgentCore.TransformedGatewayResponse, fallbackBody?: unknown): Answer => {
      const body = response.body === null || response.body === undefined ? fallbackBody : response.body
      return {
        status: response.statusCode,
        headers: response.headers ?? {},
        body: body === undefined || body === null
          ? undefined
          : typeof body === "string"
          ? { text: body }
          : { json: body }
      }
    }

    const noAnswer = (phase: InterceptionPoint, id: JsonRpcId) =>
      failed(rpcError(502, id, INTERNAL_ERROR, `The ${phase} Lambda answered neither a response nor a request`))

    // One JSON-RPC request through the Lambda(s).
    const dispatch = (
      message: unknown,
      raw: string,
      headers: { readonly [name: string]: string }
    ): Effect.Effect<Answer, Failed> =>
      Effect.gen(function*() {
        const id = idOf(message)
        const gatewayRequest = {
          path,
          httpMethod: "POST",
          ...(passHeaders ? { headers } : {}),
          body: message
        }
        const requestEvent = (): AgentCore.InterceptorInput => ({
          interceptorInputVersion: "1.0",
          mcp: { rawGatewayRequest: { body: raw }, gatewayRequest } as AgentCore.InterceptorInput["mcp"]
        })
        if (!interceptorMode) {
          const output = yield* invokeLambda("REQUEST", requestEvent(), id)
          const response = output.mcp.transformedGatewayResponse
          if (response === undefined) {
            return yield* failed(
              rpcError(502, id, INTERNAL_ERROR, "The Lambda forwarded the request, but this gateway has no target")
            )
          }
          return respondWith(response)
        }

        let forwarded: TargetRequest = { headers, body: message }
        if (points.has("REQUEST")) {
          const output = yield* invokeLambda("REQUEST", requestEvent(), id)
          // As on AWS: a response in the output is sent at once, even next to a request.
          if (output.mcp.transformedGatewayResponse !== undefined) {
            return respondWith(output.mcp.transformedGatewayResponse)
          }
          const transformed = output.mcp.transformedGatewayRequest
          if (transformed === undefined) return yield* noAnswer("REQUEST", id)
          forwarded = {
            headers: transformed.headers ?? headers,
            body: transformed.body === undefined || transformed.body === null ? message : transformed.body
          }
        }
        const target = yield* callTarget(forwarded, id)
        const targetBody = target.body
        if (!points.has("RESPONSE")) {
          return respondWith({ statusCode: target.statusCode ?? 200, headers: target.headers ?? {}, body: targetBody })
        }
        const output = yield* invokeLambda("RESPONSE", {
          interceptorInputVersion: "1.0",
          mcp: {
            rawGatewayRequest: { body: raw },
            gatewayRequest: {
              path,
              httpMethod: "POST",
              // The original headers, updated with those the REQUEST phase set (such as the verified
              // `x-nvm-agent-request-id`), so the RESPONSE phase can finish what the REQUEST phase began;
              // none at all when the RESPONSE interceptor is configured without them.
              ...(passResponseHeaders ? { headers: mergeHeaders(headers, forwarded.headers) } : {}),
              body: message
            },
            gatewayResponse: {
              statusCode: target.statusCode ?? 200,
              headers: target.headers ?? {},
              body: targetBody
            }
          } as AgentCore.InterceptorInput["mcp"]
        }, id)
        const response = output.mcp.transformedGatewayResponse
        if (response === undefined) return yield* noAnswer("RESPONSE", id)
        // AWS: a `null` body keeps the target's.
        return respondWith(response, targetBody)
      })

    const handle = (text: string | undefined, incoming: Headers.Headers): Effect.Effect<Answer> =>
      Effect.gen(function*() {
        if (text === undefined) return rpcError(400, null, PARSE_ERROR, "Parse error: the body could not be read")
        const parsed = parseJson(text)
        if (Either.isLeft(parsed)) return rpcError(400, null, PARSE_ERROR, `Parse error: ${parsed.left}`)
        const message = parsed.right
        if (Array.isArray(message)) {
          return rpcError(400, null, INVALID_REQUEST, "Invalid Request: JSON-RPC batches are not supported")
        }
        if (!Json.isRecord(message)) {
          return rpcError(400, null, INVALID_REQUEST, "Invalid Request: not a JSON-RPC message")
        }
        if (httpMode) {
          // An HTTP target answers everything itself (the handshake included): every request goes through.
          return yield* dispatchHttp(options.httpTarget, message, text, { ...incoming }).pipe(
            Effect.catchAll((failed) => Effect.succeed(failed.answer))
          )
        }
        const method = Json.own(message, "method")
        const hasId = Object.prototype.hasOwnProperty.call(message, "id")
        const id = idOf(message)
        if (method === undefined && (Json.own(message, "result") !== undefined || "error" in message)) {
          // A client's answer to a server request: this gateway sends none, so there is nothing to route.
          return { status: 202, headers: {}, body: undefined }
        }
        if (Json.own(message, "jsonrpc") !== "2.0" || typeof method !== "string" || method.length === 0) {
          return rpcError(400, id, INVALID_REQUEST, "Invalid Request: expected jsonrpc \"2.0\" and a method")
        }
        if (!hasId || method.startsWith("notifications/")) return { status: 202, headers: {}, body: undefined }
        if (method === "initialize") {
          const requested = Json.own(Json.own(message, "params"), "protocolVersion")
          const protocolVersion = typeof requested === "string" && PROTOCOL_VERSIONS.includes(requested)
            ? requested
            : PROTOCOL_VERSIONS[0]
          return rpcResult(id, {
            protocolVersion,
            capabilities: { tools: { listChanged: false } },
            serverInfo,
            ...(options.instructions !== undefined ? { instructions: options.instructions } : {})
          }, { [SESSION_HEADER]: incoming[SESSION_HEADER] ?? Crypto.randomUUID() })
        }
        if (method === "ping") return rpcResult(id, {})
        const headers: Record<string, string> = { ...incoming }
        return yield* dispatch(message, text, headers).pipe(
          Effect.catchAll((failed) => Effect.succeed(failed.answer))
        )
      }).pipe(
        Effect.catchAllCause((cause) =>
          Effect.as(
            Effect.logError("LocalGateway: internal failure", cause),
            rpcError(500, null, INTERNAL_ERROR, "Internal gateway error")
          )
        )
      )

    const post = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      // The declared length first, so an oversized body is refused without reading it.
      if (Number(request.headers["content-length"] ?? 0) > maxPayloadBytes) return toResponse(tooLarge)
      const text = yield* Effect.orElseSucceed(request.text, () => undefined)
      if (text !== undefined && Buffer.byteLength(text, "utf8") > maxPayloadBytes) return toResponse(tooLarge)
      return toResponse(yield* handle(text, request.headers))
    })

    const notAllowed = Effect.succeed(
      HttpServerResponse.unsafeJson(
        { jsonrpc: "2.0", id: null, error: { code: INVALID_REQUEST, message: "Method not allowed: use POST" } },
        { status: 405, headers: { allow: "POST" } }
      )
    )

    const router = HttpRouter.empty.pipe(
      HttpRouter.post(path as HttpRouter.PathInput, post),
      // No server-initiated stream and no session to end: the MCP client accepts a 405 for both.
      HttpRouter.get(path as HttpRouter.PathInput, notAllowed),
      HttpRouter.del(path as HttpRouter.PathInput, notAllowed),
      HttpRouter.all(
        "*",
        Effect.succeed(HttpServerResponse.unsafeJson({ error: "Not found", message: `Use POST ${path}` }, {
          status: 404
        }))
      )
    )

    const nodeServer = Http.createServer()
    const server = yield* NodeHttpServer.make(() => nodeServer, {
      host: options.host ?? "127.0.0.1",
      port: options.port ?? 0
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => nodeServer.closeAllConnections()))
    // The platform's server spans record request headers: the payment token must not be among them.
    const redacted = yield* FiberRef.get(Headers.currentRedactedNames)
    yield* server.serve(router).pipe(
      Effect.locally(Headers.currentRedactedNames, [...redacted, X402.PAYMENT_SIGNATURE_HEADER])
    )
    const address = server.address
    const origin = address._tag === "TcpAddress" ? `http://${address.hostname}:${address.port}` : "http://localhost"
    return LocalGateway.of({
      url: `${origin}${path}`,
      origin,
      mode: httpMode ? "http" : interceptorMode ? "interceptor" : "decorator",
      invocations
    })
  })

/**
 * The gateway as a scoped layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<LocalGateway, HttpServerError.ServeError> =>
  Layer.scoped(LocalGateway, make(options))

/**
 * Starts the gateway from a script (outside Effect). `close` stops it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = async (
  options: Options
): Promise<LocalGateway.Service & { readonly close: () => Promise<void> }> => startScoped(make(options))
