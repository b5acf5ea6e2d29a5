// Hostile suite, invariant 6 for the gateway adapters (RELIABILITY.md, "Money-tight"): nothing
// internal reaches the caller. A handler's exception (a transport error with a URL and an API key in
// its query, a bearer value, a password), a credits policy that fails, a settlement ledger that
// fails, a facilitator's free-text refusal and a defect inside the adapter all answer a generic
// message with the Lambda request id; the detail is in the log under that id, redacted, and in no
// span. Paid and unpaid callers alike, directly and through `LocalGateway` over real HTTP, reconciled
// with the `TestFacilitator` ledger (nothing settled for a failure).
import { SettlementLedger } from "@effect-x402/core"
import type { AgentCore, LambdaRuntime } from "@effect-x402/lambda"
import { httpHandler } from "@effect-x402/lambda/HttpHandler"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { AgentCoreEvents, LocalGateway, TestFacilitator, TestTelemetry } from "@effect-x402/testing"
import { assert, describe, it, vi } from "@effect/vitest"
import { Effect, FastCheck as fc, Layer, Logger, LogLevel } from "effect"
import { errorOf, type Json, responseOf } from "../helpers.js"

const PLAN = "plan-1"
const SECRET = "SeCrEt4f9Q2zK8vW"
const REQUEST_ID = "c0ffee00-0000-4000-8000-00000000beef"
const ctx = AgentCoreEvents.context({ awsRequestId: REQUEST_ID })

/** Exception texts as transports and drivers write them, each with the secret in it. */
const LEAKS: ReadonlyArray<string> = [
  `GET https://api.example.com/v1/records?api_key=${SECRET}&limit=5 failed: ECONNRESET`,
  `upstream answered 401 to Authorization: Bearer ${SECRET}`,
  `could not connect to postgres: password=${SECRET}`,
  `bad config {"api_key":"${SECRET}"}`,
  `fetch https://admin:${SECRET}@db.internal/x failed`,
  `x-api-key: ${SECRET} refused`,
  `Basic ${SECRET} rejected`
]

/** The ways a handler can fail with a message. */
const FAILURES: ReadonlyArray<readonly [string, (message: string) => () => unknown]> = [
  ["throws", (message) => () => {
    throw new Error(message)
  }],
  ["throws a string", (message) => () => {
    throw message
  }],
  ["rejects", (message) => () => Promise.reject(new Error(message))],
  ["fails", (message) => () => Effect.fail(new Error(message))],
  ["fails with an object", (message) => () => Effect.fail({ message, _tag: "UpstreamError" })],
  ["dies", (message) => () => Effect.die(new TypeError(message))]
]

const capture = () => {
  const captured = TestTelemetry.make()
  return { captured, services: Layer.merge(captured.layer, Logger.minimumLogLevel(LogLevel.All)) }
}

type Lambda = (event: unknown, context: LambdaRuntime.LambdaContext) => Promise<AgentCore.InterceptorOutput>

const invoke = (handler: Lambda, event: unknown) => Effect.promise(() => handler(event, ctx))

const assertGeneric = (output: AgentCore.InterceptorOutput, label: string) => {
  const text = JSON.stringify(output)
  assert.notInclude(text, SECRET, label)
  const error = errorOf(output)
  assert.strictEqual(error.code, 500, label)
  assert.strictEqual(error.requestId, REQUEST_ID, label)
}

const assertNothingLeaked = (captured: TestTelemetry.Captured, label: string) => {
  const text = captured.text()
  assert.notInclude(text, SECRET, `${label}: the secret is in a log line or a span`)
}

