/**
 * The AWS Bedrock AgentCore Gateway interceptor wire: the input and output events, the reading of
 * a call (token, method, tool, JSON-RPC id) and the answers the gateway understands, including the
 * normalisation and enrichment of a handler's result.
 *
 * @since 0.1.0
 */
import * as Adapter from "@effect-x402/core/Adapter"
import * as Bounds from "@effect-x402/core/Bounds"
import type * as PaymentError from "@effect-x402/core/PaymentError"
import type * as Paywall from "@effect-x402/core/Paywall"
import * as X402 from "@effect-x402/core/X402"
import * as Either from "effect/Either"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Events from "./internal/events.js"
import * as Json from "./internal/json.js"
import { lazily } from "./internal/lazy.js"
import { readInput, readRequest } from "./internal/readEvent.js"
import { receiptHeader } from "./internal/receipt.js"

/**
 * Version of the interceptor output format.
 *
 * @since 0.1.0
 * @category constants
 */
export const OUTPUT_VERSION = "1.0"

/**
 * Header through which the interceptor hands the verified `agentRequestId` from its REQUEST phase
 * to its RESPONSE phase.
 *
 * @since 0.1.0
 * @category constants
 */
export const AGENT_REQUEST_ID_HEADER = "x-nvm-agent-request-id"

/**
 * Methods charged by default.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_BILLABLE_METHODS: ReadonlyArray<string> = ["tools/call"]

/**
 * The methods the interceptor forwards to its target unpaid by default: the MCP handshake, `ping`,
 * the listings and the notifications (`notifications/*` names the family). Methods that return
 * content (`resources/read`, `prompts/get`, `completion/complete`) are not among them: list them in
 * `freeMethods` or `billableMethods`. Anything else is answered `-32601` and never forwarded.
 *
 * @since 0.2.0
 * @category constants
 */
export const DEFAULT_FREE_METHODS: ReadonlyArray<string> = [
  "initialize",
  "ping",
  "tools/list",
  "resources/list",
  "resources/templates/list",
  "prompts/list",
  "logging/setLevel",
  "notifications/*"
]

/**
 * The options both gateway adapters (`requiresPayment`, `interceptor`) share: how a call is
 * advertised, where its token is, what is charged, and what happens when settlement fails.
 *
 * @since 0.1.0
 * @category models
 */
export interface GatewayOptions {
  /** Advertised network; by default the facilitator's (fiat provider or environment default). */
  readonly network?: string | undefined
  readonly scheme?: X402.Scheme | undefined
  readonly description?: string | undefined
  /** The header(s) carrying the token, tried in order, any case. Default `payment-signature`. */
  readonly tokenHeader?: string | ReadonlyArray<string> | undefined
  /** Methods that are charged, matched exactly (case-sensitive). Default `["tools/call"]`. */
  readonly billableMethods?: ReadonlyArray<string> | undefined
  /**
   * Methods that reach the handler (or the interceptor's target) without payment, matched exactly;
   * an entry ending in `/*` names a family by its prefix (`notifications/*`). A method that is
   * neither billable nor free is answered JSON-RPC `-32601` and runs nothing. A method in both
   * lists is billable. Default: `[]` for `requiresPayment` (it answers `initialize`, `ping`,
   * `tools/list` and notifications itself), `DEFAULT_FREE_METHODS` for the interceptor.
   *
   * @since 0.2.0
   */
  readonly freeMethods?: ReadonlyArray<string> | undefined
  /** When settlement fails: `withhold` the output (default) or `release` it. */
  readonly onSettleFailure?: Paywall.SettleFailurePolicy | undefined
}

/**
 * Headers searched for the caller's token by default.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_TOKEN_HEADERS: ReadonlyArray<string> = Events.DEFAULT_TOKEN_HEADERS

// ---------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------

// The event schemas are the reference and the fallback: the Lambda adapters read the usual event by
// hand (`internal/readEvent`) and ask these only when that reader refuses one. Each is built on
// first use (the export's `@__PURE__` call lets a bundle that never reads it build nothing at
// import, a cold start's cost); importing the export builds it, and the decoders share it.
const headers = /* @__PURE__ */ lazily(() =>
  Schema.declare(
    (u: unknown): u is { readonly [name: string]: unknown } => typeof u === "object" && u !== null && !Array.isArray(u),
    { identifier: "Headers", description: "an object of header names to values" }
  )
)
const gatewayRequest = /* @__PURE__ */ lazily(() =>
  Schema.Struct({
    httpMethod: Schema.optional(Schema.String),
    path: Schema.optional(Schema.String),
    headers: Schema.optional(Schema.NullOr(headers())),
    body: Schema.optional(Schema.Unknown)
  })
)
const gatewayResponse = /* @__PURE__ */ lazily(() =>
  Schema.Struct({
    statusCode: Schema.optional(Schema.Number),
    headers: Schema.optional(Schema.NullOr(headers())),
    body: Schema.optional(Schema.Unknown)
  })
)
const interceptorInput = /* @__PURE__ */ lazily(() =>
  Schema.Struct({
    interceptorInputVersion: Schema.optional(Schema.String),
    mcp: Schema.Struct({
      gatewayRequest: gatewayRequest(),
      gatewayResponse: Schema.optional(Schema.NullOr(gatewayResponse()))
    })
  })
)
const jsonRpcRequest = /* @__PURE__ */ lazily(() =>
  Schema.Struct({
    jsonrpc: Schema.optional(Schema.String),
    id: Schema.optional(JsonRpcId),
    method: Schema.String,
    params: Schema.optional(Schema.Unknown)
  })
)

