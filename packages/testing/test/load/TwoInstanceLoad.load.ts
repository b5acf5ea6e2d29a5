// Load on two instances (issue 13): paid calls through the local gateway to the two-phase
// interceptor, run as two Lambda instances (two `interceptor(...)` handlers, each with its own
// runtime and DynamoDB client) sharing one settlement-ledger table in dynalite on loopback. Every
// call's REQUEST runs on one instance and its RESPONSE on the other; the live Nevermined layer
// talks HTTP to FakeNevermined. Mixed in: settle timeouts (applied or not), refused settles, a
// dropped settle that was applied, failing and refusing tools, replayed RESPONSE events (the same
// event again on both instances) and concurrent RESPONSEs for one verification (three at once,
// across both instances).
//
// The assertions: no verification and no token is ever settled twice; every output carries a
// receipt that names one settlement, and every settlement is a `settled` row with that receipt or
// an `unknown` row (a settle whose answer was lost); the rows, FakeNevermined's settlements, the
// receipts and the unknown outcomes add up to exactly the credits that left the balance.
//
// LocalGateway calls one handler for both phases, so the routing to two instances is here: a
// handler that picks the instance by phase and call. A replayed or concurrent RESPONSE is the
// recorded RESPONSE event sent to the instances again, as a retrying gateway (or an attacker who
// can invoke the Lambda) would.
//
// Run by `pnpm test:load` (vitest.load.config.ts); sized for CI on 2 cores (dynalite takes ~15 ms a
// paid call): LOAD2_CALLS (default 800) at LOAD2_CONCURRENCY (default 16).
import { Nevermined, Paywall, X402 } from "@effect-x402/core"
import { Adapter } from "@effect-x402/core"
import { AgentCore } from "@effect-x402/lambda"
import * as DynamoDbLedger from "@effect-x402/lambda/DynamoDbLedger"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { FakeNevermined, LocalGateway } from "@effect-x402/testing"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer, Logger, Redacted } from "effect"
import * as Dynalite from "../../../lambda/test/dynamoDbServer.js"
import { injectFault, postToolCall, tokenFor } from "./loadCalls.js"

const PLAN = "plan-two-instances"
const CALLS = Number(process.env.LOAD2_CALLS ?? 800)
const CONCURRENCY = Number(process.env.LOAD2_CONCURRENCY ?? 16)
const FUNDS = 1_000_000_000
const OUTPUT = "two-instance-output"
/** Both instances seal request ids with it: one agent, many instances (`X402_REQUEST_SEAL_KEY`). */
const SEAL_KEY = Redacted.make("load-test-seal-key-shared-by-both-instances")

type Scenario =
  | "paid"
  | "noToken"
  | "forgedToken"
  | "toolIsError"
  | "toolFails"
  | "verify500"
  | "settleTimeoutApplied"
  | "settleTimeoutNotApplied"
  | "settle500"
  | "settleDroppedApplied"
  | "settle400"
  | "replayedResponse"
  | "concurrentResponses"

const MIX: ReadonlyArray<readonly [Scenario, number]> = [
  ["paid", 66],
  ["noToken", 2],
  ["forgedToken", 2],
  ["toolIsError", 3],
  ["toolFails", 2],
  ["verify500", 2],
  ["settleTimeoutApplied", 2],
  ["settleTimeoutNotApplied", 2],
  ["settle500", 2],
  ["settleDroppedApplied", 2],
  ["settle400", 1],
  ["replayedResponse", 8],
  ["concurrentResponses", 8]
]
const TOTAL_WEIGHT = MIX.reduce((sum, [, w]) => sum + w, 0)

/** mulberry32: the same mix on every run. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

interface Call {
  readonly n: number
  readonly scenario: Scenario
  readonly token: string | undefined
  readonly charge: number
  /** The instance of the REQUEST phase; the RESPONSE runs on the other. */
  readonly requestOn: 0 | 1
}

