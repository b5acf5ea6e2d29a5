/**
 * The settlement ledger: remembers each verified call (by payer fingerprint, library-issued request
 * id and optional idempotency key) through `verified → settling → settled | rejected | unknown`, so
 * that a replayed phase, a second instance or a retrying client can never settle one verification
 * twice. `layerMemory` serves one instance; `@effect-x402/lambda/DynamoDbLedger` shares one table
 * between many.
 *
 * @since 0.2.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as X402 from "./X402.js"

/**
 * Where a verification stands. `verified` (recorded, not yet settled) → `settling` (one instance
 * holds it and is talking to the facilitator) → `settled` (with the receipt), `rejected` (a definite
 * no) or `unknown` (the settle request left but no usable answer came back). Only `unknown` moves
 * again, to `settled` or `rejected`, through `resolveUnknown`.
 *
 * @since 0.2.0
 * @category models
 */
export const State = /* @__PURE__ */ Schema.Literal("verified", "settling", "settled", "rejected", "unknown")

/**
 * @since 0.2.0
 * @category models
 */
export type State = typeof State.Type

/**
 * One verified call as the ledger holds it. Never a token: `payer` is `Paywall.fingerprint(token)`.
 * Times are epoch milliseconds from `Clock`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Entry = /* @__PURE__ */ Schema.Struct({
  requestId: Schema.NonEmptyString,
  payer: Schema.NonEmptyString,
  idempotencyKey: /* @__PURE__ */ Schema.optional(Schema.String),
  amount: Schema.NonNegativeInt,
  state: State,
  /** The facilitator's answer, when `settled`. */
  receipt: /* @__PURE__ */ Schema.optional(X402.SettleResponse),
  /** The paid result as the adapter serialised it, when kept (see `Options.maxResultBytes`). */
  result: /* @__PURE__ */ Schema.optional(Schema.String),
  /** True when a result was offered but was over the byte cap, so it was not kept. */
  resultDropped: Schema.Boolean,
  /**
   * What a later phase that cannot see the request needs (the interceptor's RESPONSE phase of an
   * HTTP target, or without request headers), sealed by the adapter: encrypted and authenticated
   * under a key the store never holds, bound to the request id. Never a token in clear.
   *
   * @since 0.3.0
   */
  sealed: /* @__PURE__ */ Schema.optional(Schema.String),
  createdAt: Schema.Number,
  updatedAt: Schema.Number,
  expiresAt: Schema.Number
})

/**
 * @since 0.2.0
 * @category models
 */
export interface Entry extends Schema.Schema.Type<typeof Entry> {}

/**
 * Why a ledger operation failed:
 * - `Unavailable`: the store did not answer (down, slow past the timeout, throttled); fail closed;
 * - `Conflict`: the transition is not allowed from the current state (e.g. a replayed `finish`), or
 *   the request id is already recorded;
 * - `NotFound`: no live entry under this request id;
 * - `Corrupt`: the store returned a row this version does not recognise (never trusted);
 * - `InvalidInput`: an empty id, a key too long for the store, a bad amount.
 *
 * @since 0.2.0
 * @category errors
 */
export const LedgerErrorReason = /* @__PURE__ */ Schema.Literal(
  "Unavailable",
  "Conflict",
  "NotFound",
  "Corrupt",
  "InvalidInput"
)

/**
 * @since 0.2.0
 * @category errors
 */
export type LedgerErrorReason = typeof LedgerErrorReason.Type

/**
 * A failed ledger operation. Its message names the operation, reason and request id, never a token.
 *
 * @since 0.2.0
 * @category errors
 */
export class LedgerError
  extends /* @__PURE__ */ Schema.TaggedError<LedgerError>("@effect-x402/core/LedgerError")("LedgerError", {
    reason: LedgerErrorReason,
    operation: Schema.String,
    requestId: /* @__PURE__ */ Schema.optional(Schema.String),
    /** The state found, for a `Conflict`. */
    state: /* @__PURE__ */ Schema.optional(State),
    detail: /* @__PURE__ */ Schema.optional(Schema.String),
    cause: /* @__PURE__ */ Schema.optional(Schema.Defect)
  })
{
  override get message(): string {
    const id = this.requestId !== undefined ? ` ${this.requestId}` : ""
    const state = this.state !== undefined ? ` (state ${this.state})` : ""
    const detail = this.detail !== undefined ? `: ${this.detail}` : ""
    return `Settlement ledger ${this.operation}${id} failed: ${this.reason}${state}${detail}`
  }
}