/**
 * A header map as it arrives. Kept as the very object received (not copied by a Schema record,
 * which would honour a `__proto__` key): every reader here looks at own properties only.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Headers: Schema.Schema<{ readonly [name: string]: unknown }> = /* @__PURE__ */ headers()

/**
 * A JSON-RPC id: echoed with its original type.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JsonRpcId = /* @__PURE__ */ Schema.Union(Schema.String, Schema.Number, Schema.Null)

/**
 * @since 0.1.0
 * @category models
 */
export type JsonRpcId = typeof JsonRpcId.Type

/**
 * The client's request as the gateway passes it on (`headers` only with `passRequestHeaders: true`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const GatewayRequest = /* @__PURE__ */ gatewayRequest()

/**
 * @since 0.1.0
 * @category models
 */
export interface GatewayRequest extends Schema.Schema.Type<typeof GatewayRequest> {}

/**
 * The target's answer, present in the RESPONSE phase.
 *
 * @since 0.1.0
 * @category schemas
 */
export const GatewayResponse = /* @__PURE__ */ gatewayResponse()

/**
 * @since 0.1.0
 * @category models
 */
export interface GatewayResponse extends Schema.Schema.Type<typeof GatewayResponse> {}

/**
 * The event the gateway sends to an interceptor Lambda. Decoding is tolerant: unknown fields are
 * ignored.
 *
 * @since 0.1.0
 * @category schemas
 */
export const InterceptorInput = /* @__PURE__ */ interceptorInput()

/**
 * @since 0.1.0
 * @category models
 */
export interface InterceptorInput extends Schema.Schema.Type<typeof InterceptorInput> {}

/**
 * The JSON-RPC request in the gateway request's body.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JsonRpcRequest = /* @__PURE__ */ jsonRpcRequest()

/**
 * @since 0.1.0
 * @category models
 */
export interface JsonRpcRequest extends Schema.Schema.Type<typeof JsonRpcRequest> {}

/**
 * Headers of an answer: always strings.
 *
 * @since 0.1.0
 * @category models
 */
export type OutputHeaders = { readonly [name: string]: string }

/**
 * An answer the gateway sends to the client.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TransformedGatewayResponse = /* @__PURE__ */ Schema.Struct({
  statusCode: Schema.Number,
  headers: /* @__PURE__ */ Schema.optional(/* @__PURE__ */ Schema.Record({ key: Schema.String, value: Schema.String })),
  body: Schema.Unknown
})

/**
 * @since 0.1.0
 * @category models
 */
export interface TransformedGatewayResponse extends Schema.Schema.Type<typeof TransformedGatewayResponse> {}

/**
 * A request the gateway forwards to the target.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TransformedGatewayRequest = /* @__PURE__ */ Schema.Struct({
  headers: /* @__PURE__ */ Schema.optional(/* @__PURE__ */ Schema.Record({ key: Schema.String, value: Schema.String })),
  body: Schema.Unknown
})

/**
 * @since 0.1.0
 * @category models
 */
export interface TransformedGatewayRequest extends Schema.Schema.Type<typeof TransformedGatewayRequest> {}

/**
 * What an interceptor Lambda answers: a response to send (the gateway answers at once), or a
 * request to forward to the target.
 *
 * @since 0.1.0
 * @category schemas
 */
export const InterceptorOutput = /* @__PURE__ */ Schema.Struct({
  interceptorOutputVersion: /* @__PURE__ */ Schema.Literal(OUTPUT_VERSION),
  mcp: /* @__PURE__ */ Schema.Struct({
    transformedGatewayResponse: /* @__PURE__ */ Schema.optional(TransformedGatewayResponse),
    transformedGatewayRequest: /* @__PURE__ */ Schema.optional(TransformedGatewayRequest)
  })
})

/**
 * @since 0.1.0
 * @category models
 */
export interface InterceptorOutput extends Schema.Schema.Type<typeof InterceptorOutput> {}

// ---------------------------------------------------------------------------
// HTTP targets (AgentCore Runtime, passthrough): the `http` flavour of the events
// ---------------------------------------------------------------------------

