import { Facilitator } from "@effect-x402/core"
import type { AgentCore, LambdaRuntime } from "@effect-x402/lambda"
import { interceptor as makeInterceptor, type Options } from "@effect-x402/lambda/Interceptor"
import { AgentCoreEvents, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import {
  bodyOf,
  captureLogs,
  errorOf,
  forwardedOf,
  headerOf,
  paymentRequiredOf,
  receiptOf,
  responseOf,
  resultOf
} from "./helpers.js"

const ARN = "arn:aws:lambda:us-east-1:123456789012:function:x402-interceptor"

// Quiet by default (the library's log lines stay out of the test output); a test that reads the
// logs passes its own `services`.
const interceptor = (<R = never, LE = never, SE = never>(options: Options<R, LE, SE>) =>
  makeInterceptor({
    services: captureLogs().layer as unknown as Layer.Layer<R, SE>,
    ...options
  })) as typeof makeInterceptor

const setup = (credits = 20) => {
  const seeded = TestFacilitator.seeded({ planId: "plan-1", agentId: "agent-1", credits })
  return {
    ...seeded,
    layer: TestFacilitator.layer(seeded.ledger),
    ctx: AgentCoreEvents.context({ invokedFunctionArn: ARN })
  }
}

const operations = (ledger: TestFacilitator.Ledger) => ledger.calls.map((c) => `${c.operation}:${c.maxAmount}`)

/** Runs the REQUEST phase, then the RESPONSE phase with the id it forwarded, as the gateway does. */
const roundTrip = (
  handler: (event: unknown, context: LambdaRuntime.LambdaContext) => Promise<AgentCore.InterceptorOutput>,
  ctx: LambdaRuntime.LambdaContext,
  options: AgentCoreEvents.ResponseOptions
) =>
  Effect.gen(function*() {
    const forwarded = forwardedOf(yield* Effect.promise(() => handler(AgentCoreEvents.request(options), ctx)))
    const agentRequestId = forwarded.headers?.["x-nvm-agent-request-id"]
    const output = yield* Effect.promise(() =>
      handler(AgentCoreEvents.response({ ...options, forwardedHeaders: forwarded.headers }), ctx)
    )
    return { forwarded, agentRequestId, output }
  })

describe("interceptor: REQUEST phase", () => {
  it.effect("answers the 402-style result without a token, naming the tool, with the Lambda ARN as resource", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger } = setup()
      const handler = interceptor({ planId: "plan-1", agentId: "agent-1", layer })
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ tool: "getPatient", id: 5 }), ctx))
      assert.strictEqual(responseOf(output).statusCode, 200)
      assert.strictEqual(bodyOf(output).id, 5)
      assert.deepStrictEqual(errorOf(output), {
        error: "Payment required",
        code: 402,
        message: "Payment required for tool: getPatient"
      })
      assert.deepStrictEqual(resultOf(output)._meta, { x402: true })
      const required = paymentRequiredOf(output)
      assert.strictEqual(required.x402Version, 2)
      assert.strictEqual(required.resource.url, ARN)
      assert.strictEqual(required.accepts[0].planId, "plan-1")
      assert.strictEqual(required.accepts[0].extra?.agentId, "agent-1")
      assert.strictEqual(required.accepts[0].extra?.httpVerb, "POST")
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it.effect("advertises the configured endpoint over the ARN", () =>
    Effect.gen(function*() {
      const { ctx, layer } = setup()
      const handler = interceptor({ planId: "plan-1", endpoint: "https://gw.example/mcp", layer })
      const required = paymentRequiredOf(yield* Effect.promise(() => handler(AgentCoreEvents.request(), ctx)))
      assert.strictEqual(required.resource.url, "https://gw.example/mcp")
    }))

  it.effect("answers a refused token with the 402-style result carrying the bare reason", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger } = setup()
      const handler = interceptor({ planId: "plan-1", layer })
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token: "forged" }), ctx))
      assert.deepStrictEqual(errorOf(output), { error: "Payment required", code: 402, message: "invalid_payload" })
      assert.strictEqual(paymentRequiredOf(output).accepts[0].planId, "plan-1")
      assert.deepStrictEqual(ledger.calls.map((c) => c.outcome), ["invalid"])
    }))

  it.effect("forwards a verified call without the token, with the verified x-nvm-agent-request-id", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = interceptor({ planId: "plan-1", credits: 3, layer })
      const event = AgentCoreEvents.request({
        token,
        tokenHeader: "Payment-Signature",
        headers: { "Mcp-Session-Id": "s-1", "X-Nvm-Agent-Request-Id": "forged-id" },
        arguments: { patient_id: "123" }
      })
      const forwarded = forwardedOf(yield* Effect.promise(() => handler(event, ctx)))
      assert.deepStrictEqual(forwarded.body, event.mcp.gatewayRequest.body)
      const [verify] = ledger.calls
      assert.strictEqual(verify.maxAmount, 3)
      // The caller's own request id is dropped: only the issued one goes on, with its seal.
      assert.deepStrictEqual(Object.keys(forwarded.headers!).sort(), [
        "Content-Type",
        "Mcp-Session-Id",
        "x-nvm-agent-request-id",
        "x-x402-request-seal"
      ])
      assert.strictEqual(forwarded.headers!["x-nvm-agent-request-id"], verify.agentRequestId!)
      assert.notInclude(JSON.stringify(forwarded), "forged-id")
      assert.notInclude(JSON.stringify(forwarded), token)
      assert.strictEqual(ledger.settlements.length, 0)
    }))

  it.effect("forwards non-billable methods untouched, never calling the facilitator", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = interceptor({ planId: "plan-1", layer })
      for (const method of ["tools/list", "initialize"]) {
        const event = AgentCoreEvents.request({ method, token })
        const forwarded = forwardedOf(yield* Effect.promise(() => handler(event, ctx)))
        assert.deepStrictEqual(forwarded.body, event.mcp.gatewayRequest.body)
        assert.deepStrictEqual(forwarded.headers, event.mcp.gatewayRequest.headers)
      }
      const bare = AgentCoreEvents.request({ method: "tools/list", withoutHeaders: true })
      assert.deepStrictEqual(forwardedOf(yield* Effect.promise(() => handler(bare, ctx))), {
        body: bare.mcp.gatewayRequest.body
      })
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it.effect("answers a facilitator outage with a 502 error result", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      ledger.failNext("verify", { _tag: "HttpStatus", status: 503 })
      const handler = interceptor({ planId: "plan-1", layer })
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.strictEqual(errorOf(output).code, 502)
      assert.isUndefined(output.mcp.transformedGatewayRequest)
    }))

  it.effect("reads custom token headers in any case and strips every one of them when forwarding", () =>
    Effect.gen(function*() {
      const { ctx, layer, token } = setup()
      const handler = interceptor({ planId: "plan-1", tokenHeader: ["X-Payment", "payment-signature"], layer })
      const event = AgentCoreEvents.request({ headers: { "x-payment": token, "PAYMENT-SIGNATURE": "other" } })
      const forwarded = forwardedOf(yield* Effect.promise(() => handler(event, ctx)))
      assert.deepStrictEqual(Object.keys(forwarded.headers!).sort(), [
        "Content-Type",
        "x-nvm-agent-request-id",
        "x-x402-request-seal"
      ])
    }))
})

