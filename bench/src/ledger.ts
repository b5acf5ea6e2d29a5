/**
 * Section 5, the settlement ledger: what `record` + `claim` + `finish` (one paid call's ledger
 * work) costs with the in-memory layer, and how many DynamoDB requests the DynamoDB layer makes per
 * call, counted at a dynalite server on loopback (when dynalite is installed).
 */
import * as SettlementLedger from "@effect-x402/core/SettlementLedger"
import type * as X402 from "@effect-x402/core/X402"
import * as DynamoDbLedger from "@effect-x402/lambda/DynamoDbLedger"
import * as Effect from "effect/Effect"
import type * as DynamoDbServer from "../../packages/lambda/test/dynamoDbServer.js"
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

const paidCall = (ledger: SettlementLedger.SettlementLedger.Service, requestId: string, idempotencyKey?: string) =>
  ledger.record({ requestId, payer, amount: 1, idempotencyKey }).pipe(
    Effect.zipRight(ledger.claim(requestId)),
    Effect.zipRight(ledger.finish(requestId, { _tag: "Settled", receipt }))
  )

const dynamo = async (calls: number): Promise<LedgerResult["dynamo"]> => {
  // The repository's one dynalite helper (the ledger tests' store on loopback).
  let Server: typeof DynamoDbServer
  try {
    Server = await import("../../packages/lambda/test/dynamoDbServer.js")
  } catch (error) {
    return { available: false, reason: `dynalite not available (${String(error).slice(0, 120)})` }
  }
  const store = await Server.start("x402-ledger-bench")
  const { endpoint, tableName } = store
  const { credentials, region } = Server
  const counts = store.requests
  try {
    const perCall = (keyed: boolean) =>
      Effect.gen(function*() {
        const ledger = yield* DynamoDbLedger.make({ tableName, endpoint, region, credentials })
        yield* paidCall(ledger, `warm-${keyed}`)
        counts.clear()
        const times: Array<number> = []
        for (let i = 0; i < calls; i++) {
          const t0 = performance.now()
          yield* paidCall(ledger, `call-${keyed}-${i}`, keyed ? `key-${i}` : undefined)
          times.push(performance.now() - t0)
        }
        const out: Record<string, number> = {}
        for (const [op, n] of counts) out[op] = n / calls
        times.sort((a, b) => a - b)
        return { out, median: times[Math.floor(times.length / 2)] ?? Number.NaN }
      }).pipe(Effect.scoped, Effect.runPromise)
    const plain = await perCall(false)
    const keyed = await perCall(true)
    return { available: true, calls, perCall: plain.out, perCallKeyed: keyed.out, medianMillis: plain.median }
  } finally {
    await store.close()
  }
}

const noop = Effect.sync(() => 0)
// Chained per call with the same combinators as `paidCall`: that glue (`pipe`, data-last
// `zipRight`) is the bench's, not the ledger's, and showed as ~8 % of a paid call's profile when
// only the ledger side paid for it.
const floorCall = () => noop.pipe(Effect.zipRight(noop), Effect.zipRight(noop))

const batch = (call: (n: number) => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    for (let n = 0; n < BATCH; n++) yield* call(n)
  })

export const ledger = async (budget: Budget & { readonly dynamoCalls: number }): Promise<LedgerResult> => {
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
  const memoryStats = stats.map((s) => ({
    ...s,
    min: s.min / BATCH,
    median: s.median / BATCH,
    p99: s.p99 / BATCH,
    mean: s.mean / BATCH
  }))
  return { memory: memoryStats, dynamo: await dynamo(budget.dynamoCalls) }
}