/**
 * What `record` writes.
 *
 * @since 0.2.0
 * @category models
 */
export interface RecordInput {
  /** The library-issued request id (the interceptor injects it; the facilitator's `agentRequestId`). */
  readonly requestId: string
  /** `Paywall.fingerprint(token)`: never the token. */
  readonly payer: string
  /** Credits verified. */
  readonly amount: number
  /** The x402 `payment-identifier` id or an `Idempotency-Key` header; scoped by `payer`. */
  readonly idempotencyKey?: string | undefined
  /**
   * Opaque correlation material the adapter sealed for its own later phase (see `Entry.sealed`):
   * stored as given, never read by the ledger.
   *
   * @since 0.3.0
   */
  readonly sealed?: string | undefined
}

/**
 * The answer of `record`: a new entry, or the entry the idempotency key already names (the retry of
 * a call already recorded: do not verify or settle it again).
 *
 * @since 0.2.0
 * @category models
 */
export type Recorded =
  | { readonly _tag: "Recorded"; readonly entry: Entry }
  | { readonly _tag: "Duplicate"; readonly entry: Entry }

/**
 * The answer of `claim`: `Claimed` (this caller moved it to `settling` and alone may settle), or
 * `Taken` (someone else did: the entry says whether it is settling, settled with its receipt,
 * rejected or unknown), or `Absent` (never recorded, or expired: do not settle).
 *
 * @since 0.2.0
 * @category models
 */
export type Claim =
  | { readonly _tag: "Claimed"; readonly entry: Entry }
  | { readonly _tag: "Taken"; readonly entry: Entry }
  | { readonly _tag: "Absent" }

/**
 * How a settle attempt ended, for `finish` (and `resolveUnknown`, which takes `Settled` or `Rejected`).
 *
 * @since 0.2.0
 * @category models
 */
export type Outcome =
  | {
    readonly _tag: "Settled"
    readonly receipt: X402.SettleResponse
    /** The paid result, serialised, to answer a retry with; dropped over the byte cap. */
    readonly result?: string | undefined
  }
  | { readonly _tag: "Rejected" }
  | {
    readonly _tag: "Unknown"
    /**
     * The paid result, serialised, kept so that a retry (once the attempt resolves as settled) can
     * be answered with it; dropped over the byte cap.
     */
    readonly result?: string | undefined
  }

/**
 * @since 0.2.0
 * @category tags
 */
export class SettlementLedger extends Context.Tag("@effect-x402/core/SettlementLedger")<
  SettlementLedger,
  SettlementLedger.Service
>() {}

/**
 * @since 0.2.0
 */
