/**
 * Section 5, the settlement ledger: what `record` + `claim` + `finish` (one paid call's ledger
 * work) costs with the in-memory layer, and how many DynamoDB requests the DynamoDB layer makes per
 * call, counted at a dynalite server on loopback (when dynalite is installed: `ledgerDynamo.ts`).
 */
import * as SettlementLedger from "@effect-x402/core/SettlementLedger"
import type * as X402 from "@effect-x402/core/X402"
import * as Effect from "effect/Effect"
import { type Budget, measure, type Stats } from "./harness.js"

export const MEMORY = "in-memory ledger: record + claim + finish"
export const EMPTY = "three no-op Effect.sync, chained per call (floor)"
/** Paid calls per timed run: one fiber runs them all, as an adapter runs the ledger in its own fiber. */
export const BATCH = 100

export interface DynamoResult {
  readonly available: true
  readonly calls: number
  /** DynamoDB requests per paid call, by operation (X-Amz-Target). */
  readonly perCall: Readonly<Record<string, number>>
  readonly perCallKeyed: Readonly<Record<string, number>>
  /** Median ms per paid call on loopback (dynalite; not DynamoDB's latency). */
  readonly medianMillis: number
}

export interface LedgerResult {
  readonly memory: ReadonlyArray<Stats>
  readonly dynamo: DynamoResult | { readonly available: false; readonly reason: string }
}

const receipt: X402.SettleResponse = { success: true, transaction: "0xbench", network: "nevermined:1" }
const payer = "tok_00c0ffee"

export const paidCall = (
  ledger: SettlementLedger.SettlementLedger.Service,
  requestId: string,
  idempotencyKey?: string
) =>
  ledger.record({ requestId, payer, amount: 1, idempotencyKey }).pipe(
    Effect.zipRight(ledger.claim(requestId)),
    Effect.zipRight(ledger.finish(requestId, { _tag: "Settled", receipt }))
  )

const noop = Effect.sync(() => 0)
// Chained per call with the same combinators as `paidCall`: that glue (`pipe`, data-last
// `zipRight`) is the bench's, not the ledger's, and showed as ~8 % of a paid call's profile when
// only the ledger side paid for it.
const floorCall = () => noop.pipe(Effect.zipRight(noop), Effect.zipRight(noop))

const batch = (call: (n: number) => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    for (let n = 0; n < BATCH; n++) yield* call(n)
  })

/**
 * The in-memory ledger's timing (per paid call), against three no-op operations. `pnpm bench` runs
 * it in the bundled child with sections 1 and 4 (`src/inProcess.ts`): plain JavaScript in a fresh
 * process, not after the other sections in the parent's heap under `tsx`.
 */
export const memoryLedger = async (budget: Budget): Promise<ReadonlyArray<Stats>> => {
  const memory = Effect.runSync(SettlementLedger.makeMemory())
  let i = 0
  const ids = Array.from({ length: 1 << 16 }, (_, n) => `req-${n}`)
  // Ids from a ring of 65,536 (past the default bound of 10,000, so records also evict), built
  // beforehand so the timing is the ledger's, not string building.
  const memoryRun = batch(() => paidCall(memory, ids[i++ & 0xffff]))
  const floorRun = batch(floorCall)
  const stats = await measure([
    { name: MEMORY, run: () => Effect.runSync(memoryRun) },
    { name: EMPTY, run: () => Effect.runSync(floorRun) }
  ], budget)
  // Per paid call.
  return stats.map((s) => ({
    ...s,
    min: s.min / BATCH,
    median: s.median / BATCH,
    p99: s.p99 / BATCH,
    mean: s.mean / BATCH
  }))
}
