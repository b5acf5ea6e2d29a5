/**
 * Idempotent retries over `Paywall.protect`, the one rule the adapters share (`requiresPayment`,
 * `httpHandler`, `HttpPaywall`): a retry that carries the same idempotency key and the same token as
 * an earlier attempt is never charged again.
 *
 * - No key: `Paywall.protect` as it is, and no ledger write (the hot path does not change).
 * - A key the ledger does not know: verify, `record` + `claim` the call under the key, run the work,
 *   settle, and `finish` with the outcome and the paid result (kept up to the ledger's byte cap).
 * - The key of a `settled` attempt: no verify, no work, no settle; the stored result with the stored
 *   receipt (`Replayed`), or `IdempotencyError` `AlreadyPaid` when the result was too large to keep.
 * - The key of an `unknown` attempt (the settle left, its answer was lost): with a reusable token,
 *   never settled again (the stored result, or `AlreadyPaid`); with a single-use token, settled again
 *   with the first attempt's `agentRequestId` (without one: `Unresolved`), which the facilitator
 *   refuses when the first settle landed (`BCK.X402.0059`): that refusal resolves it as `settled`; a
 *   success means the first never landed (one charge either way). Then the stored result as above.
 * - The key of an attempt still `verified` / `settling` (a concurrent duplicate): `InProgress`; the
 *   work never runs twice. The key of an attempt that was not charged (`rejected`: refused, failed,
 *   or an error result): `KeyRejected`; retry with a new key.
 *
 * Keys are scoped by payer: a SHA-256 fingerprint of the token (never the token), so another token
 * cannot read a payer's stored result. The ledger is `SettlementLedger` from the context when
 * provided, else the adapter's own in-memory one.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { Facilitator } from "./Facilitator.js"
import { decodeEnvelope, encodeEnvelope } from "./internal/envelope.js"
import { own } from "./internal/json.js"
import { sha256Hex } from "./internal/sha256.js"
import * as PaymentError from "./PaymentError.js"
import * as Paywall from "./Paywall.js"
import * as SettlementLedger from "./SettlementLedger.js"
import * as X402 from "./X402.js"

/**
 * The header a client sends its idempotency key in (case-insensitive).
 *
 * @since 0.2.0
 * @category constants
 */
export const IDEMPOTENCY_KEY_HEADER = "idempotency-key"

/**
 * The x402 extension whose `info.id` is an idempotency key (in a PaymentPayload's `extensions`).
 *
 * @since 0.2.0
 * @category constants
 */
export const PAYMENT_IDENTIFIER = "payment-identifier"

/**
 * The MCP `_meta` key of an x402 PaymentPayload (x402's MCP transport, docs/protocol.md).
 *
 * @since 0.2.0
 * @category constants
 */
export const MCP_PAYMENT_META_KEY = "x402/payment"

/**
 * Why an idempotent call was not run:
 * - `AlreadyPaid`: an earlier attempt with this key was charged and its result was too large to keep
 *   (or unreadable): nothing is charged again; the x402 `payment-identifier` extension's 409;
 * - `InProgress`: an attempt with this key is running now (a concurrent duplicate); 409;
 * - `KeyRejected`: the earlier attempt with this key was not charged (refused, failed, or an error
 *   result); retry with a new key; 409;
 * - `Unresolved`: the earlier attempt's settlement outcome is unknown and the facilitator issued no
 *   request id to settle it again safely: nothing is charged again, and nothing is answered; 409;
 * - `InvalidKey`: the key is empty, too long or has characters outside `[A-Za-z0-9_-.:]`; 400;
 * - `Unavailable`: the ledger did not answer: nothing runs (fail closed); 503.
 *
 * @since 0.2.0
 * @category errors
 */
export const IdempotencyErrorReason = /* @__PURE__ */ Schema.Literal(
  "Unresolved",
  "AlreadyPaid",
  "InProgress",
  "KeyRejected",
  "InvalidKey",
  "Unavailable"
)

