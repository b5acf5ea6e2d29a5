import { HttpPaywall, PaymentContext } from "@effect-x402/core"
import { TestFacilitator, TestTelemetry } from "@effect-x402/testing"
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSchema,
  HttpServerResponse
} from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { post, serveLayer } from "./HttpPaywall.fixtures.js"

class Premium extends HttpApiMiddleware.Tag<Premium>()("Premium", HttpPaywall.paidTagOptions) {}

class Busy extends Schema.TaggedError<Busy>()("Busy", {}, HttpApiSchema.annotations({ status: 503 })) {}

const Summary = Schema.Struct({ summary: Schema.String, payer: Schema.optional(Schema.String) })

class Api extends HttpApi.make("agent").add(
  HttpApiGroup.make("tools")
    .add(
      HttpApiEndpoint.post("summarize", "/summarize")
        .setPayload(Schema.Struct({ text: Schema.String, busy: Schema.optional(Schema.Boolean) }))
        .addSuccess(Summary)
        .addError(Busy)
        .middleware(HttpPaywall.Paid)
    )
    .add(
      HttpApiEndpoint.post("translate", "/translate")
        .setPayload(Schema.Struct({ text: Schema.String }))
        .addSuccess(Schema.String)
        .middleware(Premium)
    )
    .add(HttpApiEndpoint.post("free", "/free").addSuccess(Schema.String))
) {}

const ToolsLive = HttpApiBuilder.group(Api, "tools", (handlers) =>
  handlers
    .handle("summarize", ({ payload }) =>
      Effect.gen(function*() {
        if (payload.busy === true) return yield* new Busy()
        const payment = yield* PaymentContext.PaymentContext
        // a long text costs one more credit than verified
        if (payload.text.length > 10) yield* payment.chargeCredits(payment.credits + 1)
        return { summary: payload.text.slice(0, 5), payer: payment.payer }
      }))
    .handle("translate", ({ payload }) => Effect.succeed(payload.text.toUpperCase()))
    .handle("free", () => Effect.succeed("free")))

const serveApi = (options: Partial<HttpPaywall.Options> = {}) =>
  serveLayer(
    HttpApiBuilder.serve().pipe(
      Layer.provide(HttpApiBuilder.api(Api)),
      Layer.provide(ToolsLive),
      Layer.provide(HttpPaywall.layerHttpApi({ planId: "plan-1", credits: 2, ...options })),
      Layer.provide(Layer.effect(Premium, HttpPaywall.httpApiMiddleware({ planId: "plan-1", credits: 5 })))
    )
  )

// The server's logs are captured, not printed: the tests where they matter assert on them.
const setup = (credits = 10) => {
  const { ledger, subscriber, token } = TestFacilitator.seeded({ credits })
  const telemetry = TestTelemetry.make()
  return { ledger, subscriber, token, telemetry, layer: Layer.merge(TestFacilitator.layer(ledger), telemetry.layer) }
}