describe("interceptor: per-tool configuration", () => {
  const tools = {
    getPatient: { credits: 2 },
    Search___search: { planId: "plan-search", credits: 1 }
  }

  it.effect("prices each tool, by short or full name, and falls back to the default", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, subscriber, token } = setup()
      ledger.fund(subscriber, "plan-search", 5)
      const searchToken = ledger.mintToken({ planId: "plan-search", subscriber })
      const handler = interceptor({ planId: "plan-1", credits: 1, tools, layer })
      yield* Effect.promise(() => handler(AgentCoreEvents.request({ token, tool: "Patients___getPatient" }), ctx))
      const required = paymentRequiredOf(
        yield* Effect.promise(() => handler(AgentCoreEvents.request({ tool: "Search___search" }), ctx))
      )
      assert.deepStrictEqual(required.accepts.map((a) => a.planId), ["plan-search"])
      yield* Effect.promise(() =>
        handler(AgentCoreEvents.request({ token: searchToken, tool: "Search___search" }), ctx)
      )
      yield* Effect.promise(() => handler(AgentCoreEvents.request({ token, tool: "other" }), ctx))
      assert.deepStrictEqual(
        ledger.calls.map((c) => `${c.planIds.join("+")}:${c.maxAmount}`),
        ["plan-1:2", "plan-search:1", "plan-1:1"]
      )
    }))

  it.effect("forwards unpriced tools untouched when there is no default plan", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = interceptor({ tools: { getPatient: { planId: "plan-1" } }, layer })
      for (const tool of ["other", "constructor", "__proto__", "toString", "hasOwnProperty"]) {
        const event = AgentCoreEvents.request({ tool, token })
        const forwarded = forwardedOf(yield* Effect.promise(() => handler(event, ctx)))
        assert.deepStrictEqual(forwarded.body, event.mcp.gatewayRequest.body)
        assert.deepStrictEqual(forwarded.headers, event.mcp.gatewayRequest.headers)
        const response = yield* Effect.promise(() => handler(AgentCoreEvents.response({ tool, token }), ctx))
        assert.isUndefined(headerOf(response, "payment-response"))
      }
      assert.deepStrictEqual(ledger.calls, [])
      const priced = yield* Effect.promise(() => handler(AgentCoreEvents.request({ tool: "getPatient" }), ctx))
      assert.strictEqual(errorOf(priced).code, 402)
    }))

  it("refuses at construction a tool with no plan and no default, or a bad price", () => {
    const { layer } = setup()
    assert.throws(() => interceptor({ tools: { getPatient: { credits: 2 } }, layer }), RangeError)
    assert.throws(() => interceptor({ planId: "plan-1", tools: { t: { credits: -2 } }, layer }), RangeError)
    assert.throws(() => interceptor({ planId: "plan-1", tokenHeader: [], layer }), RangeError)
  })
})