/**
 * The client's request to an HTTP target as the gateway passes it on: the body is base64 text
 * (`headers` only with `passRequestHeaders: true`).
 *
 * @since 0.3.0
 * @category schemas
 */
export const HttpGatewayRequest = /* @__PURE__ */ Schema.Struct({
  httpMethod: /* @__PURE__ */ Schema.optional(Schema.String),
  path: /* @__PURE__ */ Schema.optional(Schema.String),
  headers: /* @__PURE__ */ Schema.optional(/* @__PURE__ */ Schema.NullOr(Headers)),
  body: /* @__PURE__ */ Schema.optional(/* @__PURE__ */ Schema.NullOr(Schema.String))
})

/**
 * @since 0.3.0
 * @category models
 */
export interface HttpGatewayRequest extends Schema.Schema.Type<typeof HttpGatewayRequest> {}

/**
 * An HTTP target's answer in the RESPONSE phase: base64 body (`null` when the gateway's
 * `payloadFilter` excludes it); with a streaming target, one JSON-RPC event per RESPONSE call,
 * flagged `isStreamingResponse`.
 *
 * @since 0.3.0
 * @category schemas
 */
export const HttpGatewayResponse = /* @__PURE__ */ Schema.Struct({
  statusCode: /* @__PURE__ */ Schema.optional(Schema.Number),
  headers: /* @__PURE__ */ Schema.optional(/* @__PURE__ */ Schema.NullOr(Headers)),
  contentType: /* @__PURE__ */ Schema.optional(/* @__PURE__ */ Schema.NullOr(Schema.String)),
  body: /* @__PURE__ */ Schema.optional(/* @__PURE__ */ Schema.NullOr(Schema.String)),
  isStreamingResponse: /* @__PURE__ */ Schema.optional(Schema.Boolean)
})

/**
 * @since 0.3.0
 * @category models
 */
export interface HttpGatewayResponse extends Schema.Schema.Type<typeof HttpGatewayResponse> {}

/**
 * The event the gateway sends for an HTTP target. In the RESPONSE phase `gatewayRequest` is
 * `null`: the interceptor finds the call through its ledger (docs/protocol.md, "HTTP targets").
 *
 * @since 0.3.0
 * @category schemas
 */
export const HttpInterceptorInput = /* @__PURE__ */ Schema.Struct({
  interceptorInputVersion: /* @__PURE__ */ Schema.optional(Schema.String),
  http: /* @__PURE__ */ Schema.Struct({
    gatewayRequest: /* @__PURE__ */ Schema.optional(/* @__PURE__ */ Schema.NullOr(HttpGatewayRequest)),
    gatewayResponse: /* @__PURE__ */ Schema.optional(/* @__PURE__ */ Schema.NullOr(HttpGatewayResponse))
  })
})

/**
 * @since 0.3.0
 * @category models
 */
export interface HttpInterceptorInput extends Schema.Schema.Type<typeof HttpInterceptorInput> {}

/**
 * What an interceptor answers for an HTTP target: bodies are base64 text; a `null` response body
 * keeps the target's.
 *
 * @since 0.3.0
 * @category schemas
 */
export const HttpInterceptorOutput = /* @__PURE__ */ Schema.Struct({
  interceptorOutputVersion: /* @__PURE__ */ Schema.Literal(OUTPUT_VERSION),
  http: /* @__PURE__ */ Schema.Struct({
    transformedGatewayResponse: /* @__PURE__ */ Schema.optional(/* @__PURE__ */ Schema.Struct({
      statusCode: Schema.Number,
      headers: /* @__PURE__ */ Schema.optional(
        /* @__PURE__ */ Schema.Record({ key: Schema.String, value: Schema.String })
      ),
      body: /* @__PURE__ */ Schema.NullOr(Schema.String)
    })),
    transformedGatewayRequest: /* @__PURE__ */ Schema.optional(/* @__PURE__ */ Schema.Struct({
      headers: /* @__PURE__ */ Schema.optional(
        /* @__PURE__ */ Schema.Record({ key: Schema.String, value: Schema.String })
      ),
      body: /* @__PURE__ */ Schema.NullOr(Schema.String)
    }))
  })
})

/**
 * @since 0.3.0
 * @category models
 */
export interface HttpInterceptorOutput extends Schema.Schema.Type<typeof HttpInterceptorOutput> {}

/**
 * Whether an event is of the HTTP flavour (an `http` key, no `mcp` key).
 *
 * @since 0.3.0
 * @category decoding
 */
export const isHttpEvent = (event: unknown): boolean =>
  typeof event === "object" && event !== null && Object.prototype.hasOwnProperty.call(event, "http") &&
  !Object.prototype.hasOwnProperty.call(event, "mcp")

const base64Of = (body: unknown): string | null =>
  body === undefined || body === null
    ? null
    : Buffer.from(typeof body === "string" ? body : JSON.stringify(body) ?? "null", "utf8").toString("base64")

