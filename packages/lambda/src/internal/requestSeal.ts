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
export const sealKey = (explicit: Redacted.Redacted<string> | undefined): Buffer => sealKeyOf(explicit).key

/** The seal key, and whether it is shared (configured) rather than this cold start's own. */
export const sealKeyOf = (
  explicit: Redacted.Redacted<string> | undefined
): { readonly key: Buffer; readonly shared: boolean } => {
  const configured = explicit !== undefined ? Redacted.value(explicit) : process.env.X402_REQUEST_SEAL_KEY
  if (configured !== undefined && configured.length > 0) return { key: Buffer.from(configured, "utf8"), shared: true }
  const apiKey = process.env.NVM_API_KEY
  if (apiKey !== undefined && apiKey.length > 0) {
    return {
      key: Crypto.createHash("sha256").update("effect-x402 request seal\n").update(apiKey).digest(),
      shared: true
    }
  }
  return { key: Crypto.randomBytes(32), shared: false }
}

// The HMAC key object, imported once per seal key (one per cold start), not on every seal.
const hmacKeys = new WeakMap<Buffer, Crypto.KeyObject>()
const hmacKeyOf = (key: Buffer): Crypto.KeyObject => {
  let imported = hmacKeys.get(key)
  if (imported === undefined) {
    imported = Crypto.createSecretKey(key)
    hmacKeys.set(key, imported)
  }
  return imported
}

/** The seal of an issued id for the payer with this token fingerprint. */
export const seal = (key: Buffer, requestId: string, payer: string): string =>
  Crypto.createHmac("sha256", hmacKeyOf(key)).update(`${requestId}\n${payer}`).digest("base64url")

/** Whether `value` equals `expected` (two seals), compared in constant time. */
const sameSeal = (expected: string, value: string): boolean => {
  const want = Buffer.from(expected, "utf8")
  const given = Buffer.from(value, "utf8")
  return given.length === want.length && Crypto.timingSafeEqual(given, want)
}

/** Whether `value` is the seal of `requestId` for `payer` (compared in constant time). */
export const checks = (key: Buffer, requestId: string, payer: string, value: string): boolean =>
  sameSeal(seal(key, requestId, payer), value)

/**
 * `seal` and `checks` for one key, remembering the seals it issued lately: when the RESPONSE phase
 * lands on the instance whose REQUEST phase sealed the id (the common case), the check compares
 * with the seal computed then instead of computing the HMAC again. The answer is the same either
 * way (the remembered value is that HMAC, for the same id and payer), so the seal is as
 * unforgeable as before; only seals this instance made are remembered, so nothing a caller writes
 * gets in. Two generations of at most `capacity` entries each bound the memory.
 */
export interface Sealer {
  readonly seal: (requestId: string, payer: string) => string
  readonly checks: (requestId: string, payer: string, value: string) => boolean
}

/** Makes a `Sealer` for a seal key. */
export const makeSealer = (key: Buffer, capacity = 1024): Sealer => {
  let recent = new Map<string, string>()
  let older = new Map<string, string>()
  return {
    seal: (requestId, payer) => {
      const value = seal(key, requestId, payer)
      if (recent.size >= capacity) {
        older = recent
        recent = new Map()
      }
      recent.set(`${requestId}\n${payer}`, value)
      return value
    },
    checks: (requestId, payer, value) => {
      const name = `${requestId}\n${payer}`
      const issued = recent.get(name) ?? older.get(name)
      return sameSeal(issued ?? seal(key, requestId, payer), value)
    }
  }
}

/** A stable key for a call whose RESPONSE carries no sealed id: the payer and what was exchanged. */
export const exchangeKey = (payer: string, request: string, response: string): string =>
  `x402_${
    Crypto.createHash("sha256").update(payer).update("\n").update(request).update("\n").update(response).digest(
      "base64url"
    ).slice(0, 32)
  }`

// ---------------------------------------------------------------------------
// Calls whose RESPONSE phase cannot see the request (docs/protocol.md, "HTTP targets")
// ---------------------------------------------------------------------------

/**
 * The prefix of the string JSON-RPC ids the REQUEST phase gives the requests it forwards when the
 * RESPONSE phase will not see the request: a JSON-RPC server echoes the id, so the answer names its
 * call. A caller's own id with this prefix is refused (it could pose as a forwarded call).
 */
export const ID_PREFIX = "x402:"

// A caller's id that is a small non-negative integer (what MCP clients send) is forwarded as a
// number, since some JSON-RPC servers take numeric ids only: the low 20 bits carry the caller's id,
// the bits above a random tag (paid, at 2^52 and up) or an HMAC tag (free, below 2^52). Every such
// id stays under 2^53, exact in JSON and in a JavaScript number. Any other caller id is forwarded
// as a string with the prefix above.
const SMALL = 2 ** 20
const PAID_BASE = 2 ** 52
const isSmall = (id: unknown): id is number => typeof id === "number" && Number.isInteger(id) && id >= 0 && id < SMALL

const encodeCaller = (callerId: unknown): string =>
  Buffer.from(JSON.stringify(callerId ?? null), "utf8").toString("base64url")

const freeTag = (key: Buffer, callerId: number): number =>
  Crypto.createHmac("sha256", key).update("free\n").update(String(callerId)).digest().readUInt32BE(0)