describe("interceptor: RESPONSE phase", () => {
  it.effect("settles with the forwarded agent request id and adds the receipt to the target's answer", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, subscriber, token } = setup()
      const handler = interceptor({ planId: "plan-1", credits: 2, layer })
      const { agentRequestId, output } = yield* roundTrip(handler, ctx, {
        token,
        id: 11,
        responseHeaders: { "X-Target": "t1" },
        result: { content: [{ type: "text", text: "patient 123" }], _meta: { trace: "abc" } }
      })
      assert.isString(agentRequestId)
      assert.deepStrictEqual(ledger.calls.map((c) => [c.operation, c.maxAmount, c.agentRequestId]), [
        ["verify", 2, agentRequestId],
        ["settle", 2, agentRequestId]
      ])
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 18)
      const response = responseOf(output)
      assert.strictEqual(response.statusCode, 200)
      assert.strictEqual(headerOf(output, "X-Target"), "t1")
      const receipt = receiptOf(output)
      assert.deepStrictEqual(receipt, {
        success: true,
        transactionHash: ledger.settlements[0].transaction,
        network: "eip155:84532",
        creditsRedeemed: "2",
        remainingBalance: "18"
      })
      const body = bodyOf(output)
      assert.strictEqual(body.id, 11)
      assert.deepStrictEqual(body.result.content, [{ type: "text", text: "patient 123" }])
      assert.strictEqual(body.result._meta.trace, "abc")
      assert.strictEqual(body.result._meta.x402.transaction, receipt.transactionHash)
    }))

  it.effect("settles the amount the target asks for: _meta, X-Credits-To-Charge (any case); content text only when opted in", () =>
    Effect.gen(function*() {
      const textItem = { result: { content: [{ type: "text", text: `{"creditsToCharge":3,"data":1}` }] } }
      const topLevel = { responseBody: { jsonrpc: "2.0", id: "req-1", result: { content: [] }, creditsToCharge: 6 } }
      const cases: ReadonlyArray<readonly [AgentCoreEvents.ResponseOptions, boolean, number]> = [
        [{ result: { content: [], _meta: { creditsToCharge: 5 } } }, false, 5],
        [{ responseHeaders: { "x-CREDITS-to-charge": "4" } }, false, 4],
        // caller-echoed text must not set the price by default...
        [textItem, false, 1],
        [topLevel, false, 1],
        // ...unless the paywall opts into the Python SDK's content-text source
        [textItem, true, 3],
        [topLevel, true, 6],
        [{}, false, 1]
      ]
      for (const [options, chargeFromContent, amount] of cases) {
        const { ctx, layer, ledger, token } = setup()
        const handler = interceptor({ planId: "plan-1", chargeFromContent, layer })
        yield* roundTrip(handler, ctx, { token, ...options })
        assert.deepStrictEqual(operations(ledger), ["verify:1", `settle:${amount}`])
      }
    }))

  it.effect("chargeFromContent per tool: one tool opts in, the others do not", () =>
    Effect.gen(function*() {
      const result = { content: [{ type: "text", text: `{"creditsToCharge":0}` }] }
      const { ctx, layer, ledger, token } = setup()
      const handler = interceptor({
        planId: "plan-1",
        layer,
        tools: { metered: { planId: "plan-1", chargeFromContent: true }, echo: { planId: "plan-1" } }
      })
      yield* roundTrip(handler, ctx, { token, tool: "echo", result })
      yield* roundTrip(handler, ctx, { token, tool: "metered", result })
      assert.deepStrictEqual(operations(ledger), ["verify:1", "settle:1", "verify:1", "settle:0"])
    }))

  it.effect("passes the response through unchanged, unsettled, unless it is a paid success", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = interceptor({ planId: "plan-1", layer })
      const cases: ReadonlyArray<AgentCoreEvents.ResponseOptions> = [
        { token, statusCode: 500, responseBody: { error: "target down" } },
        { token, result: { isError: true, content: [{ type: "text", text: "failed" }] } },
        { token, responseBody: { jsonrpc: "2.0", id: "req-1", error: { code: -32000, message: "boom" } } },
        { token, method: "tools/list", result: { tools: [] } }
      ]
      for (const options of cases) {
        const event = AgentCoreEvents.response(options)
        const output = yield* Effect.promise(() => handler(event, ctx))
        const target = event.mcp.gatewayResponse!
        assert.deepStrictEqual(responseOf(output), {
          statusCode: target.statusCode!,
          headers: target.headers as Record<string, string>,
          body: target.body
        })
      }
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it.effect("settles on status alone when the gateway filtered the response body out", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = interceptor({ planId: "plan-1", layer })
      const { output } = yield* roundTrip(handler, ctx, { token, responseBody: null })
      assert.isTrue(receiptOf(output).success)
      assert.isNull(bodyOf(output))
      assert.strictEqual(ledger.settlements.length, 1)
    }))

  it.effect("withholds the target's output when settlement fails, with a success: false receipt", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = interceptor({ planId: "plan-1", layer })
      ledger.failNext("settle", { _tag: "Rejected", reason: "insufficient_funds" })
      const { output } = yield* roundTrip(handler, ctx, {
        token,
        result: { content: [{ type: "text", text: "paid" }] }
      })
      assert.strictEqual(errorOf(output).code, 402)
      assert.isFalse(receiptOf(output).success)
      assert.notInclude(JSON.stringify(bodyOf(output)), "paid")
    }))

  it.effect("releases the target's output under the release policy on outages, never on a definite refusal", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = interceptor({ planId: "plan-1", onSettleFailure: "release", layer })
      ledger.failNext("settle", { _tag: "Rejected", reason: "insufficient_funds" })
      const rejected = yield* roundTrip(handler, ctx, { token, result: { content: [{ type: "text", text: "paid" }] } })
      assert.notInclude(JSON.stringify(bodyOf(rejected.output)), "paid")
      assert.strictEqual(errorOf(rejected.output).code, 402)
      assert.isFalse(receiptOf(rejected.output).success)
      ledger.failNext("settle", { _tag: "ConnectionDropped" })
      const lost = yield* roundTrip(handler, ctx, { token, result: { content: [{ type: "text", text: "paid" }] } })
      assert.strictEqual(resultOf(lost.output).content[0].text, "paid")
      assert.isUndefined(headerOf(lost.output, "payment-response"))
    }))

  it.effect("withholds when the target asks for an invalid amount", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = interceptor({ planId: "plan-1", layer })
      const { output } = yield* roundTrip(handler, ctx, { token, responseHeaders: { "X-Credits-To-Charge": "-3" } })
      assert.strictEqual(errorOf(output).code, 500)
      assert.strictEqual(ledger.settlements.length, 0)
    }))

  it.effect("withholds a priced answer that comes back without its token, and says why in the log", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger } = setup()
      const logs = captureLogs()
      const handler = interceptor({ planId: "plan-1", layer, services: logs.layer })
      const event = AgentCoreEvents.response({
        agentRequestId: "areq_1",
        result: { content: [{ type: "text", text: "paid" }] }
      })
      const output = yield* Effect.promise(() => handler(event, ctx))
      // Unsettled output never goes out: the caller gets the 402-style result instead.
      assert.strictEqual(errorOf(output).code, 402)
      assert.notInclude(JSON.stringify(bodyOf(output)), "paid")
      assert.isTrue(logs.lines.some((line) => line.startsWith("ERROR") && line.includes("without its token")))
      assert.deepStrictEqual(ledger.calls, [])
    }))
})