/**
 * An output in the HTTP flavour: the same answer or forwarded request, its body as base64 text.
 *
 * @since 0.3.0
 * @category answers
 */
export const toHttpOutput = (output: InterceptorOutput): HttpInterceptorOutput => {
  const response = output.mcp.transformedGatewayResponse
  const request = output.mcp.transformedGatewayRequest
  return {
    interceptorOutputVersion: OUTPUT_VERSION,
    http: {
      ...(response !== undefined
        ? {
          transformedGatewayResponse: {
            statusCode: response.statusCode,
            ...(response.headers !== undefined ? { headers: response.headers } : {}),
            body: base64Of(response.body)
          }
        }
        : {}),
      ...(request !== undefined
        ? {
          transformedGatewayRequest: {
            ...(request.headers !== undefined ? { headers: request.headers } : {}),
            body: base64Of(request.body)
          }
        }
        : {})
    }
  }
}

// ---------------------------------------------------------------------------
// Own-property readers
// ---------------------------------------------------------------------------

/**
 * Normalises the `tokenHeader` option: lower-cased names, in order. Throws a `RangeError` on an
 * empty list, at configuration time.
 *
 * @since 0.1.0
 * @category tokens
 */
export const tokenHeaders = Events.tokenHeaders

/**
 * The caller's token: the configured headers are tried in order (case-insensitively) and the first
 * non-empty value wins. A `Bearer ` prefix is dropped, so `Authorization` can carry the token.
 *
 * @since 0.1.0
 * @category tokens
 */
export const tokenOf = Events.tokenOf

/**
 * The tool named by a `tools/call`: the part after the last `___` (AgentCore prefixes the target).
 *
 * @since 0.1.0
 * @category readers
 */
export const toolNameOf = Events.toolNameOf

/**
 * The full tool name of a `tools/call`, with its target prefix.
 *
 * @since 0.1.0
 * @category readers
 */
export const fullToolNameOf = Events.fullToolNameOf

/**
 * The tool call an event carries, for handlers: the tool's full and short names and its arguments.
 * `undefined` when the event is not a `tools/call`.
 *
 * @example
 * ```ts
 * const call = AgentCore.toolCallOf(event)
 * const patientId = call?.arguments.patient_id
 * ```
 *
 * @since 0.1.0
 * @category readers
 */
export const toolCallOf = Events.toolCallOf

// ---------------------------------------------------------------------------
// Decoding a call
// ---------------------------------------------------------------------------

/**
 * An event that is not a gateway interceptor event carrying one JSON-RPC request.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidEvent extends Schema.TaggedError<InvalidEvent>("@effect-x402/lambda/InvalidEvent")(
  "InvalidEvent",
  {
    reason: Schema.Literal("NotAnEvent", "NotJsonRpc", "Batch", "TooDeep"),
    detail: Schema.String,
    id: JsonRpcId
  }
) {
  override get message(): string {
    switch (this.reason) {
      case "NotAnEvent":
        return `Not an AgentCore gateway event: ${this.detail}`
      case "NotJsonRpc":
        return `Invalid JSON-RPC request: ${this.detail}`
      case "Batch":
        return "JSON-RPC batch requests are not supported"
      case "TooDeep":
        return `Invalid JSON-RPC request: nested deeper than ${Bounds.MAX_JSON_DEPTH} levels`
    }
  }
}

/**
 * A gateway event, read.
 *
 * @since 0.1.0
 * @category models
 */
export interface Call {
  /** The event exactly as received. */
  readonly event: InterceptorInput
  /** `RESPONSE` when the event carries a non-empty `gatewayResponse`. */
  readonly phase: "REQUEST" | "RESPONSE"
  readonly headers: { readonly [name: string]: unknown }
  /** The request body as received, for forwarding untouched. */
  readonly rawBody: unknown
  readonly request: JsonRpcRequest
  readonly id: JsonRpcId
  readonly method: string
  /** The tool of a `tools/call`, without its target prefix. */
  readonly toolName: string | undefined
  readonly response: GatewayResponse | undefined
}

// Compiled on first use, not at import: module init is part of every cold start.
const inputDecoder = lazily(() =>
  Schema.decodeUnknownEither(interceptorInput(), { errors: "first", onExcessProperty: "ignore" })
)
const requestDecoder = lazily(() =>
  Schema.decodeUnknownEither(jsonRpcRequest(), { errors: "first", onExcessProperty: "ignore" })
)
// The usual shape first, without the Schema (`internal/readEvent`: the same answer where it answers).
const decodeInput = (event: unknown): Either.Either<InterceptorInput, ParseResult.ParseError> => {
  const read = readInput(event)
  return read !== undefined ? Either.right(read as unknown as InterceptorInput) : inputDecoder()(event)
}
const decodeRequest = (body: unknown): Either.Either<JsonRpcRequest, ParseResult.ParseError> => {
  const read = readRequest(body)
  return read !== undefined ? Either.right(read as unknown as JsonRpcRequest) : requestDecoder()(body)
}

