/**
 * Reading the HTTP flavour of the gateway's interceptor events (HTTP targets: AgentCore Runtime,
 * passthrough). A REQUEST event is turned into the `Call` the MCP flavour reads (its base64 body
 * decoded), so both flavours price a call the same way; a RESPONSE event carries no request
 * (`gatewayRequest: null`), only the target's answer (docs/protocol.md, "HTTP targets").
 *
 * Also `httpHandler`'s reading of an API Gateway v2 / Function URL event (`decodeV2Event`).
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as AgentCore from "../AgentCore.js"
import * as Json from "./json.js"

/** An HTTP-flavour event, read. */
export type HttpEvent =
  | { readonly _tag: "Request"; readonly call: AgentCore.Call }
  | {
    readonly _tag: "Response"
    readonly statusCode: number
    readonly headers: { readonly [name: string]: unknown }
    /** The decoded body text; `null` when the gateway left the body out (`payloadFilter`). */
    readonly body: string | null
    readonly streaming: boolean
  }

const decodeInput = Schema.decodeUnknownEither(AgentCore.HttpInterceptorInput, {
  errors: "first",
  onExcessProperty: "ignore"
})

// Strict base64 (standard alphabet, padded or not): anything else is not a body this reads.
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** Base64 text to UTF-8 text; `undefined` when it is not base64. */
export const fromBase64 = (text: string): string | undefined =>
  BASE64.test(text) ? Buffer.from(text, "base64").toString("utf8") : undefined

const invalid = (detail: string) => Either.left(new AgentCore.InvalidEvent({ reason: "NotAnEvent", detail, id: null }))

/** Reads an HTTP-flavour event; anything else is an `InvalidEvent` (never forwarded, never released). */
export const read = (event: unknown): Either.Either<HttpEvent, AgentCore.InvalidEvent> => {
  const input = decodeInput(event)
  if (Either.isLeft(input)) return invalid("the http event has the wrong shape")
  const { gatewayRequest, gatewayResponse } = input.right.http
  if (gatewayResponse !== undefined && gatewayResponse !== null && Object.keys(gatewayResponse).length > 0) {
    const raw = gatewayResponse.body
    const body = raw === undefined || raw === null ? null : fromBase64(raw)
    if (body === undefined) return invalid("http.gatewayResponse.body is not base64")
    return Either.right({
      _tag: "Response",
      statusCode: gatewayResponse.statusCode ?? 200,
      headers: gatewayResponse.headers ?? {},
      body,
      streaming: gatewayResponse.isStreamingResponse === true
    })
  }
  if (gatewayRequest === undefined || gatewayRequest === null) return invalid("http event without a request")
  const text = gatewayRequest.body === undefined || gatewayRequest.body === null
    ? ""
    : fromBase64(gatewayRequest.body)
  if (text === undefined) return invalid("http.gatewayRequest.body is not base64")
  return Either.map(
    AgentCore.decodeCall({
      interceptorInputVersion: input.right.interceptorInputVersion,
      mcp: {
        gatewayRequest: {
          httpMethod: gatewayRequest.httpMethod,
          path: gatewayRequest.path,
          headers: gatewayRequest.headers,
          body: text
        }
      }
    }),
    (call): HttpEvent => ({ _tag: "Request", call })
  )
}

/** The JSON-RPC request body with another id, as text (the target gets JSON). */
export const withId = (request: AgentCore.JsonRpcRequest, rawBody: unknown, id: string | number): string => {
  let body: unknown = rawBody
  if (typeof body === "string") {
    try {
      body = JSON.parse(body)
    } catch {
      body = request
    }
  }
  return JSON.stringify({ ...(Json.isRecord(body) ? body : request), id })
}

/** The SSE text of JSON-RPC messages (one `message` event each). */
export const sseOf = (messages: ReadonlyArray<unknown>): string =>
  messages.map((message) => `event: message\ndata: ${JSON.stringify(message)}\n\n`).join("")

/** Whether a body is SSE-framed (by its content type, else by its first field). */
export const isSse = (headers: { readonly [name: string]: unknown }, body: string): boolean => {
  const contentType = Json.headerValue(headers, "content-type")
  if (contentType !== undefined) return contentType.toLowerCase().includes("text/event-stream")
  return /^(event|data|id|retry):/m.test(body.trimStart().slice(0, 16))
}

// ---------------------------------------------------------------------------
// API Gateway v2 / Function URL events (httpHandler)
// ---------------------------------------------------------------------------

const hasOwn = Object.prototype.hasOwnProperty
const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
// An optional field of `HttpEventSchema` (`Schema.optional`: absent, or `undefined`, or the type).
const copyOptional = (
  from: Record<string, unknown>,
  key: string,
  to: Record<string, unknown>,
  accepts: (value: unknown) => boolean
): boolean => {
  if (!hasOwn.call(from, key)) return true
  const value = from[key]
  if (value !== undefined && !accepts(value)) return false
  to[key] = value
  return true
}
const isString = (u: unknown): boolean => typeof u === "string"
const isHeaders = (u: unknown): boolean => u === null || isObject(u)
const isBody = (u: unknown): boolean => u === null || typeof u === "string"
const isBoolean = (u: unknown): boolean => typeof u === "boolean"

/** What `HttpHandler.HttpEventSchema` decodes. */
export interface V2Event {
  readonly rawPath?: string | undefined
  readonly headers?: { readonly [name: string]: unknown } | null | undefined
  readonly requestContext: {
    readonly domainName?: string | undefined
    readonly http: { readonly method: string; readonly path?: string | undefined }
  }
  readonly body?: string | null | undefined
  readonly isBase64Encoded?: boolean | undefined
}

/**
 * `HttpHandler.HttpEventSchema` decoded by hand, without a Schema run per request: the same value,
 * keys in the schema's order (pinned by a property test, HttpHandlerEvent.test.ts), or `undefined`
 * for anything off its types, which the caller then gives to the schema (its refusal says what is
 * wrong).
 */
export const decodeV2Event = (event: unknown): V2Event | undefined => {
  if (!isObject(event) || !hasOwn.call(event, "requestContext")) return undefined
  const context = event["requestContext"]
  if (!isObject(context) || !hasOwn.call(context, "http")) return undefined
  const http = context["http"]
  if (!isObject(http) || !hasOwn.call(http, "method")) return undefined
  const method = http["method"]
  if (typeof method !== "string") return undefined
  const out: Record<string, unknown> = {}
  if (!copyOptional(event, "rawPath", out, isString) || !copyOptional(event, "headers", out, isHeaders)) {
    return undefined
  }
  const contextOut: Record<string, unknown> = {}
  if (!copyOptional(context, "domainName", contextOut, isString)) return undefined
  const httpOut: Record<string, unknown> = { method }
  if (!copyOptional(http, "path", httpOut, isString)) return undefined
  contextOut["http"] = httpOut
  out["requestContext"] = contextOut
  if (!copyOptional(event, "body", out, isBody) || !copyOptional(event, "isBase64Encoded", out, isBoolean)) {
    return undefined
  }
  return out as unknown as V2Event
}