describe("hostile: a failing requiresPayment handler", () => {
  for (const [how, fail] of FAILURES) {
    it.effect(`${how}: paid or free, the caller gets a generic answer and the request id; the log the detail, redacted`, () =>
      Effect.gen(function*() {
        for (const leak of LEAKS) {
          const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 100 })
          const { captured, services } = capture()
          const handler = requiresPayment({
            planId: PLAN,
            layer: TestFacilitator.layer(ledger),
            services,
            freeMethods: ["resources/list"]
          })(fail(leak))
          const paid = yield* invoke(handler, AgentCoreEvents.request({ token }))
          assertGeneric(paid, `${how} / paid / ${leak}`)
          assert.deepStrictEqual(errorOf(paid), {
            error: "Handler failed",
            code: 500,
            message: "The handler failed; nothing was charged",
            requestId: REQUEST_ID
          })
          // Unpaid, through a method the operator declared free.
          const free = yield* invoke(handler, AgentCoreEvents.request({ method: "resources/list" }))
          assertGeneric(free, `${how} / free / ${leak}`)
          assertNothingLeaked(captured, `${how} / ${leak}`)
          // The operator finds the failure by the id the caller quotes.
          const line = captured.logs.find((l) => l.includes("handler failed") && l.includes(REQUEST_ID))
          assert.isDefined(line, "no log line carries the request id")
          assert.include(line!, "<redacted>")
          assert.strictEqual(ledger.settlements.length, 0)
          yield* Effect.promise(() => handler.runtime.dispose())
        }
      }))
  }

  it.effect("a credits policy that fails with a secret: 500, generic, the request id; nothing verified", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 100 })
      const { captured, services } = capture()
      const handler = requiresPayment({
        planId: PLAN,
        credits: () => {
          throw new Error(LEAKS[0])
        },
        layer: TestFacilitator.layer(ledger),
        services
      })(() => ({ content: [{ type: "text", text: "never" }] }))
      const output = yield* invoke(handler, AgentCoreEvents.request({ token }))
      assertGeneric(output, "credits policy")
      assert.notInclude(JSON.stringify(output), "never")
      assertNothingLeaked(captured, "credits policy")
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it.effect("a facilitator's free-text refusal is not echoed; its reason code is", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 100 })
      const { captured, services } = capture()
      const handler = requiresPayment({ planId: PLAN, layer: TestFacilitator.layer(ledger), services })(() => ({
        content: [{ type: "text", text: "paid output" }]
      }))
      ledger.failNext("settle", { _tag: "Rejected", reason: `see ${LEAKS[0]}` })
      const free = yield* invoke(handler, AgentCoreEvents.request({ token }))
      assert.notInclude(JSON.stringify(free), SECRET)
      assert.notInclude(JSON.stringify(free), "paid output")
      assert.strictEqual(
        errorOf(free).message,
        "Settlement rejected by the payment facilitator; the output was withheld"
      )
      ledger.failNext("settle", { _tag: "Rejected", reason: "insufficient_funds" })
      const coded = yield* invoke(handler, AgentCoreEvents.request({ token }))
      assert.strictEqual(errorOf(coded).message, "Settlement rejected: insufficient_funds; the output was withheld")
      ledger.failNext("settle", { _tag: "Timeout" })
      const unknown = yield* invoke(handler, AgentCoreEvents.request({ token }))
      assert.strictEqual(errorOf(unknown).code, 502)
      assert.strictEqual(errorOf(unknown).requestId, REQUEST_ID)
      // The adapter's own log lines are redacted. (The core pipeline's spans still carry the
      // facilitator's `errorReason` as it came: that text is the facilitator's, not this server's.)
      assert.notInclude(captured.logs.join("\n"), SECRET)
      assert.strictEqual(ledger.settlements.length, 0)
    }))

  it.effect("a defect inside the adapter (an event whose getter throws): 500 with the request id, nothing leaked", () =>
    Effect.gen(function*() {
      const { ledger } = TestFacilitator.seeded({ planId: PLAN, credits: 100 })
      const { captured, services } = capture()
      const handler = requiresPayment({ planId: PLAN, layer: TestFacilitator.layer(ledger), services })(() => ({
        content: []
      }))
      const hostile = Object.defineProperty({}, "mcp", {
        enumerable: true,
        get() {
          throw new Error(LEAKS[0])
        }
      })
      const output = yield* invoke(handler, hostile)
      assert.notInclude(JSON.stringify(output), SECRET)
      assert.deepStrictEqual(responseOf(output), {
        statusCode: 500,
        headers: { "Content-Type": "application/json" },
        body: { error: "Internal interceptor error", requestId: REQUEST_ID }
      })
      assert.isTrue(captured.logs.some((line) => line.includes("internal failure") && line.includes(REQUEST_ID)))
      assertNothingLeaked(captured, "defect")
    }))

  it.effect("a layer that cannot be built: 500 with the request id, not the build error", () =>
    Effect.gen(function*() {
      const handler = requiresPayment({
        planId: PLAN,
        layer: Layer.fail(new Error("the facilitator layer could not be configured")),
        services: Logger.replace(Logger.defaultLogger, Logger.none) as Layer.Layer<never>
      })(() => ({ content: [] }))
      // The runtime reports a failed build on the default logger (before any service exists): kept
      // off the test output.
      const printed: Array<unknown> = []
      const spies = (["log", "error", "warn"] as const).map((level) =>
        vi.spyOn(console, level).mockImplementation((...args) => void printed.push(args))
      )
      const output = yield* invoke(handler, AgentCoreEvents.request({ token: "t" })).pipe(
        Effect.ensuring(Effect.sync(() => spies.forEach((spy) => spy.mockRestore())))
      )
      assert.isAbove(printed.length, 0)
      assert.deepStrictEqual(responseOf(output).body, { error: "Internal interceptor error", requestId: REQUEST_ID })
      assert.notInclude(JSON.stringify(output), "could not be configured")
    }))
})