export declare namespace SettlementLedger {
  /**
   * Every transition is a compare-and-set on the current state: of any number of concurrent callers
   * (instances) only one moves an entry; the others are told what it now is.
   *
   * @since 0.2.0
   * @category models
   */
  export interface Service {
    /**
     * Records a verified call as `verified`, only if its request id is not recorded yet (else
     * `Conflict`). With an idempotency key already used by this payer, nothing is written and the
     * existing entry comes back as `Duplicate`.
     */
    readonly record: (input: RecordInput) => Effect.Effect<Recorded, LedgerError>
    /** Moves `verified → settling` for the caller that will settle; tells the others what it is. */
    readonly claim: (requestId: string) => Effect.Effect<Claim, LedgerError>
    /**
     * Ends a settle attempt: `settling → settled | rejected | unknown`. Anything else (a replayed
     * finish, an entry never claimed) is a `Conflict`; an expired or unknown id is `NotFound`.
     */
    readonly finish: (requestId: string, outcome: Outcome) => Effect.Effect<Entry, LedgerError>
    /**
     * Settles the question of an `unknown` attempt: `unknown → settled | rejected`. For the
     * single-use-token rule: a later settle refused with BCK.X402.0059 means the first one landed.
     */
    readonly resolveUnknown: (
      requestId: string,
      outcome: Exclude<Outcome, { readonly _tag: "Unknown" }>
    ) => Effect.Effect<Entry, LedgerError>
    /** The live entry of a request id (an expired one is absent). */
    readonly get: (requestId: string) => Effect.Effect<Option.Option<Entry>, LedgerError>
    /** The live entry an idempotency key of this payer names, to look up before verifying a retry. */
    readonly findByKey: (payer: string, key: string) => Effect.Effect<Option.Option<Entry>, LedgerError>
    /**
     * True when every operation completes at once, in the calling fiber, with no I/O to wait for
     * (the in-memory ledger): it cannot outlast a call's deadline, so a caller need not race it
     * against one (a race is two fibers and a timer per operation).
     *
     * @since 0.4.0
     */
    readonly immediate?: boolean | undefined
  }
}

/**
 * Options common to the ledger layers.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** How long an entry lives after it is recorded. Default 24 hours. */
  readonly ttl?: Duration.DurationInput | undefined
  /** The largest stored result, in UTF-8 bytes; a larger one is dropped (`resultDropped`). Default 32 KiB. */
  readonly maxResultBytes?: number | undefined
}

/**
 * Options of `layerMemory`.
 *
 * @since 0.2.0
 * @category models
 */
export interface MemoryOptions extends Options {
  /**
   * The most entries kept (default 10,000). When full, a new record first drops expired entries,
   * then the oldest ones: with one TTL for all entries, insertion order is expiry order, so both
   * come off the front. An evicted entry is forgotten: keep the bound above the calls one instance
   * serves in a TTL.
   */
  readonly maxEntries?: number | undefined
}

/**
 * Default TTL of an entry.
 *
 * @since 0.2.0
 * @category constants
 */
export const DEFAULT_TTL: Duration.Duration = Duration.hours(24)

/**
 * Default cap of a stored result, in UTF-8 bytes (well under DynamoDB's 400 KB item limit).
 *
 * @since 0.2.0
 * @category constants
 */
export const DEFAULT_MAX_RESULT_BYTES = 32 * 1024

/**
 * The longest idempotency key accepted (DynamoDB keys are at most 2 KB).
 *
 * @since 0.2.0
 * @category constants
 */
export const MAX_KEY_LENGTH = 255

const encoder = new TextEncoder()

/**
 * Whether a result fits the cap, without encoding it when its length alone decides (UTF-8 takes
 * 1 to 3 bytes per UTF-16 unit).
 *
 * @since 0.2.0
 * @category internals
 */
export const fitsCap = (result: string, maxBytes: number): boolean => {
  if (result.length > maxBytes) return false
  if (result.length * 3 <= maxBytes) return true
  return encoder.encode(result).length <= maxBytes
}

// Why a `record` input is refused, or undefined: a plain function (no closure per call), since
// `record` runs on every paid call.
const invalidDetail = (input: RecordInput): string | undefined => {
  if (typeof input.requestId !== "string" || input.requestId.length === 0) return "empty request id"
  if (typeof input.payer !== "string" || input.payer.length === 0) return "empty payer"
  if (!Number.isSafeInteger(input.amount) || input.amount < 0) return "amount is not a credit amount"
  if (input.sealed !== undefined && (typeof input.sealed !== "string" || input.sealed.length === 0)) {
    return "sealed value is not a non-empty string"
  }
  const key = input.idempotencyKey
  if (key !== undefined) {
    if (typeof key !== "string") return "idempotency key is not a string"
    if (key.length === 0) return "empty idempotency key"
    if (key.length > MAX_KEY_LENGTH) return `idempotency key over ${MAX_KEY_LENGTH} characters`
  }
  return undefined
}

/**
 * Validates a `record` input: the same rule in every layer.
 *
 * @since 0.2.0
 * @category internals
 */