/**
 * @since 0.2.0
 * @category errors
 */
export type IdempotencyErrorReason = typeof IdempotencyErrorReason.Type

/**
 * A retry the library refused. Its message never contains the key or a token.
 *
 * @since 0.2.0
 * @category errors
 */
export class IdempotencyError
  extends /* @__PURE__ */ Schema.TaggedError<IdempotencyError>("@effect-x402/core/IdempotencyError")(
    "IdempotencyError",
    {
      reason: IdempotencyErrorReason,
      /** The receipt of the earlier, charged attempt (`AlreadyPaid`). */
      settlement: /* @__PURE__ */ Schema.optional(Schema.Unknown),
      cause: /* @__PURE__ */ Schema.optional(Schema.Defect)
    }
  )
{
  override get message(): string {
    switch (this.reason) {
      case "AlreadyPaid":
        return "Already paid: an earlier attempt with this idempotency key was charged; its result was not kept"
      case "InProgress":
        return "An attempt with this idempotency key is in progress"
      case "KeyRejected":
        return "The earlier attempt with this idempotency key was not charged; retry with a new key"
      case "Unresolved":
        return "The earlier attempt with this idempotency key has an unknown settlement outcome; nothing was charged again"
      case "InvalidKey":
        return "Invalid idempotency key: 1 to 255 characters of A-Z a-z 0-9 _ - . :"
      case "Unavailable":
        return "The settlement ledger is unavailable; nothing was run or charged"
    }
  }

  /** The HTTP status an adapter answers with. */
  get status(): number {
    return this.reason === "InvalidKey" ? 400 : this.reason === "Unavailable" ? 503 : 409
  }
}

/**
 * The outcome of an idempotent call: `Paywall.Outcome`, or `Replayed` (an earlier attempt's stored
 * result and receipt; nothing verified, run or charged now).
 *
 * @since 0.2.0
 * @category models
 */
export type Outcome<A> =
  | Paywall.Outcome<A>
  | { readonly _tag: "Replayed"; readonly value: A; readonly settlement: X402.SettleResponse }

/**
 * How a result is kept in the ledger: a string, and back (a stored string that does not decode is
 * treated as not kept: `AlreadyPaid`).
 *
 * @since 0.2.0
 * @category models
 */
export interface Codec<A> {
  readonly encode: (value: A) => string | undefined
  readonly decode: (stored: string) => Option.Option<A>
}

/**
 * The codec of JSON values.
 *
 * @since 0.2.0
 * @category codecs
 */
export const jsonCodec: Codec<unknown> = {
  encode: (value) => {
    try {
      return JSON.stringify(value)
    } catch {
      return undefined
    }
  },
  decode: (stored) => {
    try {
      return Option.some(JSON.parse(stored))
    } catch {
      return Option.none()
    }
  }
}

const KEY_PATTERN = /^[A-Za-z0-9_.:-]+$/

/**
 * Reads a key as sent: `undefined` when absent, an `InvalidKey` error when present but unusable (it
 * is refused, never ignored: a retry whose key were dropped would be charged again).
 *
 * @since 0.2.0
 * @category keys
 */
export const validateKey = (raw: unknown): Either.Either<string | undefined, IdempotencyError> => {
  if (raw === undefined || raw === null) return Either.right(undefined)
  if (typeof raw !== "string" || raw.length === 0 || raw.length > SettlementLedger.MAX_KEY_LENGTH) {
    return Either.left(new IdempotencyError({ reason: "InvalidKey" }))
  }
  return KEY_PATTERN.test(raw) ? Either.right(raw) : Either.left(new IdempotencyError({ reason: "InvalidKey" }))
}

/**
 * The `payment-identifier` id of an x402 PaymentPayload (`extensions["payment-identifier"].info.id`).
 *
 * @since 0.2.0
 * @category keys
 */