describe("hostile: the interceptor's internal failures", () => {
  it.effect("a credits policy that fails with a secret, at REQUEST or at RESPONSE: generic 500, the request id", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 100 })
      const { captured, services } = capture()
      let failAt: "REQUEST" | "RESPONSE" = "REQUEST"
      const handler = interceptor({
        planId: PLAN,
        credits: (event) => {
          const phase = event.mcp.gatewayResponse ? "RESPONSE" : "REQUEST"
          if (phase === failAt) throw new Error(LEAKS[1])
          return 2
        },
        layer: TestFacilitator.layer(ledger),
        services
      })
      const refused = yield* invoke(handler, AgentCoreEvents.request({ token }))
      assertGeneric(refused, "REQUEST")
      failAt = "RESPONSE"
      const withheld = yield* invoke(
        handler,
        AgentCoreEvents.response({ token, result: { content: [{ type: "text", text: "paid output" }] } })
      )
      assertGeneric(withheld, "RESPONSE")
      assert.notInclude(JSON.stringify(withheld), "paid output")
      assertNothingLeaked(captured, "interceptor credits")
      assert.deepStrictEqual(ledger.settlements, [])
    }))

  it.effect("a settlement ledger that fails with a secret in its detail: generic answers, nothing forwarded or released", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 100 })
      const { captured, services } = capture()
      const down = (operation: string) =>
        Effect.fail(new SettlementLedger.LedgerError({ reason: "Unavailable", operation, detail: LEAKS[0] }))
      const broken = Layer.succeed(SettlementLedger.SettlementLedger, {
        record: () => down("record"),
        claim: () => down("claim"),
        finish: () => down("finish"),
        resolveUnknown: () => down("resolveUnknown"),
        get: () => down("get"),
        findByKey: () => down("findByKey")
      })
      const handler = interceptor({
        planId: PLAN,
        layer: TestFacilitator.layer(ledger),
        services: Layer.merge(services, broken)
      })
      const request = yield* invoke(handler, AgentCoreEvents.request({ token }))
      assert.isUndefined(request.mcp.transformedGatewayRequest, "forwarded without a record")
      assert.notInclude(JSON.stringify(request), SECRET)
      assert.deepStrictEqual(responseOf(request).body, { error: "Internal interceptor error", requestId: REQUEST_ID })
      const response = yield* invoke(
        handler,
        AgentCoreEvents.response({ token, result: { content: [{ type: "text", text: "paid output" }] } })
      )
      assert.notInclude(JSON.stringify(response), "paid output")
      assert.notInclude(JSON.stringify(response), SECRET)
      assert.strictEqual(errorOf(response).requestId, REQUEST_ID)
      assertNothingLeaked(captured, "ledger")
      assert.deepStrictEqual(ledger.settlements, [])
    }))
})

