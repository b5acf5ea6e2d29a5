/**
 * Reading gateway events and handler results: the token and tool of a call, and the JSON-RPC
 * messages of an answer (plain, double-encoded or SSE-framed) with what they say about charging.
 * `AgentCore` re-exports the public ones; the schemas, `decodeCall` and the answers live there.
 *
 * @internal
 */
import type * as Credits from "@effect-x402/core/Credits"
import * as X402 from "@effect-x402/core/X402"
import { headerValue, isRecord, own } from "./json.js"

/** The header the token is read from by default. */
export const DEFAULT_TOKEN_HEADERS: ReadonlyArray<string> = [X402.PAYMENT_SIGNATURE_HEADER]

/**
 * Normalises the `tokenHeader` option: lower-cased names, in order. Throws a `RangeError` on an
 * empty list, at configuration time.
 *
 * @since 0.1.0
 * @category tokens
 */
export const tokenHeaders = (option: string | ReadonlyArray<string> | undefined): ReadonlyArray<string> => {
  const names = (option === undefined ? DEFAULT_TOKEN_HEADERS : typeof option === "string" ? [option] : option)
    .map((name) => typeof name === "string" ? name.trim().toLowerCase() : "")
  if (names.length === 0 || names.some((name) => name.length === 0)) {
    throw new RangeError("tokenHeader must name at least one header, and no empty one")
  }
  // Behind a gateway, `Authorization` carries the gateway's inbound identity JWT (itself a `Bearer`
  // value, so a prefix check cannot tell it from an x402 token): it would go to the facilitator.
  if (names.includes("authorization")) {
    throw new RangeError(
      "tokenHeader must not be Authorization: behind a gateway it carries the caller's identity token, " +
        "which would be sent to the facilitator; use payment-signature or a dedicated header such as X-Payment"
    )
  }
  return names
}

const BEARER = /^bearer\s+/i

/**
 * The caller's token: the configured headers are tried in order (case-insensitively) and the first
 * non-empty value wins. A `Bearer ` prefix is dropped, so `Authorization` can carry the token.
 *
 * @since 0.1.0
 * @category tokens
 */
export const tokenOf = (headers: unknown, names: ReadonlyArray<string>): string | undefined => {
  for (const name of names) {
    const value = headerValue(headers, name)?.replace(BEARER, "").trim()
    if (value !== undefined && value.length > 0) return value
  }
  return undefined
}

/**
 * The tool named by a `tools/call`: the part after the last `___` (AgentCore prefixes the target).
 *
 * @since 0.1.0
 * @category readers
 */
export const toolNameOf = (method: string, params: unknown): string | undefined => {
  if (method !== "tools/call") return undefined
  const name = own(params, "name")
  if (typeof name !== "string" || name.length === 0) return undefined
  const cut = name.lastIndexOf("___")
  return cut >= 0 ? name.slice(cut + 3) : name
}

/**
 * The full tool name of a `tools/call`, with its target prefix.
 *
 * @since 0.1.0
 * @category readers
 */
export const fullToolNameOf = (method: string, params: unknown): string | undefined => {
  if (method !== "tools/call") return undefined
  const name = own(params, "name")
  return typeof name === "string" && name.length > 0 ? name : undefined
}

/** Some transports hand the body over as JSON text rather than an object: parsed when it is JSON. */
export const parseBody = (body: unknown): unknown => {
  if (typeof body !== "string") return body
  try {
    return JSON.parse(body)
  } catch {
    return body
  }
}

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
export const toolCallOf = (event: unknown): {
  readonly name: string
  readonly tool: string
  readonly arguments: { readonly [name: string]: unknown }
} | undefined => {
  const body = parseBody(own(own(own(event, "mcp"), "gatewayRequest"), "body"))
  const method = own(body, "method")
  if (method !== "tools/call") return undefined
  const params = own(body, "params")
  const name = fullToolNameOf(method, params)
  const tool = toolNameOf(method, params)
  if (name === undefined || tool === undefined) return undefined
  const args = own(params, "arguments")
  return { name, tool, arguments: isRecord(args) ? args : {} }
}

// A double-encoded body (a JSON string holding JSON) is unwrapped a few times, no more.
const MAX_DECODINGS = 4

const parseJson = (text: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false } => {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false }
  }
}

// Server-Sent Events framing (MCP Streamable HTTP): events separated by a blank line, each event's
// `data:` lines joined by newlines. Only events whose data parse as JSON count.
const sseMessages = (text: string): ReadonlyArray<unknown> | undefined => {
  const lines = text.split(/\r\n|\r|\n/)
  if (!lines.some((line) => /^(data|event|id|retry):/.test(line))) return undefined
  const messages: Array<unknown> = []
  let data: Array<string> = []
  const flush = () => {
    if (data.length > 0) {
      const parsed = parseJson(data.join("\n"))
      if (parsed.ok) messages.push(parsed.value)
    }
    data = []
  }
  for (const line of lines) {
    if (line === "") flush()
    else if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5))
  }
  flush()
  return messages
}

/**
 * The JSON-RPC messages an answer body carries: an object as is; a JSON text (unwrapped when it is
 * double-encoded); the `data` of each SSE event of a `text/event-stream` body. A body none of these
 * describe (plain text) carries no message.
 *
 * @since 0.2.0
 * @category handler results
 */
export const messagesOf = (body: unknown): ReadonlyArray<unknown> => {
  let value = body
  for (let i = 0; i < MAX_DECODINGS && typeof value === "string"; i++) {
    const parsed = parseJson(value)
    if (parsed.ok) {
      value = parsed.value
      continue
    }
    const events = sseMessages(value)
    if (events === undefined) return []
    return events.flatMap((event) => messagesOf(event))
  }
  if (typeof value === "string") return []
  return Array.isArray(value) ? value : [value]
}

// A JSON-RPC response: a `result` or a non-null `error` (notifications and requests in a stream
// are neither).
const isResponse = (message: unknown): boolean =>
  own(message, "result") !== undefined || (own(message, "error") !== undefined && own(message, "error") !== null)

const isExplicitError = (message: unknown): boolean => {
  const error = own(message, "error")
  if (error !== undefined && error !== null) return true
  return own(own(message, "result"), "isError") === true
}

/**
 * The JSON-RPC response an answer body carries, read as `messagesOf` does: the first message with a
 * `result` or an `error`, else the body itself when it is an object.
 *
 * @since 0.2.0
 * @category handler results
 */
export const responseOf = (body: unknown): unknown => {
  const messages = messagesOf(body)
  return messages.find(isResponse) ?? (isRecord(messages[0]) ? messages[0] : undefined)
}

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
export const isChargeable = (answer: { readonly statusCode?: number | undefined; readonly body: unknown }): boolean => {
  if (answer.statusCode !== undefined && (answer.statusCode < 200 || answer.statusCode > 299)) return false
  return !messagesOf(answer.body).some(isExplicitError)
}

/**
 * Where an answer may ask for a different settle amount (see `Credits.findCharge`). Response headers
 * count only for the interceptor. A double-encoded or SSE-framed body is read like a plain one.
 *
 * @since 0.1.0
 * @category handler results
 */
export const chargeSource = (
  answer: { readonly headers?: unknown; readonly body: unknown },
  options: { readonly headers: boolean }
): Credits.ChargeSource => {
  const body = responseOf(answer.body)
  return {
    result: own(body, "result"),
    body,
    ...(options.headers ? { headers: answer.headers } : {})
  }
}
