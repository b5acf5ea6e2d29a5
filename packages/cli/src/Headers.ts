/**
 * What an x402 header says, for people: a `payment-required` demand, a `payment-response` receipt,
 * or a `payment-signature` access token shown without its secret parts.
 *
 * @since 0.1.0
 */
import * as Paywall from "@effect-x402/core/Paywall"
import * as X402 from "@effect-x402/core/X402"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"

/**
 * A decoded header.
 *
 * @since 0.1.0
 * @category models
 */
export type Described =
  | { readonly kind: "payment-required"; readonly value: X402.PaymentRequired }
  | { readonly kind: "payment-response"; readonly value: X402.SettleResponse }
  | {
    readonly kind: "payment-signature"
    readonly format: "JWT" | "base64 JSON" | "opaque"
    /** FNV-1a of the whole token: enough to tell tokens apart in logs, useless to spend one. */
    readonly fingerprint: string
    readonly length: number
    readonly value?: unknown
  }

/** Keys whose values would let a reader spend or forge the payment. */
const SECRET_KEY = /signature|secret|session_?keys?|token|password|private|api_?key/i

/** The JSON with every secret-looking field's value withheld, at any depth. */
const withheld = (json: unknown): unknown => {
  if (Array.isArray(json)) return json.map(withheld)
  if (typeof json !== "object" || json === null) return json
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(json)) {
    out[key] = SECRET_KEY.test(key) ? "<withheld>" : withheld(value)
  }
  return out
}

const base64UrlJson = (part: string): Either.Either<unknown, string> =>
  Either.flatMap(
    X402.decodeBase64(part.replace(/-/g, "+").replace(/_/g, "/")),
    (text) => Either.try({ try: () => JSON.parse(text) as unknown, catch: () => "not JSON" })
  )

const isObject = (u: unknown): u is object => typeof u === "object" && u !== null

/**
 * Reads a header value: a PaymentRequired, a settlement receipt, or else an access token, whose
 * signature and any secret-looking field are withheld (the rest is what anyone holding the token
 * could read, never enough to spend it).
 *
 * @since 0.1.0
 * @category decoding
 */
export const describe = (header: string): Described => {
  const value = header.trim()
  const required = X402.PaymentRequiredHeader.decodeEither(value)
  if (Either.isRight(required)) return { kind: "payment-required", value: required.right }
  const receipt = X402.SettleResponseHeader.decodeEither(value)
  if (Either.isRight(receipt)) return { kind: "payment-response", value: receipt.right }
  const token = {
    kind: "payment-signature" as const,
    fingerprint: Paywall.fingerprint(Redacted.make(value)),
    length: value.length
  }
  const parts = value.split(".")
  if (parts.length === 3) {
    const header = base64UrlJson(parts[0])
    const claims = base64UrlJson(parts[1])
    if (Either.isRight(header) && Either.isRight(claims) && isObject(header.right) && isObject(claims.right)) {
      return {
        ...token,
        format: "JWT",
        value: { header: withheld(header.right), claims: withheld(claims.right), signature: "<withheld>" }
      }
    }
  }
  const json = base64UrlJson(value)
  if (Either.isRight(json) && isObject(json.right)) {
    return { ...token, format: "base64 JSON", value: withheld(json.right) }
  }
  return { ...token, format: "opaque" }
}
