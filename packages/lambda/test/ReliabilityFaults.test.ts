// The fault matrix of issue 6: every way the facilitator can fail, at verify and at settle, played by
// FakeNevermined over real HTTP behind the live Nevermined layer, through both Lambda adapters. For
// each: what the caller gets, how many requests the facilitator received (and how many the client
// tried), and the ledger afterwards (unchanged, or charged exactly once). RELIABILITY.md lists it.
import { Facilitator, Nevermined, X402 } from "@effect-x402/core"
import { httpHandler } from "@effect-x402/lambda/HttpHandler"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { AgentCoreEvents, FakeNevermined } from "@effect-x402/testing"
import { FetchHttpClient, HttpClient } from "@effect/platform"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Either, Layer, Logger } from "effect"

const { Fault } = FakeNevermined

const PLAN = "plan-1"
const CREDITS = 3
const FUNDS = 100
const OUTPUT = "the paid output"
const SLOW_SETTLE = "3 seconds"

// Generous budgets, so that a loaded machine never fails a healthy call; a case about a timeout
// shortens the budget of its own route only.
const BUDGET = "10 seconds"
const SHORT = { verify: "1 second", settle: "1500 millis" } as const

type Route = "verify" | "settle"

/** What the caller gets, in the terms of both transports. */
type Answer =
  | "paid" // the output, with a success receipt
  | "unavailable" // verify failed: AgentCore code 502, HTTP 502; the handler never ran
  | "unknown" // settle outcome unknown: output withheld, AgentCore 502 / HTTP 502, success:false receipt
  | "not attempted" // settle never reached the facilitator: withheld, 502, success:false receipt
  | "rejected" // settle refused: withheld, AgentCore 402 / HTTP 402, success:false receipt

interface Case {
  readonly name: string
  readonly route: Route
  /** Scripts the fault on the fake; `refused` points the route at a closed port instead. */
  readonly fault: FakeNevermined.Fault | "refused"
  /** Queued once (the next request) or standing (every request). */
  readonly standing: boolean
  /** The route's timeout is the short one: the case is about a timeout. */
  readonly short: boolean
  readonly answer: Answer
  /** Requests the fake received on the faulted route. */
  readonly received: number
  /** Requests the client sent (or tried to) on the faulted route. */
  readonly attempts: number
  readonly charged: boolean
}

/** One row of the matrix: route, fault, what the caller gets, requests received / sent, charged. */
const row = (
  route: Route,
  name: string,
  fault: FakeNevermined.Fault | "refused",
  answer: Answer,
  [received, attempts]: readonly [number, number],
  charged: boolean,
  options: { readonly standing?: boolean; readonly short?: boolean } = {}
): Case => ({
  route,
  name,
  fault,
  answer,
  received,
  attempts,
  charged,
  standing: options.standing ?? false,
  short: options.short ?? false
})

const verifyCases: ReadonlyArray<Case> = [
  row("verify", "no answer (timeout)", Fault.noAnswer(), "unavailable", [1, 1], false, { short: true }),
  row("verify", "connection refused", "refused", "unavailable", [0, 3], false),
  row("verify", "connection dropped after the request was sent", Fault.dropConnection(), "unavailable", [1, 1], false),
  row("verify", "500", Fault.status(500), "unavailable", [1, 1], false),
  row("verify", "502 on every attempt", Fault.status(502), "unavailable", [3, 3], false, { standing: true }),
  row("verify", "503 on every attempt", Fault.status(503), "unavailable", [3, 3], false, { standing: true }),
  row("verify", "503 once, then healthy", Fault.status(503), "paid", [2, 2], true),
  row("verify", "429 with Retry-After: 0, then healthy", Fault.rateLimited(0), "paid", [2, 2], true),
  row("verify", "429 with a Retry-After beyond the timeout", Fault.rateLimited(60), "unavailable", [1, 1], false),
  row("verify", "malformed JSON", Fault.malformedJson, "unavailable", [1, 1], false),
  row("verify", "JSON of the wrong shape", Fault.wrongShape(), "unavailable", [1, 1], false),
  row("verify", "an answer slower than the timeout", Fault.latency("4 seconds"), "unavailable", [1, 1], false, {
    short: true
  }),
  row("verify", "a slow answer within the timeout", Fault.latency("50 millis"), "paid", [1, 1], true)
]

