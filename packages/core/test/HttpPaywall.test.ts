import { HttpPaywall, PaymentContext, PaymentError, X402 } from "@effect-x402/core"
import { TestFacilitator, TestTelemetry } from "@effect-x402/testing"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Option, Redacted, Schedule, Schema, Stream } from "effect"
import { post, serve } from "./HttpPaywall.fixtures.js"

// The server's logs are captured, not printed: the tests where they matter assert on them.
const setup = (credits = 10) => {
  const { ledger, subscriber, token } = TestFacilitator.seeded({ credits, agentId: "agent-1" })
  const telemetry = TestTelemetry.make()
  return { ledger, subscriber, token, telemetry, layer: Layer.merge(TestFacilitator.layer(ledger), telemetry.layer) }
}

const operations = (ledger: TestFacilitator.Ledger) => ledger.calls.map((call) => call.operation)

describe("HttpPaywall mapping", () => {
  it("reads the token from the configured headers, any case, first non-blank wins", () => {
    assert.strictEqual(
      Option.map(HttpPaywall.tokenFromHeaders({ "Payment-Signature": "tok" }), Redacted.value).pipe(Option.getOrNull),
      "tok"
    )
    assert.isTrue(Option.isNone(HttpPaywall.tokenFromHeaders({ "payment-signature": "  " })))
    assert.isTrue(Option.isNone(HttpPaywall.tokenFromHeaders(undefined)))
    const token = HttpPaywall.tokenFromHeaders({ "x-b": "second", "X-A": "" }, ["x-a", "x-b"])
    assert.strictEqual(Option.map(token, Redacted.value).pipe(Option.getOrNull), "second")
    // only own properties
    const hostile = Object.create({ "payment-signature": "inherited" })
    assert.isTrue(Option.isNone(HttpPaywall.tokenFromHeaders(hostile)))
  })

  it("maps every payment failure to a status, headers and a body without secrets", () => {
    const paymentRequired = X402.paymentRequired({ planIds: ["plan-1"], network: "eip155:84532" })
    const missing = HttpPaywall.failureAnswer(
      new PaymentError.PaymentRequired({ reason: "MissingToken", paymentRequired, description: "pay first" })
    )
    assert.strictEqual(missing.status, 402)
    assert.deepStrictEqual(missing.body, { error: "Payment Required", message: "pay first" })
    assert.deepStrictEqual(
      Either.getOrThrow(X402.PaymentRequiredHeader.decodeEither(missing.headers["payment-required"])),
      paymentRequired
    )
    const unavailable = HttpPaywall.failureAnswer(
      new PaymentError.VerifyFailed({
        reason: "Unavailable",
        paymentRequired,
        cause: new PaymentError.FacilitatorError({ operation: "verify", kind: "Timeout", requestSent: true })
      })
    )
    assert.strictEqual(unavailable.status, 502)
    assert.isUndefined(unavailable.headers["payment-required"])
    const indeterminate = HttpPaywall.failureAnswer(
      new PaymentError.SettleFailed({ reason: "Indeterminate", paymentRequired, credits: 1 })
    )
    assert.strictEqual(indeterminate.status, 502)
    const receipt = Either.getOrThrow(X402.SettleResponseHeader.decodeEither(indeterminate.headers["payment-response"]))
    assert.deepStrictEqual(receipt, {
      success: false,
      errorReason: "unexpected_settle_error",
      transaction: "",
      network: "eip155:84532"
    })
    assert.isFalse(HttpPaywall.isChargeable(400))
    assert.isTrue(HttpPaywall.isChargeable(204))
  })
})