describe("HttpPaywall on HttpApi endpoints, over HTTP", () => {
  it.scopedLive("no token: the canonical 402, and the handler does not run", () => {
    const { layer, ledger } = setup()
    return Effect.gen(function*() {
      const url = yield* serveApi()
      const seen = yield* post(`${url}/summarize`, { body: { text: "hello" } })
      assert.strictEqual(seen.status, 402)
      assert.deepStrictEqual(seen.json, {
        error: "Payment Required",
        message: "Payment required to access this resource"
      })
      assert.strictEqual(seen.paymentRequired?.accepts[0].planId, "plan-1")
      assert.strictEqual(seen.paymentRequired?.resource.url, `${url}/summarize`)
      assert.strictEqual(ledger.calls.length, 0)
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("paid: the handler reads the payment as a service, the answer carries the receipt", () => {
    const { layer, ledger, subscriber, token } = setup()
    return Effect.gen(function*() {
      const url = yield* serveApi()
      const seen = yield* post(`${url}/summarize`, { token, body: { text: "hello" } })
      assert.strictEqual(seen.status, 200)
      assert.deepStrictEqual(seen.json, { summary: "hello", payer: subscriber })
      assert.strictEqual(seen.paymentResponse?.success, true)
      assert.strictEqual(seen.paymentResponse?.creditsRedeemed, "2")
      // the handler charged one more for a long text
      const long = yield* post(`${url}/summarize`, { token, body: { text: "a rather long text" } })
      assert.strictEqual(long.paymentResponse?.creditsRedeemed, "3")
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 5)
      // a free endpoint of the same API stays free
      const free = yield* post(`${url}/free`)
      assert.strictEqual(free.json, "free")
      assert.isUndefined(free.paymentResponse)
      assert.deepStrictEqual(ledger.calls.map((call) => call.operation), ["verify", "settle", "verify", "settle"])
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("one tag per price: another middleware tag with its own options", () => {
    const { layer, ledger, token } = setup()
    return Effect.gen(function*() {
      const url = yield* serveApi()
      const seen = yield* post(`${url}/translate`, { token, body: { text: "hi" } })
      assert.strictEqual(seen.json, "HI")
      assert.strictEqual(seen.paymentResponse?.creditsRedeemed, "5")
      assert.deepStrictEqual(ledger.calls.map((call) => call.maxAmount), [5, 5])
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("errors of the endpoint and invalid payloads are not settled", () => {
    const { layer, ledger, subscriber, token } = setup()
    return Effect.gen(function*() {
      const url = yield* serveApi()
      const busy = yield* post(`${url}/summarize`, { token, body: { text: "x", busy: true } })
      assert.strictEqual(busy.status, 503)
      assert.isUndefined(busy.paymentResponse)
      const invalid = yield* post(`${url}/summarize`, { token, body: { nope: 1 } })
      assert.strictEqual(invalid.status, 400)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 10)
      assert.isFalse(ledger.calls.some((call) => call.operation === "settle"))
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("facilitator failures: 502 at verify; a failed settlement withholds the output", () => {
    const { layer, ledger, token } = setup()
    return Effect.gen(function*() {
      const url = yield* serveApi()
      ledger.failNext("verify", { _tag: "Timeout" })
      const verify = yield* post(`${url}/summarize`, { token, body: { text: "hello" } })
      assert.strictEqual(verify.status, 502)
      assert.strictEqual((verify.json as { error: string }).error, "Bad Gateway")

      ledger.failNext("settle", { _tag: "Unreachable" })
      const settle = yield* post(`${url}/summarize`, { token, body: { text: "hello" } })
      assert.strictEqual(settle.status, 502)
      assert.notInclude(settle.text, "summary")
      assert.strictEqual(settle.paymentResponse?.success, false)
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("release policy: on an outage the output goes out with a success:false receipt, never on a refusal", () => {
    const { layer, ledger, token } = setup()
    return Effect.gen(function*() {
      const url = yield* serveApi({ onSettleFailure: "release" })
      ledger.failNext("settle", { _tag: "Unreachable" })
      const seen = yield* post(`${url}/summarize`, { token, body: { text: "hello" } })
      assert.strictEqual(seen.status, 200)
      assert.strictEqual((seen.json as { summary: string }).summary, "hello")
      assert.strictEqual(seen.paymentResponse?.success, false)
      ledger.failNext("settle", { _tag: "Rejected", reason: "insufficient_funds" })
      const refused = yield* post(`${url}/summarize`, { token, body: { text: "hello" } })
      assert.strictEqual(refused.status, 402)
      assert.notInclude(refused.text, "hello")
      assert.strictEqual(refused.paymentResponse?.errorReason, "insufficient_funds")
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("onPaymentError may replace the answer", () => {
    const { layer } = setup()
    return Effect.gen(function*() {
      const url = yield* serveApi({
        onPaymentError: () => HttpServerResponse.text("see https://agent.example/plans", { status: 402 })
      })
      const seen = yield* post(`${url}/summarize`, { body: { text: "hello" } })
      assert.strictEqual(seen.status, 402)
      assert.strictEqual(seen.text, "see https://agent.example/plans")
    }).pipe(Effect.provide(layer))
  })
})