export const paymentIdentifierOf = (payload: unknown): unknown =>
  own(own(own(own(payload, "extensions"), PAYMENT_IDENTIFIER), "info"), "id")

/**
 * The key of an MCP call: the `payment-identifier` id of the PaymentPayload in
 * `params._meta["x402/payment"]`, if any.
 *
 * @since 0.2.0
 * @category keys
 */
export const mcpKeyOf = (params: unknown): unknown => {
  const meta = own(params, "_meta")
  return meta === undefined ? undefined : paymentIdentifierOf(own(meta, MCP_PAYMENT_META_KEY))
}

/**
 * The payer scope of a key: the SHA-256 of the token, hex (never the token). Stronger than
 * `Paywall.fingerprint` (32 bits), which a forger could match to read another payer's result.
 *
 * @since 0.2.0
 * @category ledger
 */
export const payerOf = (token: Redacted.Redacted<string>): string => `sha256:${sha256Hex(Redacted.value(token))}`

// Row ids: the facilitator's `agentRequestId` under a prefix of their own (so they never meet the
// interceptor's rows in a shared table), or, when the facilitator issued none (or reused one), a
// local id, which is never sent to the facilitator.
const ISSUED_ID_PREFIX = "idem:"
const LOCAL_ID_PREFIX = "idem-local:"
const issuedIdOf = (rowId: string): string | undefined =>
  rowId.startsWith(ISSUED_ID_PREFIX) ? rowId.slice(ISSUED_ID_PREFIX.length) : undefined

const unavailable = (cause: SettlementLedger.LedgerError) => new IdempotencyError({ reason: "Unavailable", cause })

// Inside `Paywall.protect`: the key raced past `findByKey` (a concurrent duplicate recorded first).
class Raced {
  readonly _tag = "Raced"
  constructor(readonly entry: SettlementLedger.Entry) {}
}

/**
 * `Paywall.protect` with idempotent retries (see the module's doc). `key` undefined is exactly
 * `Paywall.protect`.
 *
 * @since 0.2.0
 * @category pipeline
 */
