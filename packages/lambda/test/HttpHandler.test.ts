import { Facilitator, PaymentContext, X402 } from "@effect-x402/core"
import { type HttpHandler, LambdaRuntime } from "@effect-x402/lambda"
import { httpHandler } from "@effect-x402/lambda/HttpHandler"
import { AgentCoreEvents, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { captureLogs } from "./helpers.js"

const DOMAIN = "abc123.execute-api.us-east-1.amazonaws.com"

// The handler's logs are kept, not printed: the tests where they matter assert on `logs.lines`.
const setup = (credits = 10) => {
  const seeded = TestFacilitator.seeded({ planId: "plan-1", agentId: "agent-1", credits })
  const logs = captureLogs()
  return {
    ...seeded,
    logs,
    layer: Layer.merge(TestFacilitator.layer(seeded.ledger), logs.layer),
    ctx: AgentCoreEvents.context()
  }
}

const header = (result: HttpHandler.HttpResult, name: string): string | undefined => {
  const headers = result.headers ?? {}
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name)
  return key === undefined ? undefined : String(headers[key])
}

const json = (result: HttpHandler.HttpResult) => JSON.parse(result.body ?? "null")

const required = (result: HttpHandler.HttpResult) =>
  Either.getOrThrow(X402.PaymentRequiredHeader.decodeEither(header(result, "payment-required")!))

const receipt = (result: HttpHandler.HttpResult) =>
  Either.getOrThrow(X402.SettleResponseHeader.decodeEither(header(result, "payment-response")!))

const ok = { statusCode: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ answer: 42 }) }

const operations = (ledger: TestFacilitator.Ledger) => ledger.calls.map((c) => `${c.operation}:${c.outcome}`)

describe("httpHandler: 402 and 502", () => {
  it.effect("answers a real 402 with payment-required when no token came, never calling the facilitator", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger } = setup()
      let ran = false
      const handler = httpHandler({ planId: "plan-1", agentId: "agent-1", layer })(() => {
        ran = true
        return ok
      })
      const result = yield* Effect.promise(() => handler(AgentCoreEvents.apiGatewayV2({ path: "/agent/ask" }), ctx))
      assert.strictEqual(result.statusCode, 402)
      assert.deepStrictEqual(json(result), {
        error: "Payment Required",
        message: "Payment required to access this resource"
      })
      const pr = required(result)
      assert.strictEqual(pr.x402Version, 2)
      assert.strictEqual(pr.resource.url, `https://${DOMAIN}/agent/ask`)
      assert.strictEqual(pr.accepts[0].planId, "plan-1")
      assert.deepStrictEqual(pr.accepts[0].extra, { version: "1", agentId: "agent-1", httpVerb: "POST" })
      assert.isFalse(ran)
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it.effect("binds the advertised verb and URL to the request unless configured", () =>
    Effect.gen(function*() {
      const { ctx, layer } = setup()
      const byRequest = httpHandler({ planId: "plan-1", layer })(() => ok)
      const get = yield* Effect.promise(() =>
        byRequest(AgentCoreEvents.apiGatewayV2({ method: "GET", path: "/q", query: "a=1" }), ctx)
      )
      assert.strictEqual(required(get).accepts[0].extra?.httpVerb, "GET")
      assert.strictEqual(required(get).resource.url, `https://${DOMAIN}/q`)
      const fixed = httpHandler({ planId: "plan-1", endpoint: "https://api.example/agent", httpVerb: "POST", layer })(
        () => ok
      )
      const pr = required(yield* Effect.promise(() => fixed(AgentCoreEvents.apiGatewayV2({ method: "GET" }), ctx)))
      assert.strictEqual(pr.resource.url, "https://api.example/agent")
      assert.strictEqual(pr.accepts[0].extra?.httpVerb, "POST")
    }))

  it.effect("answers 402 to a refused token, without running the handler", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger } = setup()
      let ran = false
      const handler = httpHandler({ planId: "plan-1", layer })(() => {
        ran = true
        return ok
      })
      const result = yield* Effect.promise(() => handler(AgentCoreEvents.apiGatewayV2({ token: "forged" }), ctx))
      assert.strictEqual(result.statusCode, 402)
      assert.strictEqual(json(result).message, "Verification failed: invalid_payload")
      assert.isDefined(header(result, "payment-required"))
      assert.isFalse(ran)
      assert.deepStrictEqual(operations(ledger), ["verify:invalid"])
    }))

  for (const fault of [{ _tag: "Timeout" }, { _tag: "Malformed" }, { _tag: "Unreachable" }] as const) {
    it.effect(`answers 502 when the facilitator fails at verify (${fault._tag})`, () =>
      Effect.gen(function*() {
        const { ctx, layer, ledger, token } = setup()
        ledger.failNext("verify", fault)
        let ran = false
        const handler = httpHandler({ planId: "plan-1", layer })(() => {
          ran = true
          return ok
        })
        const result = yield* Effect.promise(() => handler(AgentCoreEvents.apiGatewayV2({ token }), ctx))
        assert.strictEqual(result.statusCode, 502)
        assert.strictEqual(json(result).error, "Bad Gateway")
        assert.isUndefined(header(result, "payment-required"))
        assert.isFalse(ran)
      }))
  }
})