/** What the caller was told. */
type Outcome =
  | { readonly _tag: "Paid"; readonly credits: number; readonly transaction: string }
  | { readonly _tag: "PaymentRequired" }
  | { readonly _tag: "Unavailable" }
  | { readonly _tag: "Withheld"; readonly unknown: boolean }
  | { readonly _tag: "ToolFailed" }
  | { readonly _tag: "NotCharged" }

interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: unknown
}

const headerOf = (headers: Readonly<Record<string, string>>, name: string): string | undefined => {
  for (const key of Object.keys(headers)) if (key.toLowerCase() === name) return headers[key]
  return undefined
}

/** Classifies an answer, HTTP (from the gateway) or an `InterceptorOutput`'s response (a replay). */
const classify = (answer: Answer): Outcome => {
  const { body, headers, status } = answer
  if (status === 500) {
    // The target failed: its error answer passes through, nothing charged.
    assert.notInclude(JSON.stringify(body), OUTPUT)
    return { _tag: "ToolFailed" }
  }
  assert.strictEqual(status, 200, `status ${status}: ${JSON.stringify(body).slice(0, 300)}`)
  const result = (body as { result: { isError?: boolean; content: Array<{ text: string }> } }).result
  const receiptHeader = headerOf(headers, "payment-response")
  const receipt = receiptHeader === undefined
    ? undefined
    : Either.getOrThrow(X402.ReceiptHeader.decodeEither(receiptHeader))
  if (result.isError !== true) {
    assert.strictEqual(result.content[0].text, OUTPUT)
    assert.isTrue(receipt?.success === true, "an output carries a success receipt")
    return { _tag: "Paid", credits: Number(receipt!.creditsRedeemed), transaction: receipt!.transactionHash }
  }
  const text = result.content[0].text
  if (text === "tool said no") return { _tag: "NotCharged" }
  assert.notInclude(JSON.stringify(body), OUTPUT, "a failed call never carries the output")
  const error = JSON.parse(text) as { code: number; error: string; message?: string }
  if (error.code === 402 && receipt === undefined) return { _tag: "PaymentRequired" }
  if (error.error === "Payment settlement failed") {
    assert.isFalse(receipt?.success ?? true, "a withheld output says success: false")
    return { _tag: "Withheld", unknown: error.message?.startsWith("Settlement outcome unknown") === true }
  }
  if (error.code === 502) return { _tag: "Unavailable" }
  throw new Error(`unexpected answer: ${text}`)
}

const outputAnswer = (output: AgentCore.InterceptorOutput): Answer => {
  const response = output.mcp.transformedGatewayResponse
  assert.isDefined(response, "a RESPONSE phase answers with a response")
  return { status: response!.statusCode, headers: response!.headers ?? {}, body: response!.body }
}

const isResponsePhase = (event: AgentCore.InterceptorInput) =>
  Adapter.own(Adapter.own(event, "mcp"), "gatewayResponse") !== undefined