export const validateRecord = (input: RecordInput): LedgerError | undefined => {
  const detail = invalidDetail(input)
  return detail === undefined
    ? undefined
    : new LedgerError({ reason: "InvalidInput", operation: "record", requestId: input.requestId, detail })
}

/**
 * The fields `finish` / `resolveUnknown` write for an outcome.
 *
 * @since 0.2.0
 * @category internals
 */
export const outcomeFields = (
  outcome: Outcome,
  maxResultBytes: number
): Pick<Entry, "state" | "receipt" | "result" | "resultDropped"> => {
  switch (outcome._tag) {
    case "Settled": {
      const result = outcome.result
      const kept = result === undefined || fitsCap(result, maxResultBytes)
      return { state: "settled", receipt: outcome.receipt, result: kept ? result : undefined, resultDropped: !kept }
    }
    case "Rejected":
      return { state: "rejected", receipt: undefined, result: undefined, resultDropped: false }
    case "Unknown": {
      const result = outcome.result
      const kept = result === undefined || fitsCap(result, maxResultBytes)
      return { state: "unknown", receipt: undefined, result: kept ? result : undefined, resultDropped: !kept }
    }
  }
}

const scopedKey = (payer: string, key: string) => `${payer}#${key}`

// Every in-memory entry has all its keys, in one order: one hidden class, so that building the
// next state stays cheap (spreads over entries of varying shapes were most of a paid call's cost).
// The fields come as arguments, not as an object, so a transition allocates the new entry only.
const nextEntry = (
  entry: Entry,
  state: State,
  receipt: X402.SettleResponse | undefined,
  result: string | undefined,
  resultDropped: boolean,
  now: number
): Entry => ({
  requestId: entry.requestId,
  payer: entry.payer,
  idempotencyKey: entry.idempotencyKey,
  amount: entry.amount,
  state,
  receipt,
  result,
  resultDropped,
  // Needed only until the settle attempt ends: an ended entry keeps no sealed material.
  sealed: state === "settling" ? entry.sealed : undefined,
  createdAt: entry.createdAt,
  updatedAt: now,
  expiresAt: entry.expiresAt
})

/**
 * An in-memory ledger for one instance, on the current `Clock`. Synchronous under the hood: each
 * operation is one or two Effect operations around plain code that reads the clock once and
 * touches two maps, so a paid call's `record` + `claim` + `finish` costs about 2 µs (`pnpm bench
 * --only ledger`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeMemory = (options?: MemoryOptions): Effect.Effect<SettlementLedger.Service> =>
  Effect.clockWith((clock) => Effect.sync(() => makeMemoryWith(clock, options)))

// One mutable cell per recorded entry (transitions replace `cell.entry`); the queue holds the cells
// in the order they were recorded.
interface Cell {
  entry: Entry
  /** False once dropped (expired or evicted): saves a map lookup to tell a queued cell is gone. */
  live: boolean
}