const idOf = (body: unknown): JsonRpcId => {
  const id = Json.own(body, "id")
  return typeof id === "string" || typeof id === "number" ? id : null
}

/**
 * Reads a gateway event. Anything that is not one event carrying one JSON-RPC request with a
 * `method` is an `InvalidEvent`: a batch or a method-less body could otherwise slip past the
 * billable-method check unpaid.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeCall = (event: unknown): Either.Either<Call, InvalidEvent> => {
  const input = decodeInput(event)
  if (Either.isLeft(input)) {
    return Either.left(new InvalidEvent({ reason: "NotAnEvent", detail: Json.formatError(input.left), id: null }))
  }
  const gatewayRequest = input.right.mcp.gatewayRequest
  const body = Events.parseBody(gatewayRequest.body)
  if (Array.isArray(body)) return Either.left(new InvalidEvent({ reason: "Batch", detail: "batch", id: null }))
  // Refused before anything reads it further: such a body is verified and then cannot be serialised.
  if (Bounds.jsonDepthExceeds(body)) {
    return Either.left(new InvalidEvent({ reason: "TooDeep", detail: "too deep", id: idOf(body) }))
  }
  const request = decodeRequest(body)
  if (Either.isLeft(request)) {
    return Either.left(
      new InvalidEvent({ reason: "NotJsonRpc", detail: Json.formatError(request.left), id: idOf(body) })
    )
  }
  const response = input.right.mcp.gatewayResponse ?? undefined
  const method = request.right.method
  return Either.right({
    event: event as InterceptorInput,
    phase: response !== undefined && Object.keys(response).length > 0 ? "RESPONSE" : "REQUEST",
    headers: gatewayRequest.headers ?? {},
    rawBody: gatewayRequest.body,
    request: request.right,
    id: request.right.id ?? null,
    method,
    toolName: toolNameOf(method, request.right.params),
    response
  })
}

// ---------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------

/**
 * An answer before it is wrapped into an `InterceptorOutput`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Answer {
  readonly statusCode: number
  readonly headers: OutputHeaders
  readonly body: unknown
}

const JSON_HEADERS: OutputHeaders = { "Content-Type": "application/json" }

// What an HTTP/1.1 header can carry (RFC 9110 tokens and field values, as Node checks them). A CR, LF
// or NUL would inject a header downstream, or make the gateway refuse an answer already charged.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

/**
 * Copies headers into string-valued own properties, dropping anything that is not a header
 * (`__proto__`, objects, a name or value HTTP cannot carry such as one with CR or LF) and the names
 * in `without` (any case).
 *
 * @since 0.1.0
 * @category answers
 */
export const copyHeaders = (headers: unknown, without: ReadonlyArray<string> = []): Record<string, string> => {
  const out: Record<string, string> = {}
  if (!Json.isRecord(headers)) return out
  // A handful of names at most: a lowercased array, not a Set, on this per-answer path.
  const dropped = without.length === 0 ? undefined : without.map((name) => name.toLowerCase())
  for (const key of Object.keys(headers)) {
    if (
      key === "__proto__" || (dropped !== undefined && dropped.includes(key.toLowerCase())) || !HEADER_NAME.test(key)
    ) continue
    const value = headers[key]
    const text = typeof value === "string"
      ? value
      : typeof value === "number" || typeof value === "boolean"
      ? String(value)
      : undefined
    if (text !== undefined && HEADER_VALUE.test(text)) out[key] = text
  }
  return out
}

/**
 * Sets a header, replacing any spelling of the same name.
 *
 * @since 0.1.0
 * @category answers
 */
export const setHeader = (headers: OutputHeaders, name: string, value: string): OutputHeaders => {
  // The library's own headers of an MCP answer need no checking: the one copy every paid answer makes.
  if (headers === JSON_HEADERS && HEADER_NAME.test(name) && name.toLowerCase() !== "content-type") {
    return { "Content-Type": JSON_HEADERS["Content-Type"], [name]: value }
  }
  const out = copyHeaders(headers, [name])
  // Assigning `__proto__` would set the prototype; only a defined property is the same header.
  if (name === "__proto__") return { ...out, [name]: value }
  out[name] = value
  return out
}

/**
 * Wraps an answer into the output that makes the gateway respond at once.
 *
 * @since 0.1.0
 * @category answers
 */
export const respond = (answer: Answer): InterceptorOutput => ({
  interceptorOutputVersion: OUTPUT_VERSION,
  mcp: {
    transformedGatewayResponse: { statusCode: answer.statusCode, headers: answer.headers, body: answer.body }
  }
})

/**
 * The output that forwards a request to the target.
 *
 * @since 0.1.0
 * @category answers
 */
