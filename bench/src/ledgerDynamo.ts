/**
 * Section 5's DynamoDB part: requests per paid call of the DynamoDB ledger layer, counted at a
 * dynalite server on loopback (run by `pnpm bench` in its own process, not in the bundled child: it
 * starts the repository's dynalite helper).
 */
import * as DynamoDbLedger from "@effect-x402/lambda/DynamoDbLedger"
import * as Effect from "effect/Effect"
import type * as DynamoDbServer from "../../packages/lambda/test/dynamoDbServer.js"
import { type LedgerResult, paidCall } from "./ledger.js"

/** The DynamoDB layer's requests per paid call, counted at dynalite (in the parent: it starts a server). */
export const dynamoLedger = async (calls: number): Promise<LedgerResult["dynamo"]> => {
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