export const protect = <Req, R, Resp, A, E, R2>(
  paywall: Paywall.Paywall<Req, R, Resp>,
  call: Paywall.Call<Req>,
  key: string | undefined,
  work: (verified: Paywall.Verified) => Effect.Effect<A, E, R2>,
  options: Paywall.ProtectOptions<A> & {
    readonly codec: Codec<A>
    /** Resolved only for a call with a key (e.g. `SettlementLedger.contextOrMemory()`). */
    readonly ledger: Effect.Effect<SettlementLedger.SettlementLedger.Service>
  }
): Effect.Effect<Outcome<A>, PaymentError.PaymentFailure | IdempotencyError | E, Facilitator | R | R2> => {
  if (key === undefined) return Paywall.protect(paywall, call, work, options)
  const token = Option.getOrUndefined(Paywall.token(call.token))
  // No token: the payment-required answer, as without a key.
  if (token === undefined) return Paywall.protect(paywall, call, work, options)
  return Effect.gen(function*() {
    const { codec } = options
    const ledger = yield* options.ledger
    const payer = payerOf(token)
    const existing = yield* ledger.findByKey(payer, key).pipe(Effect.mapError(unavailable))
    if (Option.isSome(existing)) return yield* replay(paywall, call, token, existing.value, codec, ledger)
    let requestId: string | undefined
    let kept: string | undefined
    let charged = 0
    const attempt = Paywall.protect(paywall, call, (verified) =>
      Effect.gen(function*() {
        const localId = () => `${LOCAL_ID_PREFIX}${crypto.randomUUID()}`
        let id = verified.agentRequestId !== undefined ? `${ISSUED_ID_PREFIX}${verified.agentRequestId}` : localId()
        const input = { requestId: id, payer, amount: verified.credits, idempotencyKey: key }
        // A facilitator id the ledger already holds (a facilitator that reuses ids, or a row of the
        // interceptor in a shared table) is not this call's: keep it under an id of our own.
        const recorded = yield* ledger.record(input).pipe(
          Effect.catchIf(
            (error) => error.reason === "Conflict" && !id.startsWith(LOCAL_ID_PREFIX),
            () => ledger.record({ ...input, requestId: id = localId() })
          )
        )
        if (recorded._tag === "Duplicate") return yield* Effect.fail(new Raced(recorded.entry))
        requestId = id
        const claimed = yield* ledger.claim(id)
        if (claimed._tag !== "Claimed") return yield* Effect.fail(new Raced(recorded.entry))
        const value = yield* work(verified)
        const encoded = codec.encode(value)
        // The settle amount is decided after the work; the verified amount is its upper bound.
        charged = verified.credits
        kept = encoded
        return value
      }), {
      isError: options.isError,
      chargeOf: options.chargeOf
    }).pipe(
      Effect.tapError((error) =>
        Effect.sync(() => {
          if (error instanceof PaymentError.SettleFailed) charged = error.credits
        })
      )
    )
    const exit = yield* Effect.exit(attempt)
    if (requestId === undefined) {
      // Nothing recorded: verify failed, or a concurrent duplicate holds the key.
      if (exit._tag === "Failure") {
        const raced = exit.cause._tag === "Fail" && exit.cause.error instanceof Raced ? exit.cause.error : undefined
        // Answered as a retry of the attempt that won (its stored answer, or 409 while it runs).
        if (raced !== undefined) return yield* replay(paywall, call, token, raced.entry, codec, ledger)
        const ledgerFailure = exit.cause._tag === "Fail" && exit.cause.error instanceof SettlementLedger.LedgerError
          ? exit.cause.error
          : undefined
        if (ledgerFailure !== undefined) return yield* unavailable(ledgerFailure)
      }
      return yield* rethrow(exit)
    }
    const id: string = requestId
    const envelope = (credits: number) => kept === undefined ? undefined : encodeEnvelope({ credits, value: kept })
    let outcome: SettlementLedger.Outcome
    if (exit._tag === "Success") {
      const done = exit.value
      outcome = done._tag === "Settled"
        ? {
          _tag: "Settled",
          receipt: done.settlement,
          result: envelope(creditsOf(done.settlement.creditsRedeemed, charged))
        }
        : done._tag === "Released" && done.error.reason === "Indeterminate"
        ? { _tag: "Unknown", result: envelope(done.error.credits) }
        : { _tag: "Rejected" }
    } else {
      const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
      outcome = error instanceof PaymentError.SettleFailed && error.reason === "Indeterminate"
        ? { _tag: "Unknown", result: envelope(charged) }
        : { _tag: "Rejected" }
    }
    // Recorded after the answer is known; a ledger that fails now leaves the key `settling`, so a
    // retry is refused (`InProgress`) rather than charged again.
    yield* ledger.finish(id, outcome).pipe(
      Effect.catchAll((error) => Effect.logWarning(`x402 idempotency: ${error.message}`))
    )
    return yield* rethrow(exit)
  }) as Effect.Effect<Outcome<A>, PaymentError.PaymentFailure | IdempotencyError | E, Facilitator | R | R2>
}

// A ledger failure inside the attempt (record, claim) is the store's fault: `Unavailable`.
const rethrow = <A, E>(exit: Exit.Exit<A, E>): Effect.Effect<A, E | IdempotencyError> =>
  Effect.mapError(exit, (error) => error instanceof SettlementLedger.LedgerError ? unavailable(error) : error)

// The credits a receipt says were redeemed, else the amount asked for.
const creditsOf = (redeemed: unknown, fallback: number): number => {
  const credits = typeof redeemed === "string" || typeof redeemed === "number" ? Number(redeemed) : NaN
  return Number.isSafeInteger(credits) && credits >= 0 ? credits : fallback
}

