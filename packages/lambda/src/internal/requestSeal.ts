/**
 * The seal on the request id the interceptor's REQUEST phase issues: an HMAC over the id and the
 * payer's token fingerprint, sent beside the id. The RESPONSE phase settles with an id only when its
 * seal checks out, so an id a caller (or anyone but this agent) wrote into a header is never used,
 * and an id issued for one token cannot be replayed with another.
 *
 * The key must be the same on every instance that may serve the two phases of one call: an explicit
 * key, else `X402_REQUEST_SEAL_KEY`, else one derived from `NVM_API_KEY` (one-way: the seal never
 * reveals the key); without any, a random key per cold start, so only calls whose two phases land on
 * one instance carry an id that checks out (the others settle without one, deduplicated per instance).
 */
import * as Redacted from "effect/Redacted"
import * as Crypto from "node:crypto"

/** The header the seal travels in, beside `x-nvm-agent-request-id`. */
export const SEAL_HEADER = "x-x402-request-seal"

/** The seal key of this cold start, from the explicit key or the environment. */
export const sealKey = (explicit: Redacted.Redacted<string> | undefined): Buffer => {
  const configured = explicit !== undefined ? Redacted.value(explicit) : process.env.X402_REQUEST_SEAL_KEY
  if (configured !== undefined && configured.length > 0) return Buffer.from(configured, "utf8")
  const apiKey = process.env.NVM_API_KEY
  if (apiKey !== undefined && apiKey.length > 0) {
    return Crypto.createHash("sha256").update("effect-x402 request seal\n").update(apiKey).digest()
  }
  return Crypto.randomBytes(32)
}

/** The seal of an issued id for the payer with this token fingerprint. */
export const seal = (key: Buffer, requestId: string, payer: string): string =>
  Crypto.createHmac("sha256", key).update(requestId).update("\n").update(payer).digest("base64url")

/** Whether `value` is the seal of `requestId` for `payer` (compared in constant time). */
export const checks = (key: Buffer, requestId: string, payer: string, value: string): boolean => {
  const expected = Buffer.from(seal(key, requestId, payer), "utf8")
  const given = Buffer.from(value, "utf8")
  return given.length === expected.length && Crypto.timingSafeEqual(given, expected)
}

/** A stable key for a call whose RESPONSE carries no sealed id: the payer and what was exchanged. */
export const exchangeKey = (payer: string, request: string, response: string): string =>
  `x402_${
    Crypto.createHash("sha256").update(payer).update("\n").update(request).update("\n").update(response).digest(
      "base64url"
    ).slice(0, 32)
  }`