/**
 * The id and ledger key of a paid call forwarded for `payer`: a fresh ledger key each time (the
 * facilitator's request id travels in the sealed record).
 */
export const forwardPaid = (
  key: Buffer,
  payer: string,
  callerId: unknown
): { readonly id: string | number; readonly ledgerKey: string } => {
  if (isSmall(callerId)) {
    const id = PAID_BASE + Crypto.randomBytes(4).readUInt32BE(0) * SMALL + callerId
    return { id, ledgerKey: `x402_fwd_${id}` }
  }
  const ledgerKey = `x402_${Crypto.randomUUID()}`
  const caller = encodeCaller(callerId)
  return {
    id: `${ID_PREFIX}p.${Buffer.from(ledgerKey, "utf8").toString("base64url")}.${caller}.${
      seal(key, `${ledgerKey}\n${caller}`, payer)
    }`,
    ledgerKey
  }
}

/** The id forwarded for a free call: the caller's id, tagged so that a target cannot forge one. */
export const forwardFree = (key: Buffer, callerId: unknown): string | number => {
  if (isSmall(callerId)) return freeTag(key, callerId) * SMALL + callerId
  const caller = encodeCaller(callerId)
  return `${ID_PREFIX}f.${caller}.${seal(key, caller, "free")}`
}

/** A forwarded id, read back (a paid one still to be matched with its ledger row). */
export type ForwardedId =
  | {
    readonly _tag: "Paid"
    readonly ledgerKey: string
    readonly callerId: unknown
    /** Whether the id was sealed for this payer (a numeric id: its ledger row's sealed record vouches). */
    readonly check: (payer: string) => boolean
  }
  | { readonly _tag: "Free"; readonly callerId: unknown }

const callerIdOf = (encoded: string): { readonly ok: true; readonly id: unknown } | undefined => {
  try {
    const id: unknown = JSON.parse(Buffer.from(encoded, "base64url").toString("utf8"))
    return typeof id === "string" || typeof id === "number" || id === null ? { ok: true, id } : undefined
  } catch {
    return undefined
  }
}

const always = () => true

/** Reads an id this agent forwarded; `undefined` for any other id, or a free id whose tag fails. */
export const readForwardedId = (key: Buffer, id: unknown): ForwardedId | undefined => {
  if (typeof id === "number") {
    if (!Number.isSafeInteger(id) || id < 0) return undefined
    const callerId = id % SMALL
    if (id >= PAID_BASE) return { _tag: "Paid", ledgerKey: `x402_fwd_${id}`, callerId, check: always }
    return Math.floor(id / SMALL) === freeTag(key, callerId) ? { _tag: "Free", callerId } : undefined
  }
  if (typeof id !== "string" || !id.startsWith(ID_PREFIX) || id.length > 1024) return undefined
  const parts = id.slice(ID_PREFIX.length).split(".")
  if (parts[0] === "f" && parts.length === 3) {
    const caller = callerIdOf(parts[1])
    return caller !== undefined && checks(key, parts[1], "free", parts[2])
      ? { _tag: "Free", callerId: caller.id }
      : undefined
  }
  if (parts[0] === "p" && parts.length === 4) {
    const ledgerKey = Buffer.from(parts[1], "base64url").toString("utf8")
    const caller = callerIdOf(parts[2])
    if (ledgerKey.length === 0 || caller === undefined) return undefined
    const signed = `${ledgerKey}\n${parts[2]}`
    return {
      _tag: "Paid",
      ledgerKey,
      callerId: caller.id,
      check: (payer) => checks(key, signed, payer, parts[3])
    }
  }
  return undefined
}

// Derived once per seal key (one per cold start), not on every paid call.
const boxKeys = new WeakMap<Buffer, Crypto.KeyObject>()
const boxKeyOf = (key: Buffer): Crypto.KeyObject => {
  let derived = boxKeys.get(key)
  if (derived === undefined) {
    derived = Crypto.createSecretKey(
      Crypto.createHash("sha256").update("effect-x402 ledger box\n").update(key).digest()
    )
    boxKeys.set(key, derived)
  }
  return derived
}

/**
 * Encrypts what a later phase needs (the token, for one) for the ledger: AES-256-GCM under a key
 * derived from the seal key, bound to the ledger key. A reader of the store learns nothing from it.
 */
export const box = (key: Buffer, ledgerKey: string, plaintext: string): string => {
  const iv = Crypto.randomBytes(12)
  const cipher = Crypto.createCipheriv("aes-256-gcm", boxKeyOf(key), iv)
  cipher.setAAD(Buffer.from(ledgerKey, "utf8"))
  const data = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), data]).toString("base64url")
}

/** Opens `box`'s value for the same ledger key; `undefined` when it does not authenticate. */
export const unbox = (key: Buffer, ledgerKey: string, sealed: string): string | undefined => {
  try {
    const bytes = Buffer.from(sealed, "base64url")
    if (bytes.length < 29) return undefined
    const decipher = Crypto.createDecipheriv("aes-256-gcm", boxKeyOf(key), bytes.subarray(0, 12))
    decipher.setAAD(Buffer.from(ledgerKey, "utf8"))
    decipher.setAuthTag(bytes.subarray(12, 28))
    return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString("utf8")
  } catch {
    return undefined
  }
}