const stateError = (entry: SettlementLedger.Entry): Effect.Effect<never, IdempotencyError> =>
  Effect.fail(
    new IdempotencyError({
      reason: entry.state === "rejected" ? "KeyRejected" : entry.state === "settled" ? "AlreadyPaid" : "InProgress"
    })
  )

// An earlier attempt holds the key.
const replay = <Req, R, Resp, A>(
  paywall: Paywall.Paywall<Req, R, Resp>,
  call: Paywall.Call<Req>,
  token: Redacted.Redacted<string>,
  entry: SettlementLedger.Entry,
  codec: Codec<A>,
  ledger: SettlementLedger.SettlementLedger.Service
): Effect.Effect<Outcome<A>, IdempotencyError | PaymentError.PaymentFailure, Facilitator | R> =>
  Effect.gen(function*() {
    const stored = entry.result === undefined ? Option.none() : decodeEnvelope(entry.result)
    const valueOf = (receipt: X402.SettleResponse | undefined) =>
      Option.flatMap(stored, (envelope) => codec.decode(envelope.value)).pipe(
        Option.match({
          onNone: () => Effect.fail(new IdempotencyError({ reason: "AlreadyPaid", settlement: receipt })),
          onSome: (value) =>
            Effect.succeed<Outcome<A>>({
              _tag: "Replayed",
              value,
              settlement: receipt ?? { success: true, transaction: "", network: "" }
            })
        })
      )
    switch (entry.state) {
      case "settled":
        return yield* valueOf(entry.receipt)
      case "unknown": {
        // Settling again is safe only with a single-use token: the backend refuses its second
        // settle (`BCK.X402.0059`), which proves the first landed. A reusable token could be charged
        // twice (nothing says the backend dedupes by request id), so its retry is never settled:
        // the stored result (or `AlreadyPaid`), nothing charged again. Fail closed on the double
        // charge; the seller risks at most the one charge whose answer was lost.
        if (!X402.isSingleUseAccessToken(token)) return yield* valueOf(undefined)
        const agentRequestId = issuedIdOf(entry.requestId)
        if (agentRequestId === undefined) return yield* new IdempotencyError({ reason: "Unresolved" })
        const paymentRequired = yield* Paywall.requirements(paywall, call.resourceUrl)
        const credits = Option.match(stored, { onNone: () => entry.amount, onSome: (e) => e.credits })
        const settled = yield* Paywall.settle(paywall, {
          paymentRequired,
          token,
          credits,
          agentRequestId,
          deadline: call.deadline
        }).pipe(Effect.either)
        let receipt: X402.SettleResponse
        if (Either.isRight(settled)) receipt = settled.right
        else if (landed(settled.left)) {
          // The first settle landed: this refusal is its proof. Its receipt was lost with its answer.
          receipt = {
            success: true,
            transaction: "",
            network: paymentRequired.accepts[0].network,
            creditsRedeemed: String(credits)
          } as X402.SettleResponse
        } else {
          if (settled.left.reason === "Rejected") {
            yield* ledger.resolveUnknown(entry.requestId, { _tag: "Rejected" }).pipe(Effect.ignore)
          }
          return yield* settled.left
        }
        const resolved = yield* ledger.resolveUnknown(entry.requestId, {
          _tag: "Settled",
          receipt,
          result: entry.result
        }).pipe(Effect.mapError(unavailable))
        return yield* valueOf(resolved.receipt)
      }
      default:
        return yield* stateError(entry)
    }
  })

// A settle refused because the same settlement already happened: `BCK.X402.0059` (single-use
// tokens), or a facilitator's `duplicate_settlement` answer for the same `agentRequestId`.
const landed = (error: PaymentError.SettleFailed): boolean =>
  PaymentError.isTokenAlreadyUsed(error) || error.settlement?.errorReason === "duplicate_settlement"