describe("hostile: failures through LocalGateway over HTTP", () => {
  for (const [how, fail] of FAILURES.slice(0, 3)) {
    it.scopedLive(`requiresPayment, handler ${how}: the HTTP answer holds the request id, never the message`, () =>
      Effect.gen(function*() {
        const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 100 })
        const { captured, services } = capture()
        const handler = requiresPayment({ planId: PLAN, layer: TestFacilitator.layer(ledger), services })(
          fail(LEAKS[0])
        )
        const gateway = yield* LocalGateway.make({ handler })
        for (const headers of [{}, { "payment-signature": token }]) {
          const response = yield* Effect.promise(() =>
            fetch(gateway.url, {
              method: "POST",
              headers: { "content-type": "application/json", ...headers },
              body: JSON.stringify({
                jsonrpc: "2.0",
                id: 1,
                method: "tools/call",
                params: { name: "t", arguments: {} }
              })
            }).then((r) => r.text())
          )
          assert.notInclude(response, SECRET)
          assert.notInclude(response, "api.example.com")
        }
        const paidInvocation = gateway.invocations.at(-1) as Json
        const requestId: string =
          JSON.parse(paidInvocation.output.mcp.transformedGatewayResponse.body.result.content[0].text)
            .requestId
        assert.match(requestId, /^[0-9a-f-]{36}$/)
        assert.isTrue(captured.logs.some((line) => line.includes(requestId) && line.includes("handler failed")))
        assertNothingLeaked(captured, how)
        assert.deepStrictEqual(ledger.settlements, [])
      }))
  }
})

describe("hostile: the facilitator's detail never reaches an httpHandler caller", () => {
  it.effect("a free-text refusal, an unknown outcome, an unreachable facilitator: fixed words, the request id", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 100 })
      const { captured, services } = capture()
      const handler = httpHandler({ planId: PLAN, layer: TestFacilitator.layer(ledger), services })(() => ({
        statusCode: 200,
        body: "paid output"
      }))
      const call = () =>
        Effect.promise(() =>
          handler(AgentCoreEvents.apiGatewayV2({ token }), ctx) as Promise<{
            statusCode: number
            headers: Record<string, string>
            body: string
          }>
        )
      ledger.failNext("settle", { _tag: "Rejected", reason: `see ${LEAKS[0]}` })
      const refused = yield* call()
      assert.strictEqual(refused.statusCode, 402)
      assert.notInclude(JSON.stringify(refused), SECRET)
      assert.notInclude(refused.body, "paid output")
      // The x402 HTTP receipt (the settle response): its errorReason is a code, not the free text.
      const receipt = JSON.parse(Buffer.from(refused.headers["payment-response"], "base64").toString("utf8"))
      assert.deepInclude(receipt, { success: false, errorReason: "unexpected_settle_error" })
      ledger.failNext("settle", { _tag: "Timeout" })
      const unknown = yield* call()
      assert.strictEqual(unknown.statusCode, 502)
      assert.deepStrictEqual(JSON.parse(unknown.body), {
        error: "Bad Gateway",
        message: "Settlement outcome unknown; the output was withheld",
        requestId: REQUEST_ID
      })
      ledger.failNext("verify", { _tag: "HttpStatus", status: 503, code: "BCK.X402.0503" })
      const unavailable = yield* call()
      assert.strictEqual(unavailable.statusCode, 502)
      assert.notInclude(unavailable.body, "BCK.X402")
      assert.strictEqual(JSON.parse(unavailable.body).requestId, REQUEST_ID)
      assert.notInclude(captured.logs.join("\n"), SECRET)
      assert.deepStrictEqual(ledger.settlements, [])
    }))
})

