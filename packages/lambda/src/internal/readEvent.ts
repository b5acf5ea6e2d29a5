/**
 * The gateway event's usual shape, read without a Schema: what `AgentCore.decodeCall` tries first on
 * every call. Each reader answers exactly what the Schema's decode answers (`onExcessProperty:
 * "ignore"`: the known keys that are present, nothing else) for the inputs it accepts, and
 * `undefined` for anything else, which then goes through the Schema (and gets its error). A property
 * test (`test/ReadEvent.test.ts`) pins the two together on arbitrary events.
 *
 * Why: the Schema decode of an event was ~1.5 µs and ~5 KB of garbage per call, a tenth of a warm
 * paid call's cost, for a shape that is nearly always the same.
 */
import { own } from "./json.js"

type Decoded = { [key: string]: unknown }

const isObject = (u: unknown): u is { readonly [key: string]: unknown } =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const has = (u: object, key: string): boolean => Object.prototype.hasOwnProperty.call(u, key)

// Copies `key` when present and accepted by `check` (an optional field: `undefined` is accepted);
// `false` when present and refused.
const copyOptional = (
  from: object,
  to: Decoded,
  key: string,
  check: (u: unknown) => boolean
): boolean => {
  if (!has(from, key)) return true
  const value = own(from, key)
  if (value !== undefined && !check(value)) return false
  to[key] = value
  return true
}

const isString = (u: unknown): boolean => typeof u === "string"
const isNumber = (u: unknown): boolean => typeof u === "number"
const isHeaders = (u: unknown): boolean => u === null || isObject(u)
const isJsonRpcId = (u: unknown): boolean => typeof u === "string" || typeof u === "number" || u === null
const any = (): boolean => true

const readGatewayRequest = (u: unknown): Decoded | undefined => {
  if (!isObject(u)) return undefined
  const out: Decoded = {}
  return copyOptional(u, out, "httpMethod", isString) && copyOptional(u, out, "path", isString) &&
      copyOptional(u, out, "headers", isHeaders) && copyOptional(u, out, "body", any)
    ? out
    : undefined
}

const readGatewayResponse = (u: unknown): Decoded | undefined => {
  if (!isObject(u)) return undefined
  const out: Decoded = {}
  return copyOptional(u, out, "statusCode", isNumber) && copyOptional(u, out, "headers", isHeaders) &&
      copyOptional(u, out, "body", any)
    ? out
    : undefined
}

/** `AgentCore.InterceptorInput`'s decode of an event, or `undefined`: ask the Schema. */
export const readInput = (event: unknown): Decoded | undefined => {
  if (!isObject(event)) return undefined
  const out: Decoded = {}
  if (!copyOptional(event, out, "interceptorInputVersion", isString)) return undefined
  const mcp = own(event, "mcp")
  if (!isObject(mcp)) return undefined
  const gatewayRequest = readGatewayRequest(own(mcp, "gatewayRequest"))
  if (gatewayRequest === undefined) return undefined
  const decodedMcp: Decoded = { gatewayRequest }
  if (has(mcp, "gatewayResponse")) {
    const response = own(mcp, "gatewayResponse")
    if (response === undefined || response === null) decodedMcp.gatewayResponse = response
    else {
      const decoded = readGatewayResponse(response)
      if (decoded === undefined) return undefined
      decodedMcp.gatewayResponse = decoded
    }
  }
  out.mcp = decodedMcp
  return out
}

/** `AgentCore.JsonRpcRequest`'s decode of a body, or `undefined`: ask the Schema. */
export const readRequest = (body: unknown): Decoded | undefined => {
  if (!isObject(body) || typeof own(body, "method") !== "string") return undefined
  const out: Decoded = {}
  return copyOptional(body, out, "jsonrpc", isString) && copyOptional(body, out, "id", isJsonRpcId)
    ? (out.method = own(body, "method"), copyOptional(body, out, "params", any) ? out : undefined)
    : undefined
}