describe("load: two interceptor instances sharing a DynamoDB ledger (dynalite)", () => {
  it.scopedLive(
    `${CALLS} calls at concurrency ${CONCURRENCY}, REQUEST and RESPONSE on different instances: no double settlement, ledger reconciled`,
    () =>
      Effect.gen(function*() {
        const store = yield* Effect.acquireRelease(Effect.promise(() => Dynalite.start("x402-ledger-load")), (s) =>
          Effect.promise(() => s.close()))
        const fake = yield* FakeNevermined.make()
        const { ledger } = fake
        ledger.addPlan({ planId: PLAN })
        ledger.fund(fake.subscriber, PLAN, FUNDS)

        // Logs are kept (not printed), to check that no token ever reaches them.
        const logs: Array<string> = []
        const keepLogs = Logger.replace(
          Logger.defaultLogger,
          Logger.make(({ message }) => {
            logs.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
          })
        )
        // One instance: its own runtime, facilitator client and DynamoDB client, the shared table.
        const instance = () =>
          interceptor({
            planId: PLAN,
            credits: 1,
            requestSealKey: SEAL_KEY,
            layer: Nevermined.layer({
              apiKey: fake.apiKey,
              backendUrl: fake.url,
              network: "eip155:84532",
              // A settle that never answers is given up after a second: the outcome is unknown.
              timeouts: { settle: "1 second" },
              retry: { baseDelay: "5 millis", maxDelay: "50 millis" }
            }).pipe(Layer.provide(FetchHttpClient.layer)),
            services: Layer.merge(
              keepLogs,
              DynamoDbLedger.layer({
                tableName: store.tableName,
                endpoint: store.endpoint,
                region: Dynalite.region,
                credentials: Dynalite.credentials,
                // The store is not a fault here (see DynamoDbLedger.test.ts for those): generous
                // timeouts, so that a loaded CI machine does not turn into store outages.
                timeout: "10 seconds"
              })
            )
          })
        const instances = [instance(), instance()] as const
        for (const handler of instances) {
          yield* Effect.addFinalizer(() =>
            Effect.promise(() => handler.runtime.dispose())
          )
        }

        const byN = new Map<number, Call>()
        // What the extra RESPONSE deliveries of a call answered (replays and concurrent ones).
        const extra = new Map<number, Array<Outcome>>()
        const phases = { request: [0, 0], response: [0, 0] }

        const route: LocalGateway.LambdaHandler = async (event, context) => {
          const n = Number(AgentCore.toolCallOf(event)?.arguments.n)
          const call = byN.get(n)
          if (call === undefined) throw new Error(`no call ${n}`)
          if (!isResponsePhase(event)) {
            phases.request[call.requestOn]++
            return instances[call.requestOn](event, context)
          }
          const on = (1 - call.requestOn) as 0 | 1
          phases.response[on]++
          switch (call.scenario) {
            case "replayedResponse": {
              // Delivered, answered; then the same event again on each instance.
              const first = await instances[on](event, context)
              const replays = await Promise.all([
                instances[call.requestOn](event, context),
                instances[on](event, context)
              ])
              extra.set(n, replays.map((output) => classify(outputAnswer(output))))
              return first
            }
            case "concurrentResponses": {
              const [first, ...others] = await Promise.all([
                instances[on](event, context),
                instances[call.requestOn](event, context),
                instances[on](event, context)
              ])
              extra.set(n, others.map((output) => classify(outputAnswer(output))))
              return first
            }
            default:
              return instances[on](event, context)
          }
        }

        const target: LocalGateway.Target = ({ body }) => {
          const id = Adapter.own(body, "id") ?? null
          const args = (Adapter.own(Adapter.own(body, "params"), "arguments") ?? {}) as Record<string, unknown>
          if (args.scenario === "toolFails") throw new Error("the tool broke")
          const result = args.scenario === "toolIsError"
            ? { isError: true, content: [{ type: "text", text: "tool said no" }] }
            : { content: [{ type: "text", text: OUTPUT }], _meta: { creditsToCharge: args.charge } }
          return {
            statusCode: 200,
            headers: { "Content-Type": "application/json" },
            body: { jsonrpc: "2.0", id, result }
          }
        }
        const gateway = yield* LocalGateway.make({ interceptor: route, target })

        const next = random(13)
        const calls: Array<Call> = Array.from({ length: CALLS }, (_, n) => {
          let pick = next() * TOTAL_WEIGHT
          const scenario = MIX.find(([, weight]) => (pick -= weight) < 0)![0]
          const charge = 1 + Math.floor(next() * 5)
          const requestOn = next() < 0.5 ? 0 : 1
          return { n, scenario, token: tokenFor(fake, scenario, PLAN), charge, requestOn }
        })
        for (const call of calls) byN.set(call.n, call)

        const send = async (call: Call): Promise<Outcome> => {
          injectFault(fake, call.scenario)
          const response = await postToolCall(gateway.url, call.token, call.n, {
            scenario: call.scenario,
            charge: call.charge,
            n: call.n
          })
          const headers: Record<string, string> = {}
          response.headers.forEach((value, name) => (headers[name] = value))
          return classify({ status: response.status, headers, body: await response.json() })
        }

        const started = performance.now()
        const outcomes = yield* Effect.promise(async () => {
          const out: Array<Outcome> = new Array(CALLS)
          let cursor = 0
          const worker = async () => {
            while (cursor < CALLS) {
              const i = cursor++
              out[i] = await send(calls[i])
            }
          }
          await Promise.all(Array.from({ length: Math.min(CONCURRENCY, CALLS) }, worker))
          return out
        })
        const seconds = (performance.now() - started) / 1000
        const rows = yield* Effect.promise(() => store.scan())

        // --- reconciliation ------------------------------------------------------------------
        // FakeNevermined's settlements: never two for one verification or one token.
        const settlementByRequest = new Map<string, (typeof ledger.settlements)[number]>()
        for (const s of ledger.settlements) {
          assert.isString(s.agentRequestId, "every settle carries the issued request id")
          assert.isFalse(settlementByRequest.has(s.agentRequestId!), `${s.agentRequestId} settled twice`)
          settlementByRequest.set(s.agentRequestId!, s)
        }
        const settlesByToken = new Map<string, number>()
        for (const record of ledger.calls) {
          if (record.operation !== "settle" || record.outcome !== "settled") continue
          settlesByToken.set(record.token, (settlesByToken.get(record.token) ?? 0) + 1)
        }
        for (const count of settlesByToken.values()) assert.strictEqual(count, 1, "a token settled twice")

        // The table: one row per verification, none left half-way (`settling`).
        interface Row {
          readonly requestId: string
          readonly state: string
          readonly transaction: string | undefined
          readonly payer: string
        }
        const table = new Map<string, Row>()
        const states: Record<string, number> = {}
        for (const item of rows) {
          const pk = item.pk?.S ?? ""
          assert.isTrue(pk.startsWith("req#"), `unexpected row ${pk}`)
          const receipt = item.receipt?.S !== undefined ? JSON.parse(item.receipt.S) as X402.SettleResponse : undefined
          const row: Row = {
            requestId: item.requestId!.S!,
            state: item.state!.S!,
            transaction: receipt?.transaction,
            payer: item.payer!.S!
          }
          table.set(row.requestId, row)
          states[row.state] = (states[row.state] ?? 0) + 1
        }
        assert.strictEqual(states.settling ?? 0, 0, "no row is left settling")
        // Every settlement is a settled row with its receipt, or an unknown row (the answer was lost).
        let unknownCharged = 0
        let unknownCredits = 0
        for (const [requestId, s] of settlementByRequest) {
          const row = table.get(requestId)
          assert.isDefined(row, `settlement ${requestId} without a ledger row`)
          if (row!.state === "unknown") {
            unknownCharged++
            unknownCredits += s.credits
          } else {
            assert.strictEqual(row!.state, "settled", `settlement ${requestId} on a ${row!.state} row`)
            assert.strictEqual(row!.transaction, s.transaction)
          }
        }
        // And every settled row is a settlement.
        for (const row of table.values()) {
          if (row.state !== "settled") continue
          assert.strictEqual(settlementByRequest.get(row.requestId)?.transaction, row.transaction)
        }

        // What the callers were told.
        const byTransaction = new Map(ledger.settlements.map((s) => [s.transaction, s]))
        const tokenOfRequest = new Map<string, string>()
        for (const record of ledger.calls) {
          if (record.operation === "settle" && record.agentRequestId !== undefined) {
            tokenOfRequest.set(record.agentRequestId, record.token)
          }
        }
        const totals: Record<string, number> = {}
        const receiptsSeen = new Set<string>()
        let receiptCredits = 0
        for (const call of calls) {
          const outcome = outcomes[call.n]
          totals[outcome._tag] = (totals[outcome._tag] ?? 0) + 1
          const fingerprint = call.token !== undefined ? Paywall.fingerprint(Redacted.make(call.token)) : undefined
          const charged = fingerprint !== undefined ? settlesByToken.get(fingerprint) ?? 0 : 0
          const all = [outcome, ...(extra.get(call.n) ?? [])]
          const paid = all.filter((o): o is Extract<Outcome, { _tag: "Paid" }> => o._tag === "Paid")
          // Every delivery that released the output shows the receipt of the one settlement.
          for (const p of paid) {
            const settlement = byTransaction.get(p.transaction)
            assert.isDefined(settlement, `call ${call.n} (${call.scenario}): a receipt without a settlement`)
            assert.strictEqual(p.transaction, paid[0].transaction, `call ${call.n}: two receipts`)
            assert.strictEqual(p.credits, call.charge)
            assert.strictEqual(settlement!.credits, call.charge)
            assert.strictEqual(tokenOfRequest.get(settlement!.agentRequestId!), fingerprint)
            assert.strictEqual(table.get(settlement!.agentRequestId!)?.state, "settled")
          }
          if (paid.length > 0) {
            assert.strictEqual(charged, 1, `call ${call.n} (${call.scenario}) released without a charge`)
            if (!receiptsSeen.has(paid[0].transaction)) {
              receiptsSeen.add(paid[0].transaction)
              receiptCredits += paid[0].credits
            }
          } else if (!all.some((o) => o._tag === "Withheld" && o.unknown)) {
            // Nothing released and no outcome left unknown: nothing charged.
            assert.strictEqual(charged, 0, `call ${call.n} (${call.scenario}, ${outcome._tag}) charged`)
          }
          if (call.scenario === "replayedResponse" && outcome._tag === "Paid") {
            // A replay of a settled RESPONSE is answered from the ledger: the same receipt.
            assert.deepStrictEqual(extra.get(call.n)?.map((o) => o._tag), ["Paid", "Paid"])
          }
          if (call.scenario === "concurrentResponses" && charged === 1) {
            // Of three deliveries at once, one settled; the others were answered from the ledger
            // (settled) or withheld while it was settling.
            assert.isTrue(all.every((o) => o._tag === "Paid" || (o._tag === "Withheld" && o.unknown)))
          }
        }
        const burned = FUNDS - ledger.balance(fake.subscriber, PLAN)
        let settledCredits = 0
        for (const s of ledger.settlements) settledCredits += s.credits
        assert.strictEqual(burned, settledCredits)
        assert.strictEqual(receiptCredits + unknownCredits, burned, "receipts + unknown outcomes = credits burned")
        assert.strictEqual(receiptsSeen.size + unknownCharged, ledger.settlements.length)

        // The run did what it set out to: both instances served both phases; the mix happened.
        for (const counts of [phases.request, phases.response]) for (const c of counts) assert.isAbove(c, CALLS / 10)
        assert.isAbove(totals.Paid ?? 0, CALLS * 0.6)
        for (const tag of ["PaymentRequired", "Unavailable", "Withheld", "ToolFailed", "NotCharged"]) {
          assert.isAbove(totals[tag] ?? 0, 0, `the mix produced ${tag}`)
        }
        assert.isAbove(unknownCharged, 0, "an unknown outcome that did burn credits was reconciled")
        // No token in any log line.
        for (const call of calls) {
          if (call.token === undefined) continue
          for (const line of logs) assert.notInclude(line, call.token)
        }

        const summary = {
          calls: CALLS,
          concurrency: CONCURRENCY,
          seconds: Number(seconds.toFixed(1)),
          callsPerSecond: Math.round(CALLS / seconds),
          outcomes: totals,
          rows: states,
          settlements: ledger.settlements.length,
          unknownCharged,
          storeRequests: Object.fromEntries(store.requests),
          phases
        }
        console.log(`two-instance load summary ${JSON.stringify(summary)}`)
      }),
    { timeout: 600_000 }
  )
})