describe("httpHandler: paid answers", () => {
  it.effect("settles and adds payment-response to the handler's answer", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, subscriber, token } = setup()
      const handler = httpHandler({ planId: "plan-1", credits: 2, layer })(() => ({
        statusCode: 201,
        headers: { "content-type": "application/json", "x-agent": "a1" },
        body: JSON.stringify({ created: true }),
        cookies: ["session=1"]
      }))
      const result = yield* Effect.promise(() => handler(AgentCoreEvents.apiGatewayV2({ token }), ctx))
      assert.strictEqual(result.statusCode, 201)
      assert.deepStrictEqual(json(result), { created: true })
      assert.strictEqual(header(result, "x-agent"), "a1")
      assert.deepStrictEqual(result.cookies, ["session=1"])
      const settlement = receipt(result)
      assert.isTrue(settlement.success)
      assert.strictEqual(settlement.transaction, ledger.settlements[0].transaction)
      assert.strictEqual(settlement.creditsRedeemed, "2")
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 8)
      const [verify, settle] = ledger.calls
      assert.strictEqual(settle.agentRequestId, verify.agentRequestId)
    }))

  it.effect("sends plain values and Promises as JSON with status 200", () =>
    Effect.gen(function*() {
      const { ctx, layer, token } = setup()
      const plain = httpHandler({ planId: "plan-1", layer })(() => ({ answer: 42 }))
      const promised = httpHandler({ planId: "plan-1", layer })(async () => "text")
      const a = yield* Effect.promise(() => plain(AgentCoreEvents.apiGatewayV2({ token }), ctx))
      assert.strictEqual(a.statusCode, 200)
      assert.deepStrictEqual(json(a), { answer: 42 })
      assert.isTrue(receipt(a).success)
      const b = yield* Effect.promise(() => promised(AgentCoreEvents.apiGatewayV2({ token }), ctx))
      assert.strictEqual(json(b), "text")
    }))

  it.effect("passes answers >= 400 through without settling", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = httpHandler({ planId: "plan-1", layer })(() => ({ statusCode: 404, body: "not found" }))
      const result = yield* Effect.promise(() => handler(AgentCoreEvents.apiGatewayV2({ token }), ctx))
      assert.strictEqual(result.statusCode, 404)
      assert.strictEqual(result.body, "not found")
      assert.isUndefined(header(result, "payment-response"))
      assert.deepStrictEqual(operations(ledger), ["verify:valid"])
    }))

  for (
    const [name, body] of [
      ["throws", () => {
        throw new Error("secret stack detail")
      }],
      ["fails", () => Effect.fail("nope")],
      ["returns nothing", () => undefined]
    ] as const
  ) {
    it.effect(`answers 500 and settles nothing when the handler ${name}`, () =>
      Effect.gen(function*() {
        const { ctx, layer, ledger, logs, token } = setup()
        const handler = httpHandler({ planId: "plan-1", layer })(body)
        const result = yield* Effect.promise(() => handler(AgentCoreEvents.apiGatewayV2({ token }), ctx))
        assert.strictEqual(result.statusCode, 500)
        assert.notInclude(result.body ?? "", "secret")
        assert.deepStrictEqual(operations(ledger), ["verify:valid"])
        // The detail is in the log, under the id the caller got.
        const requestId = json(result).requestId
        assert.isString(requestId)
        assert.isTrue(logs.lines.some((line) => line.startsWith("ERROR") && line.includes(requestId)))
      }))
  }

  it.effect("settles the amount the handler asks for: X-Credits-To-Charge (removed), or PaymentContext", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, subscriber, token } = setup()
      const byHeader = httpHandler({ planId: "plan-1", layer })(() => ({
        statusCode: 200,
        headers: { "X-Credits-To-Charge": "3" },
        body: "ok"
      }))
      const a = yield* Effect.promise(() => byHeader(AgentCoreEvents.apiGatewayV2({ token }), ctx))
      assert.isUndefined(header(a, "x-credits-to-charge"))
      assert.strictEqual(receipt(a).creditsRedeemed, "3")
      let payer: string | undefined
      const byContext = httpHandler({ planId: "plan-1", layer })(() =>
        Effect.gen(function*() {
          const payment = yield* PaymentContext.PaymentContext
          payer = payment.payer
          yield* PaymentContext.chargeCredits(4)
          return { statusCode: 200, headers: { "x-credits-to-charge": "9" }, body: "ok" }
        })
      )
      const b = yield* Effect.promise(() => byContext(AgentCoreEvents.apiGatewayV2({ token }), ctx))
      assert.strictEqual(receipt(b).creditsRedeemed, "4")
      assert.strictEqual(payer, subscriber)
      assert.deepStrictEqual(ledger.settlements.map((s) => s.credits), [3, 4])
    }))

  it.effect("prices by the event with a credits function", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = httpHandler({
        planId: "plan-1",
        credits: (event) => JSON.parse(event.body ?? "{}").detailed === true ? 5 : 1,
        layer
      })(() => ok)
      yield* Effect.promise(() => handler(AgentCoreEvents.apiGatewayV2({ token, json: { detailed: true } }), ctx))
      assert.deepStrictEqual(ledger.calls.map((c) => c.maxAmount), [5, 5])
    }))

  it.effect("reads custom token headers, in order and in any case", () =>
    Effect.gen(function*() {
      const { ctx, layer, token } = setup()
      const handler = httpHandler({ planId: "plan-1", tokenHeader: ["X-Payment", "X-Other-Payment"], layer })(() => ok)
      const result = yield* Effect.promise(() =>
        handler(AgentCoreEvents.apiGatewayV2({ headers: { "X-PAYMENT": "", "x-other-payment": token } }), ctx)
      )
      assert.strictEqual(result.statusCode, 200)
      const ignored = yield* Effect.promise(() => handler(AgentCoreEvents.apiGatewayV2({ token }), ctx))
      assert.strictEqual(ignored.statusCode, 402)
    }))

  it("refuses Authorization as a token header at cold start, naming the fix", () => {
    assert.throws(
      () => httpHandler({ planId: "plan-1", tokenHeader: ["X-Payment", "Authorization"] })(() => ok),
      /tokenHeader must not be Authorization/
    )
  })
})