const makeMemoryWith = (clock: Clock.Clock, options: MemoryOptions | undefined): SettlementLedger.Service => {
  const ttlMillis = Duration.toMillis(Duration.decode(options?.ttl ?? DEFAULT_TTL))
  const maxResultBytes = options?.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES
  const maxEntries = Math.max(1, options?.maxEntries ?? 10_000)
  // The queue's head is the oldest cell and, with one TTL for every entry, the first to expire, so
  // eviction pops it in O(1) (iterating a Map from its front instead walks the holes its deletions
  // leave, which cost tens of µs per call when full).
  const entries = new Map<string, Cell>()
  const keys = new Map<string, string>()
  let queue: Array<Cell> = []
  let head = 0

  // A cell leaves the map only here, so `cell.live` says whether the map still holds it.
  const drop = (cell: Cell): void => {
    if (!cell.live) return
    cell.live = false
    const entry = cell.entry
    entries.delete(entry.requestId)
    if (entry.idempotencyKey !== undefined) {
      const scoped = scopedKey(entry.payer, entry.idempotencyKey)
      if (keys.get(scoped) === entry.requestId) keys.delete(scoped)
    }
  }
  const live = (requestId: string, now: number): Cell | undefined => {
    const cell = entries.get(requestId)
    if (cell === undefined) return undefined
    if (cell.entry.expiresAt <= now) {
      drop(cell)
      return undefined
    }
    return cell
  }
  const enqueue = (cell: Cell): void => {
    queue.push(cell)
    // Cells dropped on read (expired) stay queued: compact once the dead ones could outnumber the
    // live ones, so the queue stays within about twice the bound.
    if (queue.length - head > 2 * maxEntries + 16) {
      queue = queue.slice(head).filter((c) => c.live)
      head = 0
    }
  }
  // Expired first, then oldest: both are at the head of the queue.
  const makeRoom = (): void => {
    while (entries.size >= maxEntries && head < queue.length) {
      drop(queue[head])
      queue[head] = undefined as unknown as Cell
      head++
    }
    if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head)
      head = 0
    }
  }

  // A `Conflict` is an answer of the ledger's protocol (the interceptor's RESPONSE records again and
  // expects it), built on a hot path: its request id is a live entry's key and its state one of
  // `State`, valid by construction (so no Schema validation), and a stack through the fiber's run
  // loop says nothing about it (so none).
  const conflict = (fields: ConstructorParameters<typeof LedgerError>[0]): Exit.Exit<never, LedgerError> => {
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    try {
      return Exit.fail(new LedgerError(fields, true))
    } finally {
      Error.stackTraceLimit = limit
    }
  }

  // The operations below are plain functions of the current time. The clock is read directly
  // (captured when the ledger is made, so `TestClock` works in tests): `Effect.clockWith` on every
  // operation cost more than the operation itself. Each operation is then one `Effect.sync` (when
  // it cannot fail) or one `Effect.suspend` answering with an `Exit` (which is itself an Effect):
  // the fewest Effect operations that keep it lazy.
  const recordNow = (input: RecordInput): Exit.Exit<Recorded, LedgerError> => {
    const detail = invalidDetail(input)
    if (detail !== undefined) {
      return Exit.fail(
        new LedgerError({ reason: "InvalidInput", operation: "record", requestId: input.requestId, detail })
      )
    }
    const now = clock.unsafeCurrentTimeMillis()
    const { idempotencyKey, payer, requestId } = input
    if (idempotencyKey !== undefined) {
      const existingId = keys.get(scopedKey(payer, idempotencyKey))
      const existing = existingId !== undefined ? live(existingId, now) : undefined
      if (existing !== undefined) return Exit.succeed({ _tag: "Duplicate", entry: existing.entry })
    }
    if (live(requestId, now) !== undefined) {
      return conflict({ reason: "Conflict", operation: "record", requestId })
    }
    if (entries.size >= maxEntries) makeRoom()
    const entry: Entry = {
      requestId,
      payer,
      idempotencyKey,
      amount: input.amount,
      state: "verified",
      receipt: undefined,
      result: undefined,
      resultDropped: false,
      sealed: input.sealed,
      createdAt: now,
      updatedAt: now,
      expiresAt: now + ttlMillis
    }
    const cell: Cell = { entry, live: true }
    entries.set(requestId, cell)
    enqueue(cell)
    if (idempotencyKey !== undefined) keys.set(scopedKey(payer, idempotencyKey), requestId)
    return Exit.succeed({ _tag: "Recorded", entry })
  }

  const claimNow = (requestId: string): Claim => {
    const now = clock.unsafeCurrentTimeMillis()
    const cell = live(requestId, now)
    if (cell === undefined) return ABSENT
    if (cell.entry.state !== "verified") return { _tag: "Taken", entry: cell.entry }
    const entry = nextEntry(cell.entry, "settling", undefined, undefined, false, now)
    cell.entry = entry
    return { _tag: "Claimed", entry }
  }

  // `finish` (from `settling`) and `resolveUnknown` (from `unknown`): a compare-and-set on the state.
  const transitionNow = (
    operation: string,
    requestId: string,
    from: State,
    outcome: Outcome
  ): Exit.Exit<Entry, LedgerError> => {
    const now = clock.unsafeCurrentTimeMillis()
    const cell = live(requestId, now)
    if (cell === undefined) return Exit.fail(new LedgerError({ reason: "NotFound", operation, requestId }))
    const current = cell.entry
    if (current.state !== from) {
      return conflict({ reason: "Conflict", operation, requestId, state: current.state })
    }
    let entry: Entry
    switch (outcome._tag) {
      case "Settled": {
        const result = outcome.result
        const kept = result === undefined || fitsCap(result, maxResultBytes)
        entry = nextEntry(current, "settled", outcome.receipt, kept ? result : undefined, !kept, now)
        break
      }
      case "Rejected":
        entry = nextEntry(current, "rejected", undefined, undefined, false, now)
        break
      case "Unknown": {
        const result = outcome.result
        const kept = result === undefined || fitsCap(result, maxResultBytes)
        entry = nextEntry(current, "unknown", undefined, kept ? result : undefined, !kept, now)
        break
      }
      default:
        // Not an outcome this version knows: never a transition.
        return Exit.fail(new LedgerError({ reason: "InvalidInput", operation, requestId, detail: "unknown outcome" }))
    }
    cell.entry = entry
    return Exit.succeed(entry)
  }

  return {
    immediate: true,
    record: (input) => Effect.suspend(() => recordNow(input)),
    claim: (requestId) => Effect.sync(() => claimNow(requestId)),
    finish: (requestId, outcome) => Effect.suspend(() => transitionNow("finish", requestId, "settling", outcome)),
    resolveUnknown: (requestId, outcome) =>
      Effect.suspend(() => transitionNow("resolveUnknown", requestId, "unknown", outcome)),
    get: (requestId) => Effect.sync(() => Option.fromNullable(live(requestId, clock.unsafeCurrentTimeMillis())?.entry)),
    findByKey: (payer, key) =>
      Effect.sync(() => {
        const id = keys.get(scopedKey(payer, key))
        return Option.fromNullable(id !== undefined ? live(id, clock.unsafeCurrentTimeMillis())?.entry : undefined)
      })
  }
}

