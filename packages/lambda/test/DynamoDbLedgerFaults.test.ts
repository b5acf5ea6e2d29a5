// The store fault matrix, like the facilitator's: DynamoDB throttled, failing (500), answering
// garbage (before or after applying the write) and hanging past the Lambda's deadline, played by an
// HTTP fault server on loopback in front of dynalite. For each: the ledger fails with a typed
// `LedgerError` (`Unavailable`) whose message names the operation, never a token; through the
// interceptor (two instances sharing the table), a fault at REQUEST forwards nothing, a fault at
// RESPONSE releases no output and settles nothing, both within the Lambda's remaining time; once
// the store is back, the call settles at most once (a replay answers the same receipt).
import { Paywall, SettlementLedger } from "@effect-x402/core"
import * as DynamoDbLedger from "@effect-x402/lambda/DynamoDbLedger"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { AgentCoreEvents, TestFacilitator, TestTelemetry } from "@effect-x402/testing"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"
import * as Server from "./dynamoDbServer.js"
import { bodyOf, errorOf, forwardedOf, receiptOf, responseOf, resultOf } from "./helpers.js"

/** What the fault server does with the next requests. */
type Mode =
  | "forward"
  | "throttled" // 400 ProvisionedThroughputExceededException (the SDK retries it, then gives up)
  | "failing" // 500 InternalServerError
  | "garbage" // 200 with a body that is not JSON; the write never reached the store
  | "appliedGarbage" // the write reaches the store, the answer is replaced by garbage
  | "hang" // the request is read, nothing ever comes back

const FAULTS: ReadonlyArray<Exclude<Mode, "forward">> = ["throttled", "failing", "garbage", "appliedGarbage", "hang"]

let store: Server.DynamoDbServer
let faultServer: Http.Server
let faultEndpoint: string
let mode: Mode = "forward"
/** The operation (`X-Amz-Target`) the fault applies to; every one when undefined. */
let faultOn: string | undefined
const seen: Record<string, number> = {}

const amzJson = { "content-type": "application/x-amz-json-1.0" }

beforeAll(async () => {
  store = await Server.start("x402-ledger-faults")
  const upstream = new URL(store.endpoint)
  const agent = new Http.Agent({ keepAlive: true })
  faultServer = Http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const operation = String(req.headers["x-amz-target"] ?? "").replace(/^DynamoDB_\d+\./, "")
      const current = faultOn === undefined || faultOn === operation ? mode : "forward"
      seen[current] = (seen[current] ?? 0) + 1
      const forward = (onAnswer: (status: number, headers: Http.IncomingHttpHeaders, body: Buffer) => void) => {
        const out = Http.request({
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
          agent
        }, (answer) => {
          const parts: Array<Buffer> = []
          answer.on("data", (part: Buffer) => parts.push(part))
          answer.on("end", () => onAnswer(answer.statusCode ?? 500, answer.headers, Buffer.concat(parts)))
        })
        out.on("error", () => res.destroy())
        out.end(Buffer.concat(chunks))
      }
      switch (current) {
        case "forward":
          return forward((status, headers, body) => {
            res.writeHead(status, headers)
            res.end(body)
          })
        case "throttled":
          res.writeHead(400, amzJson)
          return res.end(JSON.stringify({
            __type: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            message: "The level of configured provisioned throughput for the table was exceeded."
          }))
        case "failing":
          res.writeHead(500, amzJson)
          return res.end(JSON.stringify({ __type: "com.amazonaws.dynamodb.v20120810#InternalServerError" }))
        case "garbage":
          res.writeHead(200, amzJson)
          return res.end("<html>502 Bad Gateway</html>")
        case "appliedGarbage":
          return forward(() => {
            res.writeHead(200, amzJson)
            res.end("{\"Attributes\": [truncated")
          })
        case "hang":
          return
      }
    })
  })
  await new Promise<void>((resolve) => faultServer.listen(0, "127.0.0.1", resolve))
  faultEndpoint = `http://127.0.0.1:${(faultServer.address() as Net.AddressInfo).port}`
}, 30_000)