export const forward = (request: { readonly headers?: OutputHeaders | undefined; readonly body: unknown }) =>
  ({
    interceptorOutputVersion: OUTPUT_VERSION,
    mcp: {
      transformedGatewayRequest: request.headers !== undefined
        ? { headers: request.headers, body: request.body }
        : { body: request.body }
    }
  }) satisfies InterceptorOutput as InterceptorOutput

/**
 * A JSON-RPC result answer (status 200).
 *
 * @since 0.1.0
 * @category answers
 */
export const resultAnswer = (id: JsonRpcId, result: unknown, headers: OutputHeaders = JSON_HEADERS): Answer => ({
  statusCode: 200,
  headers,
  body: { jsonrpc: "2.0", id, result }
})

/**
 * An MCP error result (status 200, `isError: true`) whose text is the JSON of `error`.
 *
 * @since 0.1.0
 * @category answers
 */
export const errorAnswer = (
  id: JsonRpcId,
  error: {
    readonly error: string
    readonly code: number
    readonly message?: string | undefined
    /** The correlation id the caller quotes to the operator; the log line with the detail has it. */
    readonly requestId?: string | undefined
  },
  options: { readonly headers?: OutputHeaders; readonly meta?: { readonly [key: string]: unknown } } = {}
): Answer =>
  resultAnswer(id, {
    isError: true,
    content: [{
      type: "text",
      text: JSON.stringify({
        error: error.error,
        code: error.code,
        ...(error.message !== undefined ? { message: error.message } : {}),
        ...(error.requestId !== undefined ? { requestId: error.requestId } : {})
      })
    }],
    ...(options.meta !== undefined ? { _meta: options.meta } : {})
  }, options.headers ?? JSON_HEADERS)

/**
 * The payment-required answer: status 200 (AgentCore convention), an `isError` result with code
 * 402, and the PaymentRequired in the `payment-required` header.
 *
 * @since 0.1.0
 * @category answers
 */
export const paymentRequiredAnswer = (
  id: JsonRpcId,
  paymentRequired: X402.PaymentRequired,
  message: string
): Answer =>
  errorAnswer(id, { error: "Payment required", code: 402, message }, {
    headers: setHeader(JSON_HEADERS, X402.PAYMENT_REQUIRED_HEADER, X402.PaymentRequiredHeader.encode(paymentRequired)),
    meta: { x402: true }
  })

/**
 * The answer to an event that could not be read: status 400 with a JSON-RPC error.
 *
 * @since 0.1.0
 * @category answers
 */
export const invalidEventAnswer = (error: InvalidEvent): Answer => ({
  statusCode: 400,
  headers: JSON_HEADERS,
  body: {
    jsonrpc: "2.0",
    id: error.id,
    error: { code: -32600, message: error.message }
  }
})

/**
 * The answer when the interceptor itself failed, without a correlation id.
 *
 * @deprecated since 0.2.0: the adapters answer `internalErrorAnswerFor(requestId)`, which gives the
 * caller the id to quote.
 * @since 0.1.0
 * @category answers
 */
export const internalErrorAnswer: Answer = {
  statusCode: 500,
  headers: JSON_HEADERS,
  body: { error: "Internal interceptor error" }
}

/**
 * The answer when the adapter itself failed: status 500, a generic message and the correlation id
 * (the Lambda request id) that the log line with the detail carries. Nothing internal is in it.
 *
 * @since 0.2.0
 * @category answers
 */
export const internalErrorAnswerFor = (requestId: string): Answer => ({
  statusCode: 500,
  headers: JSON_HEADERS,
  body: { error: "Internal interceptor error", requestId }
})

/**
 * JSON-RPC error codes the adapters answer with.
 *
 * @since 0.2.0
 * @category constants
 */
export const JsonRpcErrorCode = {
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603
} as const

/**
 * A JSON-RPC error answer (status 200, as an MCP server answers a request it refuses).
 *
 * @since 0.2.0
 * @category answers
 */
export const rpcErrorAnswer = (id: JsonRpcId, code: number, message: string): Answer => ({
  statusCode: 200,
  headers: JSON_HEADERS,
  body: { jsonrpc: "2.0", id, error: { code, message } }
})

/**
 * The answer to a method that is neither billable nor declared free: JSON-RPC `-32601`. The method
 * is not echoed (it is the caller's text).
 *
 * @since 0.2.0
 * @category answers
 */
export const methodNotFoundAnswer = (id: JsonRpcId): Answer =>
  rpcErrorAnswer(id, JsonRpcErrorCode.MethodNotFound, "Method not found")

/**
 * The answer to a `tools/call` of a tool that is not declared: JSON-RPC `-32602`, nothing charged.
 *
 * @since 0.2.0
 * @category answers
 */