const settleCases: ReadonlyArray<Case> = [
  row("settle", "no answer (timeout), not applied", Fault.noAnswer(), "unknown", [1, 1], false, { short: true }),
  row("settle", "no answer (timeout), applied", Fault.noAnswer({ applied: true }), "unknown", [1, 1], true, {
    short: true
  }),
  row("settle", "connection refused", "refused", "not attempted", [0, 3], false),
  row(
    "settle",
    "connection dropped after sending, applied",
    Fault.dropConnection({ applied: true }),
    "unknown",
    [1, 1],
    true
  ),
  row("settle", "connection dropped after sending, not applied", Fault.dropConnection(), "unknown", [1, 1], false),
  row("settle", "500", Fault.status(500), "unknown", [1, 1], false),
  row("settle", "502", Fault.status(502), "unknown", [1, 1], false),
  row("settle", "503", Fault.status(503), "unknown", [1, 1], false),
  // A 429 is a definite "not applied": retried within the deadline, like a 429 on verify.
  row("settle", "429 with Retry-After: 0, then healthy", Fault.rateLimited(0), "paid", [2, 2], true),
  row("settle", "429 with a Retry-After beyond the timeout", Fault.rateLimited(60), "rejected", [1, 1], false),
  row("settle", "400 (a definite refusal)", Fault.status(400, "BCK.X402.0059"), "rejected", [1, 1], false),
  row("settle", "malformed JSON", Fault.malformedJson, "unknown", [1, 1], false),
  row("settle", "JSON of the wrong shape", Fault.wrongShape(), "unknown", [1, 1], false),
  // The fake stops working on a request whose client left, so nothing is burned here; a backend that
  // finishes anyway is the "applied" timeout above. The caller is told the same either way.
  row("settle", "an answer slower than the timeout", Fault.latency(SLOW_SETTLE), "unknown", [1, 1], false, {
    short: true
  }),
  row("settle", "a slow answer within the timeout", Fault.latency("50 millis"), "paid", [1, 1], true)
]

/** An HTTP client layer that counts the requests sent per route. */
const countingClient = () => {
  const counts = { verify: 0, settle: 0 }
  const layer = Layer.effect(
    HttpClient.HttpClient,
    Effect.map(HttpClient.HttpClient, (inner) =>
      HttpClient.tapRequest(inner, (request) =>
        Effect.sync(() => {
          if (request.url.endsWith("/x402/verify")) counts.verify++
          if (request.url.endsWith("/x402/settle")) counts.settle++
        })))
  ).pipe(Layer.provide(FetchHttpClient.layer))
  return { counts, layer }
}

/** A port that was just ours and is now closed: connecting to it is refused. */
const closedUrl = Effect.scoped(Effect.map(FakeNevermined.make(), (fake) => fake.url))

/**
 * The live facilitator against the fake; a `refused` route is served by a second live layer whose
 * backend is gone (the facilitator went down between verify and settle, or before verify).
 */
const facilitatorFor = (fake: FakeNevermined.FakeNevermined.Service, c: Case, url: string) => {
  const refused = c.fault === "refused" ? c.route : undefined
  const client = countingClient()
  const live = (backendUrl: string) =>
    Nevermined.layer({
      apiKey: fake.apiKey,
      backendUrl,
      network: "eip155:84532",
      timeouts: { verify: BUDGET, settle: BUDGET, ...(c.short ? { [c.route]: SHORT[c.route] } : {}) },
      retry: { baseDelay: "5 millis", maxDelay: "20 millis" }
    })
  const layer = refused === undefined
    ? live(fake.url)
    : Layer.scoped(
      Facilitator.Facilitator,
      Effect.gen(function*() {
        const healthy = Context.get(yield* Layer.build(live(fake.url)), Facilitator.Facilitator)
        const down = Context.get(yield* Layer.build(live(url)), Facilitator.Facilitator)
        return refused === "verify" ? down : { ...healthy, settle: down.settle }
      })
    )
  return { counts: client.counts, layer: Layer.provide(layer, client.layer) }
}

const quiet = Logger.replace(Logger.defaultLogger, Logger.none) as Layer.Layer<never>

interface Observed {
  readonly answer: Answer | "other"
  readonly message: string
  readonly received: number
  readonly attempts: number
  readonly charged: number
  readonly handlerRan: boolean
}

const header = (headers: Record<string, unknown> | undefined, name: string) =>
  Object.entries(headers ?? {}).find(([key]) => key.toLowerCase() === name)?.[1] as string | undefined