afterAll(async () => {
  faultServer?.closeAllConnections()
  await new Promise<void>((resolve) => faultServer ? faultServer.close(() => resolve()) : resolve())
  await store?.close()
})

// Each attempt 300 ms, 2 attempts: the ledger's whole budget is 2 × 300 + 500 ms.
const storeOptions = (tableName = store.tableName): DynamoDbLedger.Options => ({
  tableName,
  endpoint: faultEndpoint,
  region: Server.region,
  credentials: Server.credentials,
  timeout: "300 millis",
  maxAttempts: 2
})
/** The Lambda's remaining time in these tests: every answer must come before it runs out. */
const REMAINING = 5_000

const token = "nvm_tok_store-fault-token-secret"
const payer = Paywall.fingerprint(Redacted.make(token))

describe("DynamoDbLedger store faults: a typed error, never a hang", () => {
  it.live.each(FAULTS)(
    "%s: LedgerError Unavailable naming the operation, within the budget",
    (fault) =>
      Effect.gen(function*() {
        const ledger = yield* DynamoDbLedger.make(storeOptions())
        const id = `typed-${fault}`
        mode = fault
        const started = Date.now()
        const error = yield* Effect.flip(ledger.record({ requestId: id, payer, amount: 1 }))
        const elapsed = Date.now() - started
        mode = "forward"
        assert.instanceOf(error, SettlementLedger.LedgerError)
        assert.strictEqual(error.reason, "Unavailable")
        assert.include(error.message, `Settlement ledger record ${id} failed: Unavailable`)
        assert.notInclude(error.message, token)
        assert.isBelow(elapsed, REMAINING)
        assert.isAtLeast(seen[fault], 1, "the request reached the (faulty) store")
        // The store is back: a write that never landed can be made now; one that did is a Conflict.
        const again = yield* Effect.either(ledger.record({ requestId: id, payer, amount: 1 }))
        if (fault === "appliedGarbage") {
          assert.strictEqual(again._tag === "Left" && again.left.reason, "Conflict")
        } else {
          assert.strictEqual(again._tag, "Right")
        }
      }).pipe(Effect.scoped),
    20_000
  )
})