describe("interceptor: hooks, malformed input, runtime", () => {
  it.effect("runs the hooks in both phases, and onPaymentError may replace the 402", () =>
    Effect.gen(function*() {
      const { ctx, layer, token } = setup()
      const seen: Array<string> = []
      const handler = interceptor({
        planId: "plan-1",
        layer,
        onBeforeVerify: () => void seen.push("beforeVerify"),
        onAfterVerify: (v) => void seen.push(`afterVerify:${v.isValid}`),
        onAfterSettle: (credits) => void seen.push(`afterSettle:${credits}`),
        onPaymentError: (error) => {
          seen.push(`error:${error._tag}`)
          return { content: [{ type: "text", text: "buy a plan" }], isError: true }
        }
      })
      yield* roundTrip(handler, ctx, { token })
      const replaced = yield* Effect.promise(() => handler(AgentCoreEvents.request(), ctx))
      assert.strictEqual(resultOf(replaced).content[0].text, "buy a plan")
      assert.deepStrictEqual(seen, ["beforeVerify", "afterVerify:true", "afterSettle:1", "error:PaymentRequired"])
    }))

  it.effect("answers malformed events with a 400 JSON-RPC error and never rejects", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger } = setup()
      const handler = interceptor({ planId: "plan-1", layer })
      for (const event of [null, 42, { mcp: null }, { mcp: { gatewayRequest: { body: [] } } }]) {
        assert.strictEqual(responseOf(yield* Effect.promise(() => handler(event, ctx))).statusCode, 400)
      }
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it.effect("builds its layers once across many invocations of both phases", () =>
    Effect.gen(function*() {
      const { ctx, ledger, token } = setup(1_000)
      let builds = 0
      const layer = Layer.effect(
        Facilitator.Facilitator,
        Effect.sync(() => (builds++, TestFacilitator.makeFacilitator(ledger)))
      )
      const handler = interceptor({ planId: "plan-1", layer })
      for (let i = 0; i < 10; i++) yield* roundTrip(handler, ctx, { token })
      assert.strictEqual(builds, 1)
      assert.strictEqual(ledger.settlements.length, 10)
    }))
})