describe("httpHandler: settlement failure, hooks, input, runtime", () => {
  it.effect("withholds the output when settlement is refused: 402 with a success: false receipt", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      ledger.failNext("settle", { _tag: "Rejected", reason: "insufficient_funds" })
      const handler = httpHandler({ planId: "plan-1", layer })(() => ({ statusCode: 200, body: "paid content" }))
      const result = yield* Effect.promise(() => handler(AgentCoreEvents.apiGatewayV2({ token }), ctx))
      assert.strictEqual(result.statusCode, 402)
      assert.notInclude(result.body ?? "", "paid content")
      assert.isFalse(receipt(result).success)
      assert.isDefined(header(result, "payment-required"))
    }))

  it.effect("withholds with 502 when the settle outcome is unknown, releases under the release policy", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      ledger.failNext("settle", { _tag: "Indeterminate", applied: true })
      const withhold = httpHandler({ planId: "plan-1", layer })(() => ({ statusCode: 200, body: "paid content" }))
      const lost = yield* Effect.promise(() => withhold(AgentCoreEvents.apiGatewayV2({ token }), ctx))
      assert.strictEqual(lost.statusCode, 502)
      const release = httpHandler({ planId: "plan-1", onSettleFailure: "release", layer })(() => ({
        statusCode: 200,
        body: "paid content"
      }))
      // release is for outages: the facilitator unreachable lets the output go...
      ledger.failNext("settle", { _tag: "Unreachable" })
      const released = yield* Effect.promise(() => release(AgentCoreEvents.apiGatewayV2({ token }), ctx))
      assert.strictEqual(released.statusCode, 200)
      assert.strictEqual(released.body, "paid content")
      // ...a definite refusal never does, or every caller who cannot pay would get the output.
      ledger.failNext("settle", { _tag: "Rejected" })
      const refused = yield* Effect.promise(() => release(AgentCoreEvents.apiGatewayV2({ token }), ctx))
      assert.strictEqual(refused.statusCode, 402)
      assert.notInclude(String(refused.body), "paid content")
      assert.isFalse(receipt(refused).success)
    }))

  it.effect("runs the hooks; onPaymentError may replace the 402", () =>
    Effect.gen(function*() {
      const { ctx, layer, token } = setup()
      const seen: Array<string> = []
      const handler = httpHandler({
        planId: "plan-1",
        layer,
        onBeforeVerify: () => void seen.push("before"),
        onAfterVerify: () => void seen.push("after"),
        onAfterSettle: (credits) => void seen.push(`settled:${credits}`),
        onPaymentError: (error) => ({ statusCode: 402, body: `custom: ${error._tag}` })
      })(() => ok)
      yield* Effect.promise(() => handler(AgentCoreEvents.apiGatewayV2({ token }), ctx))
      const replaced = yield* Effect.promise(() => handler(AgentCoreEvents.apiGatewayV2(), ctx))
      assert.deepStrictEqual(seen, ["before", "after", "settled:1"])
      assert.strictEqual(replaced.statusCode, 402)
      assert.strictEqual(replaced.body, "custom: PaymentRequired")
    }))

  it.effect("answers 400 to events that are not API Gateway v2 / Function URL events", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger } = setup()
      const handler = httpHandler({ planId: "plan-1", layer })(() => ok)
      for (const event of [null, {}, { requestContext: {} }, AgentCoreEvents.request()]) {
        const result = yield* Effect.promise(() => handler(event, ctx))
        assert.strictEqual(result.statusCode, 400)
        assert.strictEqual(json(result).error, "Bad Request")
      }
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it.effect("builds its layers once across warm invocations", () =>
    Effect.gen(function*() {
      const { ctx, ledger, token } = setup(100)
      let builds = 0
      const layer = Layer.effect(
        Facilitator.Facilitator,
        Effect.sync(() => (builds++, TestFacilitator.makeFacilitator(ledger)))
      )
      const handler = httpHandler({ planId: "plan-1", layer })(() => ok)
      for (let i = 0; i < 15; i++) yield* Effect.promise(() => handler(AgentCoreEvents.apiGatewayV2({ token }), ctx))
      assert.strictEqual(builds, 1)
      assert.strictEqual(ledger.settlements.length, 15)
    }))

  it("refuses a handler whose services the options do not provide, at compile time", () => {
    const { layer } = setup()
    // PaymentContext is always provided to the handler
    httpHandler({ planId: "plan-1", layer })(() => Effect.map(PaymentContext.PaymentContext, () => ok))
    // @ts-expect-error Facilitator is not a service of the handler
    httpHandler({ planId: "plan-1", layer })(() => Effect.map(Facilitator.Facilitator, () => ok))
    assert.isFunction(LambdaRuntime.toHandler)
  })
})