const runCase = (transport: "agentcore" | "http", c: Case) =>
  Effect.gen(function*() {
    const fake = yield* FakeNevermined.make()
    fake.ledger.addPlan({ planId: PLAN })
    fake.ledger.fund(fake.subscriber, PLAN, FUNDS)
    const token = fake.ledger.mintToken({ planId: PLAN, subscriber: fake.subscriber })
    const url = yield* closedUrl
    const { counts, layer } = facilitatorFor(fake, c, url)
    if (c.fault !== "refused") {
      if (c.standing === true) fake.faults.always(c.route, c.fault)
      else fake.faults.next(c.route, c.fault)
    }
    let handlerRan = false
    const options = { planId: PLAN, credits: CREDITS, layer, services: quiet }
    const context = AgentCoreEvents.context()
    const started = Date.now()

    let observed: Omit<Observed, "received" | "attempts" | "charged">
    if (transport === "agentcore") {
      const handler = requiresPayment(options)(() => {
        handlerRan = true
        return { content: [{ type: "text", text: OUTPUT }] }
      })
      yield* Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose()))
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), context))
      const response = output.mcp.transformedGatewayResponse!
      const body = response.body as { result: { isError?: boolean; content: Array<{ text: string }> } }
      const receipt = X402.ReceiptHeader.decodeEither(header(response.headers, "payment-response") ?? "")
      const text = body.result.content[0].text
      if (body.result.isError !== true) {
        assert.isTrue(Either.isRight(receipt) && receipt.right.success, "a paid output carries a success receipt")
        observed = { answer: text === OUTPUT ? "paid" : "other", message: "", handlerRan }
      } else {
        const error = JSON.parse(text) as { code: number; message: string }
        assert.notInclude(JSON.stringify(output), OUTPUT, "the output was withheld")
        const failed = Either.isRight(receipt) && !receipt.right.success
        observed = {
          answer: error.code === 502 && !handlerRan
            ? "unavailable"
            : error.code === 502 && failed && error.message.startsWith("Settlement outcome unknown")
            ? "unknown"
            : error.code === 502 && failed && error.message.startsWith("Settlement not attempted")
            ? "not attempted"
            : error.code === 402 && failed
            ? "rejected"
            : "other",
          message: error.message,
          handlerRan
        }
      }
    } else {
      const handler = httpHandler(options)(() => {
        handlerRan = true
        return { statusCode: 200, body: OUTPUT }
      })
      yield* Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose()))
      const result = yield* Effect.promise(() => handler(AgentCoreEvents.apiGatewayV2({ token }), context))
      const receipt = X402.SettleResponseHeader.decodeEither(header(result.headers, "payment-response") ?? "")
      const failed = Either.isRight(receipt) && !receipt.right.success
      const message = result.statusCode === 200 ? "" : (JSON.parse(result.body ?? "{}") as { message: string }).message
      if (result.statusCode !== 200) assert.notInclude(result.body ?? "", OUTPUT, "the output was withheld")
      observed = {
        answer: result.statusCode === 200 && result.body === OUTPUT && Either.isRight(receipt) && receipt.right.success
          ? "paid"
          : result.statusCode === 502 && !handlerRan
          ? "unavailable"
          : result.statusCode === 502 && failed && message.startsWith("Settlement outcome unknown")
          ? "unknown"
          : result.statusCode === 502 && failed && message.startsWith("Settlement not attempted")
          ? "not attempted"
          : result.statusCode === 402 && failed
          ? "rejected"
          : "other",
        message,
        handlerRan
      }
    }
    // A slow settle the caller gave up on is still performed when the fake answers: wait for it.
    if (c.route === "settle" && c.fault !== "refused" && c.fault._tag === "Latency") {
      const until = started + Duration.toMillis(SLOW_SETTLE) + 500
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, Math.max(0, until - Date.now()))))
    }
    return {
      ...observed,
      received: fake.calls(c.route),
      attempts: counts[c.route],
      charged: FUNDS - fake.ledger.balance(fake.subscriber, PLAN)
    } satisfies Observed
  })

const cases = [...verifyCases, ...settleCases]
const matrix = new Map<string, string>()

// The cases are independent (a fake backend each), so they run side by side.
describe.concurrent("fault matrix: live Nevermined layer against FakeNevermined over HTTP", () => {
  afterAll(() => {
    // RELIABILITY_MATRIX=1 prints the rows of RELIABILITY.md, in the order of the tables.
    if (process.env.RELIABILITY_MATRIX === "1") {
      console.log(
        ["agentcore", "http"].flatMap((t) => cases.map((c) => matrix.get(`${t}: ${c.route} ${c.name}`))).join("\n")
      )
    }
  })

  for (const transport of ["agentcore", "http"] as const) {
    for (const c of cases) {
      const name = `${transport}: ${c.route} ${c.name}`
      it.scopedLive(name, () =>
        Effect.gen(function*() {
          const observed = yield* runCase(transport, c)
          const charged = observed.charged === 0 ? "unchanged" : `charged ${observed.charged}`
          matrix.set(
            name,
            `| ${transport} | ${c.route} | ${c.name} | ${observed.answer} | ${observed.received} | ${observed.attempts} | ${charged} | ${
              observed.message.split("\n")[0]
            } |`
          )
          assert.strictEqual(observed.answer, c.answer, observed.message)
          assert.strictEqual(observed.received, c.received, "requests the facilitator received")
          assert.strictEqual(observed.attempts, c.attempts, "requests the client sent")
          // Charged exactly once, or not at all: never twice.
          assert.strictEqual(observed.charged, c.charged ? CREDITS : 0, "credits burned")
          // The handler runs only after a successful verify.
          assert.strictEqual(observed.handlerRan, c.route === "settle" || c.answer === "paid")
        }))
    }
  }
})