// ---------------------------------------------------------------------------
// Properties over generated failures
// ---------------------------------------------------------------------------

const secretArb = fc.stringMatching(/^[A-Za-z0-9]{12,24}$/).map((s) => `Sk${s}`)
const hostArb = fc.domain()
const templates: ReadonlyArray<(secret: string, host: string) => string> = [
  (s, h) => `GET https://${h}/v1/x?api_key=${s}&q=1 failed`,
  (s, h) => `POST http://${h}:8080/p?token=${s} timed out`,
  (s) => `Authorization: Bearer ${s}`,
  (s) => `bearer ${s}`,
  (s) => `api_key=${s}`,
  (s) => `apiKey: "${s}"`,
  (s) => `{"password":"${s}"}`,
  (s) => `secret=${s};`,
  (s, h) => `https://user:${s}@${h}/db`,
  (s) => `X-Api-Key: ${s}`,
  (s) => `access_token=${s}`
]
const leakArb = fc.tuple(
  secretArb,
  hostArb,
  fc.nat({ max: templates.length - 1 }),
  fc.string({ maxLength: 20 }),
  fc.string({ maxLength: 20 }),
  fc.nat({ max: FAILURES.length - 1 })
).map(([secret, host, template, before, after, how]) => ({
  secret,
  message: `${before} ${templates[template](secret, host)} ${after}`,
  fail: FAILURES[how][1]
}))

describe("hostile: properties over generated failures", () => {
  const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 1_000_000 })
  const { captured, services } = capture()
  let current: () => unknown = () => ({ content: [] })
  const handler = requiresPayment({
    planId: PLAN,
    layer: TestFacilitator.layer(ledger),
    services,
    freeMethods: ["resources/list"]
  })(() => current())
  let policy: () => number = () => 1
  const intercept = interceptor({
    planId: PLAN,
    credits: () => policy(),
    layer: TestFacilitator.layer(ledger),
    services
  })

  it.live.prop(
    "requiresPayment: a generated exception (URLs, api_key=, Bearer values) never reaches the answer, the log or a span",
    [leakArb, fc.boolean()],
    ([leak, paid]) =>
      Effect.gen(function*() {
        current = leak.fail(leak.message)
        captured.logs.length = 0
        captured.spans.length = 0
        const settlements = ledger.settlements.length
        const output = yield* invoke(
          handler,
          paid ? AgentCoreEvents.request({ token }) : AgentCoreEvents.request({ method: "resources/list" })
        )
        assert.notInclude(JSON.stringify(output), leak.secret)
        assert.strictEqual(errorOf(output).requestId, REQUEST_ID)
        assert.notInclude(captured.text(), leak.secret)
        assert.strictEqual(ledger.settlements.length, settlements)
      }),
    { fastCheck: { numRuns: 150, seed: 6 } }
  )

  it.live.prop(
    "interceptor: a credits policy failing with a generated secret never leaks it",
    [leakArb],
    ([leak]) =>
      Effect.gen(function*() {
        policy = () => {
          throw new Error(leak.message)
        }
        captured.logs.length = 0
        captured.spans.length = 0
        const output = yield* invoke(intercept, AgentCoreEvents.request({ token }))
        assert.notInclude(JSON.stringify(output), leak.secret)
        assert.strictEqual(errorOf(output).requestId, REQUEST_ID)
        assert.notInclude(captured.text(), leak.secret)
      }),
    { fastCheck: { numRuns: 100, seed: 7 } }
  )
})