describe("DynamoDbLedger store faults through the interceptor (two instances, one table)", () => {
  let tables = 0
  // A table of its own per test: each test's facilitator issues the same request ids.
  const freshTable = Effect.promise(async () => {
    const tableName = `x402-ledger-faults-${++tables}`
    await Server.createTable(store.endpoint, tableName)
    return tableName
  })
  const setup = () =>
    Effect.gen(function*() {
      const tableName = yield* freshTable
      const { ledger: facilitator, subscriber, token: paying } = TestFacilitator.seeded({
        planId: "plan-1",
        credits: 10
      })
      const captured = TestTelemetry.make()
      const instance = () =>
        interceptor({
          planId: "plan-1",
          credits: 2,
          requestSealKey: Redacted.make("seal-key-of-both-instances"),
          layer: TestFacilitator.layer(facilitator),
          services: Layer.merge(captured.layer, DynamoDbLedger.layer(storeOptions(tableName)))
        })
      const [a, b] = [instance(), instance()]
      for (const handler of [a, b]) yield* Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose()))
      const context = AgentCoreEvents.context({ remainingTimeInMillis: REMAINING })
      const timed = <A>(run: () => Promise<A>) =>
        Effect.promise(async () => {
          const started = Date.now()
          const out = await run()
          return { out, elapsed: Date.now() - started }
        })
      const balance = () => facilitator.balance(subscriber, "plan-1")
      return { facilitator, paying, captured, a, b, context, timed, balance }
    })

  it.live.each(FAULTS)(
    "%s at REQUEST: nothing forwarded, nothing charged, a clear log line",
    (fault) =>
      Effect.gen(function*() {
        const { a, balance, captured, context, facilitator, paying, timed } = yield* setup()
        mode = fault
        const { elapsed, out } = yield* timed(() =>
          a(AgentCoreEvents.request({ tool: "report", token: paying, id: `req-${fault}` }), context)
        )
        mode = "forward"
        assert.isBelow(elapsed, REMAINING, "answered within the Lambda's remaining time")
        assert.isUndefined(out.mcp.transformedGatewayRequest, "nothing reaches the target")
        assert.strictEqual(responseOf(out).statusCode, 500)
        assert.deepStrictEqual(bodyOf(out), { error: "Internal interceptor error", requestId: context.awsRequestId })
        assert.strictEqual(balance(), 10)
        assert.strictEqual(facilitator.settlements.length, 0)
        const log = captured.text()
        assert.include(
          log,
          `x402: verified call not forwarded, the settlement ledger failed (request ${context.awsRequestId}): Settlement ledger record`
        )
        assert.include(log, "Unavailable")
        assert.notInclude(log, paying)
        assert.notInclude(JSON.stringify(out), paying)
      }).pipe(Effect.scoped),
    20_000
  )

  it.live.each(FAULTS)(
    "%s at the claim of RESPONSE (on the other instance): output withheld, nothing settled; back up, settled once",
    (fault) =>
      Effect.gen(function*() {
        const { a, b, balance, captured, context, facilitator, paying, timed } = yield* setup()
        const forwarded = forwardedOf(
          yield* Effect.promise(() =>
            a(AgentCoreEvents.request({ tool: "report", token: paying, id: `resp-${fault}` }), context)
          )
        )
        const response = AgentCoreEvents.response({
          tool: "report",
          token: paying,
          id: `resp-${fault}`,
          forwardedHeaders: forwarded.headers as Record<string, string>,
          result: { content: [{ type: "text", text: "the paid report" }] }
        })
        // The fault hits the claim (`UpdateItem`), after the RESPONSE re-recorded the call.
        mode = fault
        faultOn = "UpdateItem"
        const { elapsed, out } = yield* timed(() => b(response, context)).pipe(
          Effect.ensuring(Effect.sync(() => {
            mode = "forward"
            faultOn = undefined
          }))
        )
        assert.isBelow(elapsed, REMAINING, "answered within the Lambda's remaining time")
        assert.notInclude(JSON.stringify(out), "the paid report", "no output without a recorded settlement")
        const error = errorOf(out)
        assert.strictEqual(error.error, "Payment settlement failed")
        assert.strictEqual(balance(), 10)
        assert.strictEqual(facilitator.settlements.length, 0)
        const log = captured.text()
        assert.include(log, "x402: output withheld, the settlement ledger failed")
        assert.notInclude(log, paying)

        // The store is back and the gateway delivers the RESPONSE again, to both instances.
        const [first, second] = yield* Effect.promise(() => Promise.all([a(response, context), b(response, context)]))
        const outputs = [first, second].filter((o) => resultOf(o)?.isError !== true)
        if (fault === "appliedGarbage") {
          // The claim landed though its answer was lost: the call is held as settling, and is never
          // settled again (no charge, no output: fail closed).
          assert.strictEqual(outputs.length, 0)
          assert.strictEqual(facilitator.settlements.length, 0)
        } else {
          // The claim never landed: one of the two deliveries settles, the other sees it taken.
          assert.isAtLeast(outputs.length, 1)
          assert.strictEqual(facilitator.settlements.length, 1)
          assert.strictEqual(balance(), 8)
          const receipts = new Set(outputs.map((o) => receiptOf(o).transactionHash))
          assert.strictEqual(receipts.size, 1)
          // And once more: the recorded receipt, nothing charged.
          const replay = yield* Effect.promise(() => a(response, context))
          assert.strictEqual(receiptOf(replay).transactionHash, [...receipts][0])
          assert.strictEqual(facilitator.settlements.length, 1)
        }
      }).pipe(Effect.scoped),
    20_000
  )
})