describe("HttpPaywall.middleware on an HttpApp, over HTTP", () => {
  const echo = Effect.gen(function*() {
    const payment = yield* PaymentContext.PaymentContext
    return yield* HttpServerResponse.json({ answer: 42, payer: payment.payer })
  })

  it.scopedLive("no token: 402 with payment-required, and neither the facilitator nor the handler is called", () => {
    const { layer, ledger } = setup()
    let ran = false
    const app = Effect.sync(() => {
      ran = true
      return HttpServerResponse.text("paid output")
    }).pipe(HttpPaywall.middleware({ planId: "plan-1", agentId: "agent-1", credits: 2 }))
    return Effect.gen(function*() {
      const url = yield* serve(app)
      const seen = yield* post(`${url}/paid?x=1`)
      assert.strictEqual(seen.status, 402)
      assert.deepStrictEqual(seen.json, {
        error: "Payment Required",
        message: "Payment required to access this resource"
      })
      assert.deepStrictEqual(seen.paymentRequired?.accepts, [{
        scheme: "nvm:erc4337",
        network: "eip155:84532",
        planId: "plan-1",
        extra: { version: "1", agentId: "agent-1", httpVerb: "POST" }
      }])
      assert.strictEqual(seen.paymentRequired?.resource.url, `${url}/paid`)
      assert.isFalse(ran)
      assert.strictEqual(ledger.calls.length, 0)
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("paid: verifies, runs the handler with the payment, settles once, adds the receipt", () => {
    const { layer, ledger, subscriber, token } = setup()
    const app = echo.pipe(HttpPaywall.middleware({ planId: "plan-1", credits: 2, endpoint: "https://agent.example/x" }))
    return Effect.gen(function*() {
      const url = yield* serve(app)
      const seen = yield* post(url, { token })
      assert.strictEqual(seen.status, 200)
      assert.deepStrictEqual(seen.json, { answer: 42, payer: subscriber })
      assert.strictEqual(seen.paymentResponse?.success, true)
      assert.strictEqual(seen.paymentResponse?.creditsRedeemed, "2")
      assert.strictEqual(seen.paymentResponse?.remainingBalance, "8")
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 8)
      assert.deepStrictEqual(operations(ledger), ["verify", "settle"])
      assert.strictEqual(ledger.calls[0].resourceUrl, "https://agent.example/x")
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("a token the facilitator refuses: 402 with the reason, nothing settled", () => {
    const { layer, ledger } = setup()
    const app = echo.pipe(HttpPaywall.middleware({ planId: "plan-1" }))
    return Effect.gen(function*() {
      const url = yield* serve(app)
      const seen = yield* post(url, { token: "forged" })
      assert.strictEqual(seen.status, 402)
      assert.deepStrictEqual(seen.json, { error: "Payment Required", message: "Verification failed: invalid_payload" })
      assert.isDefined(seen.paymentRequired)
      assert.deepStrictEqual(operations(ledger), ["verify"])
      assert.notInclude(seen.text, "forged")
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("facilitator unavailable at verify: 502, the handler does not run", () => {
    const { layer, ledger, token } = setup()
    let ran = false
    const app = Effect.sync(() => {
      ran = true
      return HttpServerResponse.text("x")
    }).pipe(HttpPaywall.middleware({ planId: "plan-1" }))
    return Effect.gen(function*() {
      const url = yield* serve(app)
      for (const fault of [{ _tag: "Timeout" }, { _tag: "Malformed" }, { _tag: "Unreachable" }] as const) {
        ledger.failNext("verify", fault)
        const seen = yield* post(url, { token })
        assert.strictEqual(seen.status, 502, fault._tag)
        assert.strictEqual((seen.json as { error: string }).error, "Bad Gateway")
        assert.isUndefined(seen.paymentRequired)
      }
      assert.isFalse(ran)
      assert.isFalse(operations(ledger).includes("settle"))
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("handler answers >= 400, fails or dies: passed through, never settled", () => {
    const { layer, ledger, subscriber, telemetry, token } = setup()
    class Boom extends Schema.TaggedError<Boom>()("Boom", {}) {}
    const router = HttpRouter.empty.pipe(
      HttpRouter.post("/404", HttpServerResponse.text("nope", { status: 404 })),
      HttpRouter.post("/500", HttpServerResponse.text("oops", { status: 500 })),
      HttpRouter.post("/fail", Effect.fail(new Boom())),
      HttpRouter.post("/die", Effect.die(new Error("kaput"))),
      HttpRouter.use(HttpPaywall.middleware({ planId: "plan-1" }))
    )
    return Effect.gen(function*() {
      const url = yield* serve(router)
      assert.strictEqual((yield* post(`${url}/404`, { token })).status, 404)
      assert.strictEqual((yield* post(`${url}/500`, { token })).text, "oops")
      assert.strictEqual((yield* post(`${url}/fail`, { token })).status, 500)
      const died = yield* post(`${url}/die`, { token })
      assert.strictEqual(died.status, 500)
      assert.isUndefined(died.paymentResponse)
      // The defect's detail is in the log, under the id the caller got; never in the answer.
      assert.notInclude(died.text, "kaput")
      const requestId = (died.json as { requestId: string }).requestId
      assert.isTrue(telemetry.logs.some((line) => line.startsWith("ERROR") && line.includes(requestId)))
      assert.isTrue(telemetry.logs.some((line) => line.includes("kaput")))
      assert.deepStrictEqual(operations(ledger), ["verify", "verify", "verify", "verify"])
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 10)
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("per-route price, fixed or from the request", () => {
    const { layer, ledger, subscriber, token } = setup()
    const priceOfBody = (request: HttpServerRequest.HttpServerRequest) =>
      Effect.map(request.json, (body) => (body as { pages: number }).pages)
    const router = HttpRouter.empty.pipe(
      HttpRouter.post("/cheap", HttpServerResponse.text("cheap").pipe(HttpPaywall.middleware({ planId: "plan-1" }))),
      HttpRouter.post(
        "/by-pages",
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => request.json).pipe(
          Effect.flatMap((body) => HttpServerResponse.json(body)),
          HttpPaywall.middleware({ planId: "plan-1", credits: priceOfBody })
        )
      )
    )
    return Effect.gen(function*() {
      const url = yield* serve(router)
      assert.strictEqual((yield* post(`${url}/cheap`, { token })).paymentResponse?.creditsRedeemed, "1")
      const seen = yield* post(`${url}/by-pages`, { token, body: { pages: 3 } })
      // the handler can still read the body the price was taken from
      assert.deepStrictEqual(seen.json, { pages: 3 })
      assert.strictEqual(seen.paymentResponse?.creditsRedeemed, "3")
      assert.deepStrictEqual(ledger.calls.map((call) => call.maxAmount), [1, 1, 3, 3])
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 6)
      // a price the request makes invalid: 500, nothing verified
      const bad = yield* post(`${url}/by-pages`, { token, body: { pages: -1 } })
      assert.strictEqual(bad.status, 500)
      assert.strictEqual(ledger.calls.length, 4)
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("the handler overrides the amount: PaymentContext.chargeCredits, or the X-Credits-To-Charge header", () => {
    const { layer, ledger, subscriber, token } = setup()
    const router = HttpRouter.empty.pipe(
      HttpRouter.post(
        "/context",
        Effect.zipRight(PaymentContext.chargeCredits(5), HttpServerResponse.text("five"))
      ),
      HttpRouter.post("/header", HttpServerResponse.text("three", { headers: { "X-Credits-To-Charge": "3" } })),
      HttpRouter.post("/bad", HttpServerResponse.text("secret output", { headers: { "x-credits-to-charge": "-1" } })),
      HttpRouter.use(HttpPaywall.middleware({ planId: "plan-1", credits: 1 }))
    )
    return Effect.gen(function*() {
      const url = yield* serve(router)
      assert.strictEqual((yield* post(`${url}/context`, { token })).paymentResponse?.creditsRedeemed, "5")
      const header = yield* post(`${url}/header`, { token })
      assert.strictEqual(header.paymentResponse?.creditsRedeemed, "3")
      assert.isUndefined(header.headers["x-credits-to-charge"])
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 2)
      // an invalid amount is never charged, and the output is withheld
      const bad = yield* post(`${url}/bad`, { token })
      assert.strictEqual(bad.status, 500)
      assert.notInclude(bad.text, "secret output")
      assert.strictEqual(bad.paymentResponse?.success, false)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 2)
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("settlement fails: the output is withheld by default, released with a success:false receipt on request when the outcome is unknown", () => {
    const { layer, ledger, token } = setup()
    const router = HttpRouter.empty.pipe(
      HttpRouter.post(
        "/withhold",
        HttpServerResponse.text("paid output").pipe(HttpPaywall.middleware({ planId: "plan-1" }))
      ),
      HttpRouter.post(
        "/release",
        HttpServerResponse.text("paid output").pipe(
          HttpPaywall.middleware({ planId: "plan-1", onSettleFailure: "release" })
        )
      )
    )
    return Effect.gen(function*() {
      const url = yield* serve(router)
      ledger.failNext("settle", { _tag: "Rejected", reason: "insufficient_funds" })
      const rejected = yield* post(`${url}/withhold`, { token })
      assert.strictEqual(rejected.status, 402)
      assert.deepStrictEqual(rejected.json, {
        error: "Payment Required",
        message: "Settlement rejected: insufficient_funds"
      })
      assert.isDefined(rejected.paymentRequired)
      assert.strictEqual(rejected.paymentResponse?.success, false)
      assert.strictEqual(rejected.paymentResponse?.errorReason, "insufficient_funds")

      ledger.failNext("settle", { _tag: "Timeout" })
      const unknown = yield* post(`${url}/withhold`, { token })
      assert.strictEqual(unknown.status, 502)
      assert.notInclude(unknown.text, "paid output")
      assert.strictEqual(unknown.paymentResponse?.success, false)

      // release is for outages: a settle whose outcome is unknown lets the output go...
      ledger.failNext("settle", { _tag: "Timeout" })
      const released = yield* post(`${url}/release`, { token })
      assert.strictEqual(released.status, 200)
      assert.strictEqual(released.text, "paid output")
      assert.strictEqual(released.paymentResponse?.success, false)

      // ...a definite refusal never does, or every caller who cannot pay would get the output
      ledger.failNext("settle", { _tag: "Rejected", reason: "insufficient_funds" })
      const refused = yield* post(`${url}/release`, { token })
      assert.strictEqual(refused.status, 402)
      assert.notInclude(refused.text, "paid output")
      assert.strictEqual(refused.paymentResponse?.success, false)
      assert.strictEqual(operations(ledger).filter((op) => op === "settle").length, 4)
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("a streamed body is not buffered: settlement happens before the stream ends", () => {
    const { layer, ledger, token } = setup()
    // The second chunk waits for the settlement: a middleware that buffered the body would hang here.
    const settled = Effect.repeat(Effect.sync(() => ledger.settlements.length), {
      until: (n) => n > 0,
      schedule: Schedule.spaced("5 millis")
    }).pipe(Effect.as("settled"))
    const app = HttpServerResponse.stream(
      Stream.concat(Stream.make("first;"), Stream.fromEffect(settled)).pipe(Stream.encodeText),
      { contentType: "text/plain" }
    ).pipe(HttpPaywall.middleware({ planId: "plan-1" }))
    return Effect.gen(function*() {
      const url = yield* serve(app)
      const seen = yield* post(url, { token })
      assert.strictEqual(seen.status, 200)
      assert.strictEqual(seen.text, "first;settled")
      assert.strictEqual(seen.paymentResponse?.success, true)
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("token headers are configurable, and onPaymentError may replace the answer", () => {
    const { layer, token } = setup()
    const app = HttpServerResponse.text("ok").pipe(
      HttpPaywall.middleware({
        planId: "plan-1",
        tokenHeaders: ["x-payment", "payment-signature"],
        onPaymentError: (error) =>
          error._tag === "PaymentRequired" ? HttpServerResponse.text("buy a plan", { status: 402 }) : undefined
      })
    )
    return Effect.gen(function*() {
      const url = yield* serve(app)
      assert.strictEqual((yield* post(url, { headers: { "X-Payment": token } })).status, 200)
      const replaced = yield* post(url)
      assert.strictEqual(replaced.status, 402)
      assert.strictEqual(replaced.text, "buy a plan")
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("concurrent paid calls on one balance: each verified call settles exactly once", () => {
    const { layer, ledger, subscriber, token } = setup(6)
    const app = HttpServerResponse.text("ok").pipe(HttpPaywall.middleware({ planId: "plan-1", credits: 2 }))
    return Effect.gen(function*() {
      const url = yield* serve(app)
      const seen = yield* Effect.forEach(Chunk.range(1, 5), () => post(url, { token }), { concurrency: "unbounded" })
      const paid = seen.filter((s) => s.status === 200)
      assert.strictEqual(paid.length, 3)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 0)
      const verified = ledger.calls.filter((call) => call.operation === "verify" && call.outcome === "valid").length
      const settles = ledger.calls.filter((call) => call.operation === "settle").length
      assert.strictEqual(settles, verified)
    }).pipe(Effect.provide(layer))
  })
})
