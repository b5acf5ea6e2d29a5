/**
 * Reading untrusted JSON and events inside the lambda adapters: own properties only (the one copy
 * of `isRecord` / `own` is core's), header values by any case of their name, and the short,
 * value-free text of a Schema decoding failure.
 *
 * @internal
 */
import * as Adapter from "@effect-x402/core/Adapter"
import * as ParseResult from "effect/ParseResult"

/** See `Adapter.isRecord`: the one copy is core's. */
export const isRecord = Adapter.isRecord

/** See `Adapter.own`: the one copy is core's. */
export const own = Adapter.own

/** A header's value, whatever the case of its name; the first string of a multi-value shape. */
export const headerValue = (headers: unknown, name: string): string | undefined => {
  if (!isRecord(headers)) return undefined
  const wanted = name.toLowerCase()
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() !== wanted) continue
    const value = headers[key]
    if (typeof value === "string") return value
    // Multi-value shapes (some proxies send arrays): the first string wins.
    if (Array.isArray(value) && typeof value[0] === "string") return value[0]
  }
  return undefined
}

/**
 * The first issue of a decoding failure, short: the tree formatter would echo the whole schema back
 * for a wrong root type. Never the value: a malformed event may carry a token where a header map
 * should be, and this text goes to the logs and back to the caller.
 */
export const formatError = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) return "invalid event"
  const where = issue.path.length > 0 ? issue.path.join(".") : "the event"
  const message = issue.message.replace(/, actual [\s\S]*$/, "")
  return message.length > 120 ? `${where} has the wrong shape` : `${where}: ${message}`
}

/**
 * Whether `JSON.stringify(value)` surely succeeds, found without building the text: primitives
 * other than a bigint, and plain objects and arrays of them without `toJSON`, at most `depth`
 * deep. `false` means "not sure" (a bigint, a class instance, a `toJSON`, a cycle or anything
 * deeper than `depth`): then ask `JSON.stringify` itself. A walk of a small MCP result is several
 * times cheaper than serialising it, on every paid answer.
 */
export const surelySerializable = (value: unknown, depth = 64): boolean => {
  switch (typeof value) {
    case "bigint":
      return false
    case "object":
      break
    default:
      return true
  }
  if (value === null) return true
  if (depth === 0 || typeof (value as { readonly toJSON?: unknown }).toJSON === "function") return false
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return false
    for (let i = 0; i < value.length; i++) {
      if (!surelySerializable(value[i], depth - 1)) return false
    }
    return true
  }
  const prototype = Object.getPrototypeOf(value)
  if (prototype !== Object.prototype && prototype !== null) return false
  for (const key in value) {
    if (
      Object.prototype.hasOwnProperty.call(value, key) &&
      !surelySerializable((value as { readonly [key: string]: unknown })[key], depth - 1)
    ) return false
  }
  return true
}