const ABSENT: Claim = { _tag: "Absent" }

/**
 * The ledger an adapter uses: the `SettlementLedger` of the context when the user provides one
 * (e.g. DynamoDB, shared by every instance), else an in-memory ledger made on first use and kept
 * (one per adapter, so per cold start). Nothing is made at construction: a paywall that never
 * needs a ledger never builds one.
 *
 * @since 0.2.0
 * @category constructors
 */
export const contextOrMemory = (options?: MemoryOptions): Effect.Effect<SettlementLedger.Service> => {
  const ledgerIn = unsafeContextOrMemory(options)
  return Effect.withFiberRuntime((fiber) =>
    Effect.succeed(ledgerIn(fiber.currentContext, Context.get(fiber.currentDefaultServices, Clock.Clock)))
  )
}

/**
 * `contextOrMemory` as a plain function of a fiber's context and clock, for an adapter that reads
 * both once per call anyway (inside `Effect.withFiberRuntime`): the ledger without an Effect
 * operation of its own. The in-memory ledger is made on first use, on that call's clock, and kept.
 *
 * @since 0.4.0
 * @category constructors
 */
export const unsafeContextOrMemory = (
  options?: MemoryOptions
): (context: Context.Context<never>, clock: Clock.Clock) => SettlementLedger.Service => {
  let memory: SettlementLedger.Service | undefined
  return (context, clock) =>
    Context.getOrElse(context as Context.Context<SettlementLedger>, SettlementLedger, noLedger) ??
      (memory ??= makeMemoryWith(clock, options))
}

const noLedger = (): undefined => undefined

/**
 * The in-memory ledger (the default): one instance's memory, bounded by `maxEntries`. Enough for a
 * single instance, or for `requiresPayment`, whose verify, work and settle run in one invocation.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory = (options?: MemoryOptions): Layer.Layer<SettlementLedger> =>
  Layer.effect(SettlementLedger, makeMemory(options))
