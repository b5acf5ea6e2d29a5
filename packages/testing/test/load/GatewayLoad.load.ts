// Load (issue 6): 10,000 paid calls at concurrency 64, MCP over HTTP through the local gateway to a
// requiresPayment Lambda, whose live Nevermined layer talks HTTP to FakeNevermined; facilitator
// faults, refused tokens and failing tools are mixed in. The ledger must reconcile exactly with what
// the callers were told, and the heap must not grow with the number of calls.
//
// Run by `pnpm test:load` (vitest.load.config.ts, node --expose-gc); not part of `pnpm test`.
import { Nevermined, Paywall, X402 } from "@effect-x402/core"
import { AgentCore } from "@effect-x402/lambda"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { FakeNevermined, LocalGateway } from "@effect-x402/testing"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer, Logger, Redacted } from "effect"
import { injectFault, postToolCall, tokenFor } from "./loadCalls.js"

const PLAN = "plan-load"
const CALLS = Number(process.env.LOAD_CALLS ?? 10_000)
const WARMUP = Number(process.env.LOAD_WARMUP ?? 1_000)
const CONCURRENCY = Number(process.env.LOAD_CONCURRENCY ?? 64)
const BATCH = 1_000
const FUNDS = 1_000_000_000
const OUTPUT = "load-output"

/** What a call asks of the tool and of the facilitator. */
type Scenario =
  | "paid"
  | "noToken"
  | "forgedToken"
  | "toolIsError"
  | "toolThrows"
  | "badAmount"
  | "verify503"
  | "verify500"
  | "settle500"
  | "settleDroppedApplied"
  | "settle400"

// The mix: mostly paid calls, about one in five something else.
const MIX: ReadonlyArray<readonly [Scenario, number]> = [
  ["paid", 80],
  ["noToken", 2],
  ["forgedToken", 2],
  ["toolIsError", 3],
  ["toolThrows", 2],
  ["badAmount", 2],
  ["verify503", 2],
  ["verify500", 2],
  ["settle500", 2],
  ["settleDroppedApplied", 2],
  ["settle400", 1]
]
const TOTAL_WEIGHT = MIX.reduce((sum, [, w]) => sum + w, 0)

/** A small deterministic PRNG (mulberry32): the same mix on every run. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** What the caller was told. */
type Outcome =
  | { readonly _tag: "Paid"; readonly credits: number; readonly transaction: string }
  | { readonly _tag: "PaymentRequired" } // 402-style: no token, or a refused one
  | { readonly _tag: "Unavailable" } // verify failed: nothing ran, nothing charged
  | { readonly _tag: "Withheld"; readonly unknown: boolean } // settle failed: output withheld
  | { readonly _tag: "ToolFailed" } // the tool threw: nothing charged
  | { readonly _tag: "NotCharged" } // the tool answered isError: passed through, not charged

interface Call {
  readonly scenario: Scenario
  readonly token: string | undefined
  readonly charge: number
}

const classify = (status: number, headers: Headers, json: unknown): Outcome => {
  assert.strictEqual(status, 200, `gateway status ${status}: ${JSON.stringify(json).slice(0, 300)}`)
  const result = (json as { result: { isError?: boolean; content: Array<{ text: string }> } }).result
  const receiptHeader = headers.get("payment-response")
  const receipt = receiptHeader === null ? undefined : Either.getOrThrow(X402.ReceiptHeader.decodeEither(receiptHeader))
  if (result.isError !== true) {
    assert.strictEqual(result.content[0].text, OUTPUT)
    assert.isTrue(receipt?.success === true, "a paid output carries a success receipt")
    return { _tag: "Paid", credits: Number(receipt!.creditsRedeemed), transaction: receipt!.transactionHash }
  }
  const text = result.content[0].text
  if (text === "tool said no") return { _tag: "NotCharged" }
  const error = JSON.parse(text) as { code: number; error: string; message?: string }
  assert.notInclude(JSON.stringify(json), OUTPUT, "a failed call never carries the output")
  if (error.code === 402 && receipt === undefined) return { _tag: "PaymentRequired" }
  if (error.error === "Payment settlement failed") {
    assert.isFalse(receipt?.success ?? true, "a withheld output says success: false")
    return { _tag: "Withheld", unknown: error.message?.startsWith("Settlement outcome unknown") === true }
  }
  if (error.code === 502) return { _tag: "Unavailable" }
  if (error.code === 500) return { _tag: "ToolFailed" }
  throw new Error(`unexpected answer: ${text}`)
}

