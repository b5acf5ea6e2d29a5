// Hostile inputs for the reliability properties: JSON with prototype-bending keys, deep nesting, huge
// and non-finite numbers, header maps with CR/LF and long values, JSON-RPC ids of every type, and
// what a paid handler may answer (with the model of what it may be charged).
import { FastCheck as fc } from "effect"

/** Object keys that bend prototypes when a reader is careless. */
export const HOSTILE_KEYS = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf"] as const

const key = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_KEYS) }
)

/** `1e309` as JSON text reads it: Infinity. */
export const E309 = Number("1e309")

/** Numbers a careless reader mishandles. */
export const strangeNumber = fc.constantFrom(
  E309,
  -E309,
  Number.NaN,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2,
  -0,
  1e21,
  -1
)

const leaf = fc.oneof(
  fc.string({ maxLength: 16 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  strangeNumber
)

// Objects are built with Object.fromEntries, as JSON.parse does: a `__proto__` key becomes an own
// property, exactly what arrives in a Lambda event.
const objectOf = (entries: ReadonlyArray<readonly [string, unknown]>): Record<string, unknown> =>
  Object.fromEntries(entries)

/** Any JSON-like value with hostile keys mixed in. */
export const json: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown; array: Array<unknown>; object: unknown }>(
  (tie) => ({
    value: fc.oneof({ depthSize: "small", maxDepth: 4 }, leaf, tie("array"), tie("object")),
    array: fc.array(tie("value"), { maxLength: 4 }),
    object: fc.array(fc.tuple(key, tie("value")), { maxLength: 5 }).map(objectOf)
  })
).value

/** A record of JSON values with hostile keys. */
export const jsonRecord: fc.Arbitrary<Record<string, unknown>> = fc.array(fc.tuple(key, json), { maxLength: 5 }).map(
  objectOf
)

/** Nesting thousands of levels deep, of arrays or objects. */
export const deep: fc.Arbitrary<unknown> = fc.tuple(fc.integer({ min: 200, max: 2_000 }), fc.boolean()).map(
  ([depth, arrays]) => {
    let value: unknown = "bottom"
    for (let i = 0; i < depth; i++) value = arrays ? [value] : { [HOSTILE_KEYS[i % HOSTILE_KEYS.length]]: value, a: i }
    return value
  }
)

/** JSON-RPC ids of every type: valid (string, number, null) and not (boolean, object, array, absent). */
export const jsonRpcId: fc.Arbitrary<{ readonly present: boolean; readonly value: unknown }> = fc.oneof(
  fc.string({ maxLength: 40 }).map((value) => ({ present: true, value })),
  fc.integer().map((value) => ({ present: true, value })),
  fc.double().map((value) => ({ present: true, value })),
  strangeNumber.map((value) => ({ present: true, value })),
  fc.constant({ present: true, value: null }),
  fc.boolean().map((value) => ({ present: true, value })),
  jsonRecord.map((value) => ({ present: true, value })),
  fc.array(fc.integer(), { maxLength: 3 }).map((value) => ({ present: true, value })),
  fc.constant({ present: false, value: undefined })
)

/** Whether an id is one JSON-RPC allows (and so is echoed with its type). */
export const isValidId = (id: { readonly present: boolean; readonly value: unknown }): boolean =>
  !id.present || typeof id.value === "string" || typeof id.value === "number" || id.value === null

/** Header values an attacker may send through a JSON event. */
export const headerValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom("a\r\nx-injected: 1", "\r\n\r\n<html>", "\u0000", "\ud800", "é\u2028") },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 70_000 }).map((n) => "v".repeat(n)) },
  { weight: 1, arbitrary: json }
)

/** Where a caller's token may be put in a header map: `valid` is true only for the one honest way. */
export type TokenPlacement =
  | "none"
  | "valid"
  | "validAnyCase"
  | "unknownToken"
  | "blank"
  | "array"
  | "number"
  | "protoKey"
  | "crlf"

export const tokenPlacement: fc.Arbitrary<TokenPlacement> = fc.constantFrom(
  "none",
  "valid",
  "valid",
  "valid",
  "validAnyCase",
  "unknownToken",
  "blank",
  "array",
  "number",
  "protoKey",
  "crlf"
)

/** A header map: junk headers plus the token placed as asked. */
export const headersWith = (
  placement: TokenPlacement,
  token: string,
  junk: ReadonlyArray<readonly [string, unknown]>
): Record<string, unknown> => {
  const entries: Array<readonly [string, unknown]> = junk.filter(([name]) => name.toLowerCase() !== "payment-signature")
  switch (placement) {
    case "none":
      break
    case "valid":
      entries.push(["payment-signature", token])
      break
    case "validAnyCase":
      entries.push(["PAYMENT-Signature", `  ${token} `])
      break
    case "unknownToken":
      entries.push(["payment-signature", `${token}x`])
      break
    case "blank":
      entries.push(["payment-signature", "   "])
      break
    case "array":
      // Multi-value headers: the first string counts, so this one pays.
      entries.push(["payment-signature", [token, "other"]])
      break
    case "number":
      entries.push(["payment-signature", 12345])
      break
    case "protoKey":
      entries.push(["__proto__", { "payment-signature": token }])
      break
    case "crlf":
      entries.push(["payment-signature", `${token}\r\nx-injected: 1`])
      break
  }
  return objectOf(entries)
}

/** Whether a placement carries a token the ledger honours. */
export const paysWith = (placement: TokenPlacement): boolean =>
  placement === "valid" || placement === "validAnyCase" || placement === "array"

/** Junk header entries, hostile names included. */
export const junkHeaders: fc.Arbitrary<ReadonlyArray<readonly [string, unknown]>> = fc.array(
  fc.tuple(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom(...HOSTILE_KEYS, "content-type")), headerValue),
  { maxLength: 6 }
)

/** Credits a handler may ask to be charged, with what the spec says of each (docs/protocol.md §5). */
export const chargeRequest: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: 0, max: 50 }),
  fc.integer({ min: 0, max: 50 }).map(String),
  fc.constantFrom(
    -1,
    -0.5,
    0.5,
    1.5,
    E309,
    -E309,
    Number.NaN,
    Number.MAX_SAFE_INTEGER + 2,
    1e21,
    "-1",
    "1.5",
    "1e3",
    "0x10",
    " 3",
    "",
    "abc",
    "99999999999999999999",
    true,
    null,
    [1],
    { n: 1 }
  )
)

/**
 * The amount the spec says a request for `value` settles (a non-negative safe integer or a decimal
 * string of one; absent means the default), or `invalid`: an independent statement of docs/protocol.md §5.
 */
export const expectedCharge = (value: unknown, fallback: number): number | "invalid" => {
  if (value === undefined || value === null) return fallback
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value + 0 : "invalid"
  if (typeof value === "string" && /^[0-9]{1,16}$/.test(value) && Number.isSafeInteger(Number(value))) {
    return Number(value)
  }
  return "invalid"
}