export const unknownToolAnswer = (id: JsonRpcId, name: string | undefined): Answer =>
  rpcErrorAnswer(
    id,
    JsonRpcErrorCode.InvalidParams,
    name === undefined
      ? "Invalid params: tools/call needs a tool name"
      : `Unknown tool: ${JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name)}`
  )

/**
 * The answer to a notification: accepted (202), no body, nothing run.
 *
 * @since 0.2.0
 * @category answers
 */
export const acceptedAnswer: Answer = { statusCode: 202, headers: {}, body: null }

const SERVER_ERROR_MESSAGE = "The server could not price this call; nothing was charged"

// A facilitator's `errorReason` is an x402 code (`insufficient_funds`): shown to the caller when it
// looks like one, never free text.
const REASON_CODE = /^[a-z][a-z0-9_]{0,63}$/

/**
 * A settlement as the caller may see it: an `errorReason` that is not an x402 reason code (free
 * text, which may carry the facilitator's internal detail) reads `unexpected_settle_error`.
 *
 * @since 0.2.0
 * @category answers
 */
export const safeSettlement = (settlement: X402.SettleResponse): X402.SettleResponse =>
  settlement.errorReason === undefined || REASON_CODE.test(settlement.errorReason)
    ? settlement
    : { ...settlement, errorReason: "unexpected_settle_error" }

/**
 * What the caller reads about a failed settlement: the reason in fixed words, with the
 * facilitator's reason code when it is one; never the facilitator's or the transport's free text.
 *
 * @since 0.2.0
 * @category answers
 */
export const settleFailureMessage = (failure: PaymentError.SettleFailed): string => {
  switch (failure.reason) {
    case "Rejected": {
      const reason = failure.settlement?.errorReason
      return reason !== undefined && REASON_CODE.test(reason)
        ? `Settlement rejected: ${reason}; the output was withheld`
        : "Settlement rejected by the payment facilitator; the output was withheld"
    }
    case "Indeterminate":
      return "Settlement outcome unknown; the output was withheld"
    case "Unavailable":
      return "Settlement not attempted: the payment facilitator could not be reached; nothing was charged"
    case "InvalidAmount":
      return SERVER_ERROR_MESSAGE
  }
}

/**
 * The answer to a payment failure, per docs/protocol.md §3 and §6:
 * - no token, or a token the facilitator refused: the payment-required answer;
 * - facilitator unavailable: an error result with code 502, nothing charged;
 * - an invalid credits amount: an error result with code 500;
 * - a failed settlement (output withheld): an error result with a `payment-response` that says
 *   `success: false`.
 *
 * @since 0.1.0
 * @category answers
 */
export const paymentFailureAnswer = (
  id: JsonRpcId,
  failure: PaymentError.PaymentFailure,
  messages: {
    readonly invalid?: (reason: string) => string
    /** The correlation id put in server-side failures (codes 500 and 502). */
    readonly requestId?: string | undefined
  } = {}
): Answer => {
  const requestId = messages.requestId
  switch (failure._tag) {
    case "PaymentRequired":
      return paymentRequiredAnswer(id, failure.paymentRequired, failure.message)
    case "VerifyFailed":
      switch (failure.reason) {
        case "Invalid": {
          const reason = failure.verification?.invalidReason ?? "payment not valid"
          return paymentRequiredAnswer(id, failure.paymentRequired, messages.invalid?.(reason) ?? failure.message)
        }
        case "Unavailable":
          return errorAnswer(id, {
            error: "Payment verification unavailable",
            code: 502,
            message: "The payment facilitator could not be reached; nothing was charged",
            requestId
          })
        case "InvalidAmount":
          // A bug in the server's credits policy: its detail is for the log, not the caller.
          return errorAnswer(id, {
            error: "Internal server error",
            code: 500,
            message: SERVER_ERROR_MESSAGE,
            requestId
          })
      }
    case "SettleFailed": {
      // The facilitator's own answer, else one whose reason names the failure (HttpPaywall's mapping,
      // shared by every adapter), made safe to show either way.
      const settlement = safeSettlement(Adapter.failedSettlement(failure))
      const code = failure.reason === "Rejected" ? 402 : failure.reason === "InvalidAmount" ? 500 : 502
      // Generic per reason: the failure's own message may carry the facilitator's detail text.
      const message = settleFailureMessage(failure)
      return errorAnswer(id, {
        error: "Payment settlement failed",
        code,
        message,
        ...(code !== 402 ? { requestId } : {})
      }, {
        headers: setHeader(
          JSON_HEADERS,
          X402.PAYMENT_RESPONSE_HEADER,
          receiptHeader(settlement)
        ),
        meta: { x402: X402.metaOf(settlement) }
      })
    }
  }
}

// ---------------------------------------------------------------------------
// Handler results
// ---------------------------------------------------------------------------