const heapUsed = () => {
  const gc = (globalThis as { gc?: () => void }).gc
  assert.isDefined(gc, "run with --expose-gc (pnpm test:load)")
  gc!()
  gc!()
  return process.memoryUsage().heapUsed
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`

describe("load: 10,000 paid calls through the local gateway", () => {
  it.scopedLive(
    `${CALLS} calls at concurrency ${CONCURRENCY}: the ledger reconciles, the heap stays flat`,
    () =>
      Effect.gen(function*() {
        const fake = yield* FakeNevermined.make()
        const { ledger } = fake
        ledger.addPlan({ planId: PLAN })
        ledger.fund(fake.subscriber, PLAN, FUNDS)

        const handler = requiresPayment({
          planId: PLAN,
          credits: 1,
          services: Logger.replace(Logger.defaultLogger, Logger.none),
          layer: Nevermined.layer({
            apiKey: fake.apiKey,
            backendUrl: fake.url,
            network: "eip155:84532",
            retry: { baseDelay: "5 millis", maxDelay: "50 millis" }
          }).pipe(Layer.provide(FetchHttpClient.layer))
        })((event) => {
          const args = AgentCore.toolCallOf(event)?.arguments ?? {}
          switch (args.scenario) {
            case "toolIsError":
              return { isError: true, content: [{ type: "text", text: "tool said no" }] }
            case "toolThrows":
              throw new Error("the tool broke")
            case "badAmount":
              return { content: [{ type: "text", text: OUTPUT }], _meta: { creditsToCharge: -1 } }
            default:
              return { content: [{ type: "text", text: OUTPUT }], _meta: { creditsToCharge: args.charge } }
          }
        })
        yield* Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose()))
        const gateway = yield* LocalGateway.make({ handler })

        const next = random(402)
        const plan = (): Call => {
          let pick = next() * TOTAL_WEIGHT
          const scenario = MIX.find(([, weight]) => (pick -= weight) < 0)![0]
          const charge = 1 + Math.floor(next() * 5)
          return { scenario, token: tokenFor(fake, scenario, PLAN), charge }
        }

        const send = async (call: Call, id: number): Promise<Outcome> => {
          injectFault(fake, call.scenario)
          const response = await postToolCall(gateway.url, call.token, id, {
            scenario: call.scenario,
            charge: call.charge
          })
          return classify(response.status, response.headers, await response.json())
        }

        const totals = {
          calls: 0,
          outcomes: {} as Record<string, number>,
          receipts: 0,
          burned: 0,
          unknownCharged: 0,
          unknownNotCharged: 0
        }

        /** Runs a batch at the concurrency, then reconciles it against the ledger and forgets it. */
        const batch = (size: number) =>
          Effect.promise(async () => {
            const calls = Array.from({ length: size }, plan)
            const outcomes: Array<Outcome> = new Array(size)
            let cursor = 0
            const worker = async () => {
              while (cursor < size) {
                const i = cursor++
                outcomes[i] = await send(calls[i], totals.calls + i)
              }
            }
            await Promise.all(Array.from({ length: Math.min(CONCURRENCY, size) }, worker))
            return { calls, outcomes }
          }).pipe(Effect.map(({ calls, outcomes }) => {
            // The ledger's settlements of this batch, by the fingerprint of the token that paid.
            const settled = new Map<string, Array<{ readonly credits: number; readonly agentRequestId?: string }>>()
            for (const record of ledger.calls) {
              if (record.operation !== "settle" || record.outcome !== "settled") continue
              const list = settled.get(record.token) ?? []
              list.push({
                credits: record.maxAmount,
                ...(record.agentRequestId ? { agentRequestId: record.agentRequestId } : {})
              })
              settled.set(record.token, list)
            }
            const transactions = new Map(ledger.settlements.map((s) => [s.transaction, s]))
            let batchBurned = 0
            for (const s of ledger.settlements) batchBurned += s.credits
            let batchReceipts = 0
            let batchUnknownCharged = 0
            for (let i = 0; i < calls.length; i++) {
              const call = calls[i]
              const outcome = outcomes[i]
              totals.outcomes[outcome._tag] = (totals.outcomes[outcome._tag] ?? 0) + 1
              const charges = call.token === undefined
                ? []
                : settled.get(Paywall.fingerprint(Redacted.make(call.token))) ?? []
              // No call is ever charged twice.
              assert.isAtMost(charges.length, 1, `call ${i} (${call.scenario}) charged twice`)
              switch (outcome._tag) {
                case "Paid": {
                  // A receipt names exactly one settlement of the ledger, for the amount the tool asked.
                  assert.strictEqual(charges.length, 1, `paid call ${i} without a settlement`)
                  assert.strictEqual(charges[0].credits, outcome.credits)
                  assert.strictEqual(outcome.credits, call.charge)
                  assert.strictEqual(transactions.get(outcome.transaction)?.credits, outcome.credits)
                  batchReceipts += outcome.credits
                  break
                }
                case "Withheld":
                  if (outcome.unknown) {
                    // An unknown outcome may or may not have burned the credits; the ledger says which.
                    if (charges.length === 1) {
                      totals.unknownCharged++
                      batchUnknownCharged += charges[0].credits
                    } else totals.unknownNotCharged++
                  } else {
                    assert.strictEqual(charges.length, 0, `withheld call ${i} (${call.scenario}) was charged`)
                  }
                  break
                default:
                  assert.strictEqual(charges.length, 0, `call ${i} (${call.scenario}, ${outcome._tag}) was charged`)
              }
            }
            // Receipts plus the unknown outcomes that did burn are exactly what the ledger burned.
            assert.strictEqual(batchReceipts + batchUnknownCharged, batchBurned)
            totals.receipts += batchReceipts
            totals.burned += batchBurned
            totals.calls += size // The fixtures record every request and call for assertions; forget this batch's records so
             // the heap measures the library, not the test's bookkeeping.
            ;(fake.requests as Array<unknown>).length = 0
            ;(gateway.invocations as Array<unknown>).length = 0
            ledger.calls.length = 0
            ledger.settlements.length = 0
            for (const call of calls) if (call.token !== undefined) ledger.revoke(call.token)
          }))

        const run = (calls: number) =>
          Effect.gen(function*() {
            for (let done = 0; done < calls; done += BATCH) yield* batch(Math.min(BATCH, calls - done))
          })

        yield* run(WARMUP)
        const warm = heapUsed()
        const started = performance.now()
        yield* run(CALLS)
        const seconds = (performance.now() - started) / 1000
        const end = heapUsed()

        // The ledger as a whole: every credit that left the subscriber's balance is accounted for.
        assert.strictEqual(FUNDS - ledger.balance(fake.subscriber, PLAN), totals.burned)
        assert.strictEqual(totals.calls, WARMUP + CALLS)
        assert.isAbove(totals.outcomes.Paid ?? 0, (WARMUP + CALLS) * 0.7)
        for (const tag of ["PaymentRequired", "Unavailable", "Withheld", "ToolFailed", "NotCharged"]) {
          assert.isAbove(totals.outcomes[tag] ?? 0, 0, `the mix produced ${tag}`)
        }
        assert.isAbove(totals.unknownCharged, 0, "an unknown outcome that did burn credits was reconciled")

        const summary = {
          calls: CALLS,
          concurrency: CONCURRENCY,
          seconds: Number(seconds.toFixed(1)),
          callsPerSecond: Math.round(CALLS / seconds),
          heapAfterWarmup: mb(warm),
          heapAtEnd: mb(end),
          heapRatio: Number((end / warm).toFixed(3)),
          outcomes: totals.outcomes,
          creditsBurned: totals.burned,
          receiptsTotal: totals.receipts,
          unknownOutcomes: { charged: totals.unknownCharged, notCharged: totals.unknownNotCharged }
        }
        console.log(`load summary ${JSON.stringify(summary)}`)
        assert.isAtMost(end, warm * 1.2, `heap grew from ${mb(warm)} to ${mb(end)}`)
      }),
    { timeout: 600_000 }
  )
})