/**
 * Turns what a handler returned into an answer. Detected in this order (docs/protocol.md §4):
 * 1. a complete `InterceptorOutput` (`interceptorOutputVersion`): its `transformedGatewayResponse`
 *    (`statusCode` 200 when absent, else an integer from 100 to 599);
 * 2. a full JSON-RPC response (`jsonrpc`): wrapped, status 200;
 * 3. any other object: a bare MCP result, wrapped with the request's id.
 *
 * Anything else (nothing, a string, an array, an output without a response, a body that cannot be
 * serialised as JSON) is not an answer: the `Left` says why.
 *
 * @since 0.1.0
 * @category handler results
 */
export const normalize = (value: unknown, id: JsonRpcId): Either.Either<Answer, string> =>
  Either.flatMap(answerOf(value, id), (answer) => {
    // The Lambda runtime serialises the answer after we settle: one that cannot be serialised (a
    // BigInt, a cycle, a throwing toJSON) would be charged and never delivered.
    try {
      if (!Json.surelySerializable(answer.body)) JSON.stringify(answer.body)
      return Either.right(answer)
    } catch (error) {
      return Either.left(
        `the handler returned a result that is not JSON (${error instanceof Error ? error.name : "error"})`
      )
    }
  })

const answerOf = (value: unknown, id: JsonRpcId): Either.Either<Answer, string> => {
  if (!Json.isRecord(value)) {
    return Either.left(
      `the handler returned ${
        value === null ? "null" : Array.isArray(value) ? "an array" : typeof value
      }, not an MCP result`
    )
  }
  if (Json.own(value, "interceptorOutputVersion") !== undefined) {
    const response = Json.own(Json.own(value, "mcp"), "transformedGatewayResponse")
    if (!Json.isRecord(response)) {
      return Either.left("the handler's InterceptorOutput has no transformedGatewayResponse")
    }
    const statusCode = Json.own(response, "statusCode")
    // Absent means 200; anything else must be a real status, or a "200" string would be charged.
    if (
      statusCode !== undefined &&
      (typeof statusCode !== "number" || !Number.isInteger(statusCode) || statusCode < 100 || statusCode > 599)
    ) {
      return Either.left("the handler's InterceptorOutput has an invalid statusCode")
    }
    return Either.right({
      statusCode: statusCode ?? 200,
      headers: copyHeaders(Json.own(response, "headers")),
      body: Events.parseBody(Json.own(response, "body"))
    })
  }
  if (Json.own(value, "jsonrpc") !== undefined) {
    return Either.right({ statusCode: 200, headers: JSON_HEADERS, body: value })
  }
  return Either.right(resultAnswer(id, value))
}

/**
 * The JSON-RPC messages an answer body carries: an object as is; a JSON text (unwrapped when it is
 * double-encoded); the `data` of each SSE event of a `text/event-stream` body. A body none of these
 * describe (plain text) carries no message.
 *
 * @since 0.2.0
 * @category handler results
 */
export const messagesOf = Events.messagesOf

/**
 * The JSON-RPC response an answer body carries, read as `messagesOf` does: the first message with a
 * `result` or an `error`, else the body itself when it is an object.
 *
 * @since 0.2.0
 * @category handler results
 */
export const responseOf = Events.responseOf

/**
 * Whether an answer may be charged. It fails closed: everything that is not an explicit error
 * result is chargeable, so no answer is released unsettled for being unrecognised. Explicit errors
 * are a status outside 2xx, a JSON-RPC `error` (not `null`), or an MCP result with `isError: true`,
 * in a plain, double-encoded or SSE-framed body. A string or array `result`, `"error": null` beside
 * a result, or a plain-text body are charged like a success.
 *
 * @since 0.1.0
 * @category handler results
 */
export const isChargeable = Events.isChargeable

/**
 * Where an answer may ask for a different settle amount (see `Credits.findCharge`). Response headers
 * count only for the interceptor. A double-encoded or SSE-framed body is read like a plain one.
 *
 * @since 0.1.0
 * @category handler results
 */
export const chargeSource = Events.chargeSource

/**
 * Adds a settlement to an answer: the `payment-response` receipt header, and `_meta.x402` merged
 * into the result's existing `_meta` (own properties only; `creditsToCharge` is kept).
 *
 * @since 0.1.0
 * @category handler results
 */
export const enrich = (answer: Answer, received: X402.SettleResponse): Answer => {
  const settlement = safeSettlement(received)
  const headers = setHeader(
    answer.headers,
    X402.PAYMENT_RESPONSE_HEADER,
    receiptHeader(settlement)
  )
  const body = Events.parseBody(answer.body)
  const result = Json.own(body, "result")
  if (!Json.isRecord(body) || !Json.isRecord(result)) return { ...answer, headers }
  const meta = Json.own(result, "_meta")
  const x402 = X402.metaOf(settlement)
  return {
    ...answer,
    headers,
    body: { ...body, result: { ...result, _meta: Json.isRecord(meta) ? { ...meta, x402 } : { x402 } } }
  }
}
