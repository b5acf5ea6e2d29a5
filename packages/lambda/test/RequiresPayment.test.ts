import { Facilitator, PaymentError, X402 } from "@effect-x402/core"
import type { AgentCore } from "@effect-x402/lambda"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { AgentCoreEvents, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it, vi } from "@effect/vitest"
import { Context, Effect, Layer, Logger } from "effect"
import {
  bodyOf,
  captureLogs,
  errorOf,
  headerOf,
  type Json,
  paymentRequiredOf,
  receiptOf,
  responseOf,
  resultOf
} from "./helpers.js"

const ENDPOINT = "https://gateway.example/mcp"
const hello = { content: [{ type: "text", text: "Hello!" }] }

// Passing tests print nothing: the library's log lines are dropped (a test that asserts on them adds
// `captureLogs().layer` as `services`, which still receives every line).
const quietly = <E>(layer: Layer.Layer<Facilitator.Facilitator, E>): Layer.Layer<Facilitator.Facilitator, E> =>
  Layer.merge(layer, Logger.remove(Logger.defaultLogger))

/** Runs `f` with `console.log` captured (the default logger's way out when no runtime exists). */
const consoleLines = <A>(f: () => Promise<A>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const lines: Array<string> = []
      const spy = vi.spyOn(console, "log").mockImplementation((...args: Array<unknown>) => {
        lines.push(args.map(String).join(" "))
      })
      return { lines, spy }
    }),
    ({ lines }) => Effect.map(Effect.promise(f), (value) => ({ value, lines })),
    ({ spy }) => Effect.sync(() => spy.mockRestore())
  )

const setup = (credits = 10) => {
  const seeded = TestFacilitator.seeded({ planId: "plan-1", agentId: "agent-1", credits })
  return { ...seeded, layer: quietly(TestFacilitator.layer(seeded.ledger)), ctx: AgentCoreEvents.context() }
}

const operations = (ledger: TestFacilitator.Ledger) => ledger.calls.map((c) => `${c.operation}:${c.outcome}`)

describe("requiresPayment: payment required", () => {
  it.effect("answers the 402-style result without a token, and never calls the facilitator", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger } = setup()
      let ran = false
      const handler = requiresPayment({ planId: "plan-1", agentId: "agent-1", endpoint: ENDPOINT, layer })(() => {
        ran = true
        return hello
      })
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request(), ctx))
      const response = responseOf(output)
      assert.strictEqual(response.statusCode, 200)
      const body = bodyOf(output)
      assert.strictEqual(body.jsonrpc, "2.0")
      assert.strictEqual(body.id, "req-1")
      assert.strictEqual(body.result.isError, true)
      assert.deepStrictEqual(body.result._meta, { x402: true })
      assert.deepStrictEqual(errorOf(output), {
        error: "Payment required",
        code: 402,
        message: "Payment required to access this resource"
      })
      const required = paymentRequiredOf(output)
      assert.strictEqual(required.x402Version, 2)
      assert.strictEqual(required.resource.url, ENDPOINT)
      assert.strictEqual(required.accepts.length, 1)
      assert.strictEqual(required.accepts[0].planId, "plan-1")
      assert.strictEqual(required.accepts[0].scheme, "nvm:erc4337")
      assert.strictEqual(required.accepts[0].network, "eip155:84532")
      assert.strictEqual(required.accepts[0].extra?.agentId, "agent-1")
      assert.isFalse(ran)
      assert.deepStrictEqual(ledger.calls, [])
      assert.isUndefined(headerOf(output, "payment-response"))
    }))

  it.effect("keeps the JSON-RPC id's type (string, number, null)", () =>
    Effect.gen(function*() {
      const { ctx, layer, token } = setup()
      const handler = requiresPayment({ planId: "plan-1", layer })(() => hello)
      for (const id of ["7", 7, null] as const) {
        const required = yield* Effect.promise(() => handler(AgentCoreEvents.request({ id }), ctx))
        assert.strictEqual(bodyOf(required).id, id)
        const paid = yield* Effect.promise(() => handler(AgentCoreEvents.request({ id, token }), ctx))
        assert.strictEqual(bodyOf(paid).id, id)
        assert.isUndefined(resultOf(paid).isError)
      }
    }))

  it.effect("omits agentId when none is configured; without an endpoint resource.url is the function's ARN", () =>
    Effect.gen(function*() {
      const { ctx, layer } = setup()
      const handler = requiresPayment({ planId: "plan-1", layer })(() => hello)
      const required = paymentRequiredOf(yield* Effect.promise(() => handler(AgentCoreEvents.request(), ctx)))
      assert.isUndefined(required.accepts[0].extra?.agentId)
      assert.isTrue(ctx.invokedFunctionArn.startsWith("arn:aws:lambda:"))
      assert.strictEqual(required.resource.url, ctx.invokedFunctionArn)
      const configured = requiresPayment({ planId: "plan-1", endpoint: ENDPOINT, layer })(() => hello)
      const named = paymentRequiredOf(yield* Effect.promise(() => configured(AgentCoreEvents.request(), ctx)))
      assert.strictEqual(named.resource.url, ENDPOINT)
    }))

  it.effect("with neither an endpoint nor a function ARN, the 402 names no resource and a warning says what to set, once", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      const ledger = new TestFacilitator.Ledger()
      ledger.addPlan({ planId: "plan-1" })
      const handler = requiresPayment({ planId: "plan-1", layer: TestFacilitator.layer(ledger), services: logs.layer })(
        () => hello
      )
      const ctx = { ...AgentCoreEvents.context(), invokedFunctionArn: "" }
      for (let i = 0; i < 3; i++) {
        const required = paymentRequiredOf(yield* Effect.promise(() => handler(AgentCoreEvents.request(), ctx)))
        assert.strictEqual(required.resource.url, "")
      }
      const warnings = logs.lines.filter((line) => line.includes("has no `endpoint`"))
      assert.strictEqual(warnings.length, 1)
      assert.include(warnings[0], "Set `endpoint`")
    }))

  it.effect("advertises the configured network, else the facilitator's (a fiat plan's provider)", () =>
    Effect.gen(function*() {
      const ledger = new TestFacilitator.Ledger()
      ledger.addPlan({ planId: "plan-fiat", fiatPaymentProvider: "stripe" })
      const layer = quietly(TestFacilitator.layer(ledger))
      const ctx = AgentCoreEvents.context()
      const byFacilitator = requiresPayment({ planIds: ["plan-1", "plan-fiat"], layer })(() => hello)
      const advertised = paymentRequiredOf(yield* Effect.promise(() => byFacilitator(AgentCoreEvents.request(), ctx)))
      assert.deepStrictEqual(advertised.accepts.map((a) => a.network), ["eip155:84532", "stripe"])
      const fixed = requiresPayment({ planId: "plan-fiat", network: "eip155:8453", layer })(() => hello)
      const configured = paymentRequiredOf(yield* Effect.promise(() => fixed(AgentCoreEvents.request(), ctx)))
      assert.deepStrictEqual(configured.accepts.map((a) => a.network), ["eip155:8453"])
    }))

  it.effect("advertises one accepts entry per plan, and a token of any of them pays", () =>
    Effect.gen(function*() {
      const ledger = new TestFacilitator.Ledger()
      ledger.fund("0xsub", "plan-b", 5)
      const token = ledger.mintToken({ planId: "plan-b", subscriber: "0xsub" })
      const handler = requiresPayment({
        planIds: ["plan-a", "plan-b"],
        agentId: "agent-1",
        layer: quietly(TestFacilitator.layer(ledger))
      })(() => hello)
      const ctx = AgentCoreEvents.context()
      const required = paymentRequiredOf(yield* Effect.promise(() => handler(AgentCoreEvents.request(), ctx)))
      assert.deepStrictEqual(required.accepts.map((a) => a.planId), ["plan-a", "plan-b"])
      assert.deepStrictEqual(required.accepts[0].extra, required.accepts[1].extra)
      const paid = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.isTrue(receiptOf(paid).success)
      assert.strictEqual(ledger.balance("0xsub", "plan-b"), 4)
      assert.deepStrictEqual(ledger.settlements.map((s) => s.planId), ["plan-b"])
    }))

  it.effect("answers an invalid token with the 402-style result and never settles", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger } = setup()
      let ran = false
      const handler = requiresPayment({ planId: "plan-1", layer })(() => {
        ran = true
        return hello
      })
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token: "forged" }), ctx))
      assert.strictEqual(responseOf(output).statusCode, 200)
      assert.deepStrictEqual(errorOf(output), {
        error: "Payment required",
        code: 402,
        message: "Verification failed: invalid_payload"
      })
      assert.strictEqual(paymentRequiredOf(output).accepts[0].planId, "plan-1")
      assert.isFalse(ran)
      assert.deepStrictEqual(operations(ledger), ["verify:invalid"])
    }))

  it.effect("answers insufficient funds as a verification failure", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup(1)
      const handler = requiresPayment({ planId: "plan-1", credits: 2, layer })(() => hello)
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.strictEqual(errorOf(output).message, "Verification failed: insufficient_funds")
      assert.deepStrictEqual(operations(ledger), ["verify:invalid"])
    }))

  it.effect("answers a facilitator outage at verify with a 502 error result, without running the handler", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      ledger.failNext("verify", { _tag: "Unreachable" })
      let ran = false
      const handler = requiresPayment({ planId: "plan-1", layer })(() => {
        ran = true
        return hello
      })
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.strictEqual(responseOf(output).statusCode, 200)
      assert.strictEqual(errorOf(output).code, 502)
      assert.isUndefined(headerOf(output, "payment-required"))
      assert.isFalse(ran)
      assert.strictEqual(ledger.settlements.length, 0)
    }))
})

describe("requiresPayment: paid calls", () => {
  const formats: ReadonlyArray<readonly [string, (id: AgentCore.JsonRpcId) => unknown]> = [
    ["a bare MCP result", () => hello],
    ["a result with _meta.creditsToCharge", () => ({ ...hello, _meta: { creditsToCharge: 1, trace: "t-1" } })],
    ["a full JSON-RPC body", (id) => ({ jsonrpc: "2.0", id, result: hello })],
    [
      "a complete InterceptorOutput",
      (id) => ({
        interceptorOutputVersion: "1.0",
        mcp: {
          transformedGatewayResponse: {
            statusCode: 200,
            headers: { "Content-Type": "application/json", "X-Agent": "a1" },
            body: { jsonrpc: "2.0", id, result: hello }
          }
        }
      })
    ],
    [
      "an InterceptorOutput without headers",
      (id) => ({
        interceptorOutputVersion: "1.0",
        mcp: { transformedGatewayResponse: { statusCode: 200, body: { jsonrpc: "2.0", id, result: hello } } }
      })
    ]
  ]

  for (const [name, make] of formats) {
    it.effect(`enriches ${name} with the receipt and _meta.x402`, () =>
      Effect.gen(function*() {
        const { ctx, layer, ledger, subscriber, token } = setup()
        const handler = requiresPayment({ planId: "plan-1", layer })((event) =>
          make((event.mcp.gatewayRequest.body as { id: AgentCore.JsonRpcId }).id)
        )
        const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token, id: 42 }), ctx))
        const response = responseOf(output)
        assert.strictEqual(response.statusCode, 200)
        const body = bodyOf(output)
        assert.strictEqual(body.jsonrpc, "2.0")
        assert.strictEqual(body.id, 42)
        assert.deepStrictEqual(body.result.content, hello.content)
        const receipt = receiptOf(output)
        const settlement = ledger.settlements[0]
        assert.deepStrictEqual(receipt, {
          success: true,
          transactionHash: settlement.transaction,
          network: "eip155:84532",
          creditsRedeemed: "1",
          remainingBalance: "9"
        })
        assert.deepStrictEqual(body.result._meta.x402, {
          success: true,
          transaction: settlement.transaction,
          network: "eip155:84532",
          creditsRedeemed: "1",
          remainingBalance: "9"
        })
        assert.strictEqual(ledger.balance(subscriber, "plan-1"), 9)
        assert.deepStrictEqual(operations(ledger), ["verify:valid", "settle:settled"])
      }))
  }

  it.effect("keeps the handler's own headers and _meta next to the receipt", () =>
    Effect.gen(function*() {
      const { ctx, layer, token } = setup()
      const handler = requiresPayment({ planId: "plan-1", layer })(() => ({
        interceptorOutputVersion: "1.0",
        mcp: {
          transformedGatewayResponse: {
            statusCode: 200,
            headers: { "X-Agent": "a1" },
            body: { jsonrpc: "2.0", id: "req-1", result: { ...hello, _meta: { creditsToCharge: 2, trace: "t" } } }
          }
        }
      }))
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.strictEqual(headerOf(output, "X-Agent"), "a1")
      assert.isDefined(headerOf(output, "payment-response"))
      const meta = resultOf(output)._meta
      assert.strictEqual(meta.creditsToCharge, 2)
      assert.strictEqual(meta.trace, "t")
      assert.strictEqual(meta.x402.creditsRedeemed, "2")
    }))

  it.effect("verifies and settles the configured credits, with the verified agentRequestId", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = requiresPayment({ planId: "plan-1", credits: 3, layer })(() => hello)
      yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      const [verify, settle] = ledger.calls
      assert.strictEqual(verify.operation, "verify")
      assert.strictEqual(verify.maxAmount, 3)
      assert.isString(verify.agentRequestId)
      assert.strictEqual(settle.operation, "settle")
      assert.strictEqual(settle.maxAmount, 3)
      assert.strictEqual(settle.agentRequestId, verify.agentRequestId)
      assert.strictEqual(ledger.settlements[0].agentRequestId, verify.agentRequestId)
    }))

  it.effect("settles _meta.creditsToCharge instead of the default, and keeps it in _meta", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, subscriber, token } = setup()
      const handler = requiresPayment({ planId: "plan-1", credits: 1, layer })(() => ({
        content: [{ type: "text", text: "Expensive result" }],
        _meta: { creditsToCharge: 5 }
      }))
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.deepStrictEqual(ledger.calls.map((c) => c.maxAmount), [1, 5])
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 5)
      assert.strictEqual(resultOf(output)._meta.creditsToCharge, 5)
      assert.strictEqual(receiptOf(output).creditsRedeemed, "5")
    }))

  it.effect("computes dynamic credits from the event: sync, Promise and Effect", () =>
    Effect.gen(function*() {
      const detailed = (event: AgentCore.InterceptorInput) =>
        (event.mcp.gatewayRequest.body as Json).params.arguments.detailed === true
      const policies = [
        (event: AgentCore.InterceptorInput) => detailed(event) ? 4 : 1,
        async (event: AgentCore.InterceptorInput) => detailed(event) ? 4 : 1,
        (event: AgentCore.InterceptorInput) => Effect.succeed(detailed(event) ? 4 : 1)
      ]
      for (const credits of policies) {
        const { ctx, layer, ledger, token } = setup()
        const handler = requiresPayment({ planId: "plan-1", credits, layer })(() => hello)
        yield* Effect.promise(() => handler(AgentCoreEvents.request({ token, arguments: { detailed: true } }), ctx))
        yield* Effect.promise(() => handler(AgentCoreEvents.request({ token, arguments: {} }), ctx))
        assert.deepStrictEqual(ledger.calls.map((c) => `${c.operation}:${c.maxAmount}`), [
          "verify:4",
          "settle:4",
          "verify:1",
          "settle:1"
        ])
      }
    }))

  it.effect("refuses an invalid credits amount with a 500-style error and charges nothing", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const byPolicy = requiresPayment({ planId: "plan-1", credits: () => -1, layer })(() => hello)
      const refused = yield* Effect.promise(() => byPolicy(AgentCoreEvents.request({ token }), ctx))
      assert.strictEqual(errorOf(refused).code, 500)
      assert.deepStrictEqual(ledger.calls, [])
      const byHandler = requiresPayment({ planId: "plan-1", layer })(() => ({
        ...hello,
        _meta: { creditsToCharge: 1.5 }
      }))
      const withheld = yield* Effect.promise(() => byHandler(AgentCoreEvents.request({ token }), ctx))
      assert.strictEqual(errorOf(withheld).code, 500)
      assert.notInclude(JSON.stringify(bodyOf(withheld)), "Hello!")
      assert.strictEqual(ledger.settlements.length, 0)
      assert.throws(() => requiresPayment({ planId: "plan-1", credits: -1, layer }), RangeError)
      assert.throws(() => requiresPayment({ layer }), RangeError)
    }))

  it.effect("passes the event and the Lambda context through to the handler", () =>
    Effect.gen(function*() {
      const { layer, token } = setup()
      const ctx = AgentCoreEvents.context({ functionName: "my-agent", awsRequestId: "aws-req-9" })
      const event = AgentCoreEvents.request({ token, tool: "getPatient", arguments: { patient_id: "123" } })
      let seen: { event: unknown; context: unknown } | undefined
      const handler = requiresPayment({ planId: "plan-1", layer })((e, c) => {
        seen = { event: e, context: c }
        return hello
      })
      yield* Effect.promise(() => handler(event, ctx))
      assert.strictEqual(seen?.event, event)
      assert.strictEqual(seen?.context, ctx)
    }))

  it.effect("accepts Effect, Promise and plain handlers, an Effect's services coming from the options", () =>
    Effect.gen(function*() {
      class Greeter extends Context.Tag("Greeter")<Greeter, { readonly greet: (name: string) => string }>() {}
      const services = Layer.succeed(Greeter, { greet: (name) => `Hello, ${name}!` })
      const { ctx, layer, ledger, token } = setup()
      const text = (s: string) => ({ content: [{ type: "text", text: s }] })
      const byEffect = requiresPayment({ planId: "plan-1", layer, services })((event) =>
        Effect.map(Greeter, (g) => text(g.greet((event.mcp.gatewayRequest.body as Json).params.arguments.name)))
      )
      const byPromise = requiresPayment({ planId: "plan-1", layer })(async () => text("promised"))
      const byValue = requiresPayment({ planId: "plan-1", layer })(() => text("plain"))
      const event = AgentCoreEvents.request({ token, arguments: { name: "Ada" } })
      assert.strictEqual(resultOf(yield* Effect.promise(() => byEffect(event, ctx))).content[0].text, "Hello, Ada!")
      assert.strictEqual(resultOf(yield* Effect.promise(() => byPromise(event, ctx))).content[0].text, "promised")
      assert.strictEqual(resultOf(yield* Effect.promise(() => byValue(event, ctx))).content[0].text, "plain")
      assert.strictEqual(ledger.settlements.length, 3)
      // @ts-expect-error the handler needs Greeter, which the options do not provide
      requiresPayment({ planId: "plan-1", layer })(() => Effect.map(Greeter, () => hello))
    }))
})

describe("requiresPayment: nothing settled on failure", () => {
  const failures: ReadonlyArray<readonly [string, () => unknown, string]> = [
    ["throws", () => {
      throw new Error("database down")
    }, "database down"],
    ["rejects", () => Promise.reject(new Error("timeout upstream")), "timeout upstream"],
    ["fails", () => Effect.fail(new Error("typed failure")), "typed failure"],
    ["dies", () => Effect.die(new Error("defect")), "defect"],
    ["returns nothing", () => undefined, "The handler returned an invalid result"]
  ]
  for (const [name, body, message] of failures) {
    it.effect(`answers a 500 error result when the handler ${name}`, () =>
      Effect.gen(function*() {
        const { ctx, layer, ledger, subscriber, token } = setup()
        const logs = captureLogs()
        const handler = requiresPayment({ planId: "plan-1", layer, services: logs.layer })(body)
        const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
        assert.strictEqual(responseOf(output).statusCode, 200)
        // The caller gets a generic message and the request id; the handler's message is logged.
        assert.deepStrictEqual(errorOf(output), {
          error: "Handler failed",
          code: 500,
          message: "The handler failed; nothing was charged",
          requestId: ctx.awsRequestId
        })
        assert.notInclude(JSON.stringify(output), message)
        assert.deepStrictEqual(operations(ledger), ["verify:valid"])
        assert.strictEqual(ledger.balance(subscriber, "plan-1"), 10)
        assert.isUndefined(headerOf(output, "payment-response"))
        assert.isTrue(
          logs.lines.some((line) =>
            line.startsWith("ERROR") && line.includes(message) && line.includes(ctx.awsRequestId)
          )
        )
      }))
  }

  it.effect("does not settle an isError result, and returns it as it is", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const failed = { isError: true, content: [{ type: "text", text: "tool failed" }] }
      const handler = requiresPayment({ planId: "plan-1", layer })(() => failed)
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.deepStrictEqual(resultOf(output), failed)
      assert.isUndefined(headerOf(output, "payment-response"))
      assert.deepStrictEqual(operations(ledger), ["verify:valid"])
    }))

  it.effect("does not settle a JSON-RPC error body nor a non-200 InterceptorOutput", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const answers = [
        { jsonrpc: "2.0", id: "req-1", error: { code: -32602, message: "bad arguments" } },
        {
          interceptorOutputVersion: "1.0",
          mcp: { transformedGatewayResponse: { statusCode: 503, body: { jsonrpc: "2.0", id: "req-1", result: hello } } }
        }
      ]
      for (const answer of answers) {
        const handler = requiresPayment({ planId: "plan-1", layer })(() => answer)
        yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      }
      assert.strictEqual(ledger.settlements.length, 0)
    }))
})

describe("requiresPayment: settlement failure", () => {
  it.effect("withholds the output by default, with a payment-response saying success: false", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      ledger.failNext("settle", { _tag: "Rejected", reason: "insufficient_funds" })
      const handler = requiresPayment({ planId: "plan-1", layer })(() => hello)
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.strictEqual(responseOf(output).statusCode, 200)
      const error = errorOf(output)
      assert.strictEqual(error.code, 402)
      assert.include(error.message, "insufficient_funds")
      assert.notInclude(JSON.stringify(bodyOf(output)), "Hello!")
      const receipt = receiptOf(output)
      assert.isFalse(receipt.success)
      assert.strictEqual(receipt.errorReason, "insufficient_funds")
      assert.isFalse(resultOf(output)._meta.x402.success)
    }))

  it.effect("withholds with a 502 error when the settle outcome is unknown", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      ledger.failNext("settle", { _tag: "Indeterminate", applied: false })
      const handler = requiresPayment({ planId: "plan-1", layer })(() => hello)
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.strictEqual(errorOf(output).code, 502)
      assert.isFalse(receiptOf(output).success)
      assert.notInclude(JSON.stringify(bodyOf(output)), "Hello!")
      assert.deepStrictEqual(operations(ledger), ["verify:valid", "settle:fault"])
    }))

  it.effect("a definite refusal withholds even under the release policy: release is for outages only", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      ledger.failNext("settle", { _tag: "Rejected", reason: "unexpected_settle_error" })
      const handler = requiresPayment({ planId: "plan-1", onSettleFailure: "release", layer })(() => hello)
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.strictEqual(errorOf(output).code, 402)
      assert.notInclude(JSON.stringify(bodyOf(output)), "Hello!")
      assert.isFalse(receiptOf(output).success)
    }))

  it.effect("releases the output without a receipt when the settle call itself failed", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      ledger.failNext("settle", { _tag: "Timeout" })
      const handler = requiresPayment({ planId: "plan-1", onSettleFailure: "release", layer })(() => hello)
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.deepStrictEqual(resultOf(output), hello)
      assert.isUndefined(headerOf(output, "payment-response"))
    }))
})

describe("requiresPayment: hooks", () => {
  it.effect("calls onBeforeVerify, onAfterVerify and onAfterSettle in order, with what they promise", () =>
    Effect.gen(function*() {
      const { ctx, layer, subscriber, token } = setup()
      const seen: Array<string> = []
      const handler = requiresPayment({
        planId: "plan-1",
        credits: 2,
        layer,
        onBeforeVerify: (required) => {
          seen.push(`before:${required.accepts[0].planId}`)
        },
        onAfterVerify: (verification) => {
          seen.push(`after:${verification.isValid}:${verification.payer}`)
        },
        onAfterSettle: (credits, settlement) =>
          Effect.sync(() => {
            seen.push(`settled:${credits}:${settlement.success}:${settlement.transaction.length > 0}`)
          })
      })(() => {
        seen.push("handler")
        return hello
      })
      yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.deepStrictEqual(seen, [
        "before:plan-1",
        `after:true:${subscriber}`,
        "handler",
        "settled:2:true:true"
      ])
    }))

  it.effect("onPaymentError sees the typed error and may replace the answer", () =>
    Effect.gen(function*() {
      const { ctx, layer } = setup()
      const errors: Array<string> = []
      const handler = requiresPayment({
        planId: "plan-1",
        layer,
        onPaymentError: (error) => {
          errors.push(error._tag)
          return error instanceof PaymentError.PaymentRequired
            ? { content: [{ type: "text", text: "Please buy plan-1 first" }], isError: true }
            : null
        }
      })(() => hello)
      const replaced = yield* Effect.promise(() => handler(AgentCoreEvents.request({ id: 3 }), ctx))
      assert.deepStrictEqual(bodyOf(replaced), {
        jsonrpc: "2.0",
        id: 3,
        result: { content: [{ type: "text", text: "Please buy plan-1 first" }], isError: true }
      })
      const defaulted = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token: "bad" }), ctx))
      assert.strictEqual(errorOf(defaulted).code, 402)
      assert.deepStrictEqual(errors, ["PaymentRequired", "VerifyFailed"])
    }))

  it.effect("a failing hook is logged and ignored: payment goes on", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = requiresPayment({
        planId: "plan-1",
        layer,
        onBeforeVerify: () => {
          throw new Error("hook bug")
        },
        onAfterSettle: () => Promise.reject(new Error("async hook bug")),
        onPaymentError: () => Effect.fail("bad")
      })(() => hello)
      const paid = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.isTrue(receiptOf(paid).success)
      const required = yield* Effect.promise(() => handler(AgentCoreEvents.request(), ctx))
      assert.strictEqual(errorOf(required).code, 402)
      assert.strictEqual(ledger.settlements.length, 1)
    }))
})

describe("requiresPayment: tokens and methods", () => {
  it.effect("reads a custom token header, in any case", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = requiresPayment({ planId: "plan-1", tokenHeader: "X-Payment", layer })(() => hello)
      const ignored = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.strictEqual(errorOf(ignored).code, 402)
      const paid = yield* Effect.promise(() =>
        handler(AgentCoreEvents.request({ token, tokenHeader: "x-PAYMENT" }), ctx)
      )
      assert.isTrue(receiptOf(paid).success)
      assert.strictEqual(ledger.settlements.length, 1)
    }))

  it.effect("tries a list of token headers in order; the first non-empty one wins", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = requiresPayment({ planId: "plan-1", tokenHeader: ["X-Payment", "X-Token"], layer })(
        () => hello
      )
      const viaSecond = yield* Effect.promise(() =>
        handler(AgentCoreEvents.request({ headers: { "X-Payment": "  ", "x-token": `Bearer ${token}` } }), ctx)
      )
      assert.isTrue(receiptOf(viaSecond).success)
      const firstWins = yield* Effect.promise(() =>
        handler(AgentCoreEvents.request({ headers: { "x-payment": "forged", "X-Token": token } }), ctx)
      )
      assert.strictEqual(errorOf(firstWins).message, "Verification failed: invalid_payload")
      assert.strictEqual(ledger.settlements.length, 1)
    }))

  it.effect("finds the default header whatever its case", () =>
    Effect.gen(function*() {
      const { ctx, layer, token } = setup()
      const handler = requiresPayment({ planId: "plan-1", layer })(() => hello)
      const output = yield* Effect.promise(() =>
        handler(AgentCoreEvents.request({ token, tokenHeader: "Payment-Signature" }), ctx)
      )
      assert.isTrue(receiptOf(output).success)
    }))

  it.effect("runs non-billable methods only when declared free, never calling the facilitator", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger } = setup()
      const tools = { tools: [{ name: "getPatient" }] }
      let ran = 0
      const answer = () => {
        ran++
        return tools
      }
      const handler = requiresPayment({ planId: "plan-1", freeMethods: ["tools/list", "initialize", "ping"], layer })(
        answer
      )
      for (const method of ["tools/list", "initialize", "ping"]) {
        const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ method, id: 1 }), ctx))
        assert.deepStrictEqual(bodyOf(output), { jsonrpc: "2.0", id: 1, result: tools })
        assert.isUndefined(headerOf(output, "payment-response"))
        assert.isUndefined(headerOf(output, "payment-required"))
      }
      assert.strictEqual(ran, 3)
      // Not declared free: the library answers the handshake itself, and nothing else.
      const strict = requiresPayment({ planId: "plan-1", layer })(answer)
      const ping = yield* Effect.promise(() => strict(AgentCoreEvents.request({ method: "ping", id: 2 }), ctx))
      assert.deepStrictEqual(bodyOf(ping), { jsonrpc: "2.0", id: 2, result: {} })
      for (const method of ["tools/list", "resources/read", "x/anything"]) {
        const output = yield* Effect.promise(() => strict(AgentCoreEvents.request({ method, id: 3 }), ctx))
        assert.deepStrictEqual(bodyOf(output), {
          jsonrpc: "2.0",
          id: 3,
          error: { code: -32601, message: "Method not found" }
        })
      }
      assert.strictEqual(ran, 3)
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it.effect("charges the configured billable methods only; tools/call then needs declaring free", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger } = setup()
      const handler = requiresPayment({ planId: "plan-1", billableMethods: ["resources/read"], layer })(() => hello)
      const refused = yield* Effect.promise(() => handler(AgentCoreEvents.request(), ctx))
      assert.strictEqual((bodyOf(refused) as Json).error.code, -32601)
      const paid = yield* Effect.promise(() => handler(AgentCoreEvents.request({ method: "resources/read" }), ctx))
      assert.strictEqual(errorOf(paid).code, 402)
      const free = requiresPayment({
        planId: "plan-1",
        billableMethods: ["resources/read"],
        freeMethods: ["tools/call"],
        layer
      })(() => hello)
      assert.deepStrictEqual(resultOf(yield* Effect.promise(() => free(AgentCoreEvents.request(), ctx))), hello)
      assert.deepStrictEqual(ledger.calls, [])
    }))
})

describe("requiresPayment: hostile and malformed input", () => {
  it.effect("answers malformed events with a 400 JSON-RPC error, never rejecting nor running the handler", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      let ran = 0
      const handler = requiresPayment({ planId: "plan-1", layer })(() => {
        ran++
        return hello
      })
      const events: ReadonlyArray<unknown> = [
        null,
        undefined,
        "event",
        {},
        { mcp: {} },
        { mcp: { gatewayRequest: { headers: "x" } } },
        { mcp: { gatewayRequest: { body: { jsonrpc: "2.0", id: 9 } } } },
        { mcp: { gatewayRequest: { body: [AgentCoreEvents.toolCall("Target___tool")] } } },
        { mcp: { gatewayRequest: { body: "{not json" } } },
        { mcp: { gatewayRequest: { headers: { "payment-signature": token }, body: { method: 42 } } } }
      ]
      for (const event of events) {
        const output = yield* Effect.promise(() => handler(event, ctx))
        const response = responseOf(output)
        assert.strictEqual(response.statusCode, 400)
        assert.strictEqual((response.body as Json).error.code, -32600)
      }
      const withId = yield* Effect.promise(() => handler(events[6], ctx))
      assert.strictEqual(bodyOf(withId).id, 9)
      assert.strictEqual(ran, 0)
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it.effect("accepts a body sent as JSON text", () =>
    Effect.gen(function*() {
      const { ctx, layer, token } = setup()
      const handler = requiresPayment({ planId: "plan-1", layer })(() => hello)
      const event = AgentCoreEvents.request({ token })
      const asText = {
        mcp: { gatewayRequest: { ...event.mcp.gatewayRequest, body: JSON.stringify(event.mcp.gatewayRequest.body) } }
      }
      const output = yield* Effect.promise(() => handler(asText, ctx))
      assert.isTrue(receiptOf(output).success)
    }))

  it.effect("ignores tokens hidden in a __proto__ header and merges _meta without prototype pollution", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = requiresPayment({ planId: "plan-1", layer })(() =>
        JSON.parse(`{"content":[],"_meta":{"__proto__":{"polluted":true},"creditsToCharge":1}}`)
      )
      const hidden = JSON.parse(
        JSON.stringify(AgentCoreEvents.request()).replace(
          `"headers":{`,
          `"headers":{"__proto__":{"payment-signature":"${token}"},`
        )
      )
      const refused = yield* Effect.promise(() => handler(hidden, ctx))
      assert.strictEqual(errorOf(refused).code, 402)
      assert.deepStrictEqual(ledger.calls, [])
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      const meta = resultOf(output)._meta
      assert.strictEqual(Object.getPrototypeOf(meta), Object.prototype)
      assert.isUndefined(meta.polluted)
      assert.isUndefined(({} as Json).polluted)
      assert.isTrue(meta.x402.success)
    }))

  it.effect("never writes the token into a log line", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const logs = captureLogs()
      ledger.failNext("settle", { _tag: "Rejected" })
      ledger.failNext("verify", { _tag: "Unreachable" })
      const handler = requiresPayment({ planId: "plan-1", layer, services: logs.layer })(() => hello)
      for (let i = 0; i < 3; i++) {
        yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      }
      const failing = requiresPayment({ planId: "plan-1", layer, services: logs.layer })(() => {
        throw new Error("boom")
      })
      yield* Effect.promise(() => failing(AgentCoreEvents.request({ token }), ctx))
      assert.isAbove(logs.lines.length, 0)
      assert.isFalse(logs.lines.some((line) => line.includes(token)))
    }))
})

describe("requiresPayment: runtime", () => {
  it.effect("builds the layers once per cold start, across many warm invocations", () =>
    Effect.gen(function*() {
      const { ctx, ledger, token } = setup(1_000)
      let facilitators = 0
      let services = 0
      const layer = Layer.effect(
        Facilitator.Facilitator,
        Effect.sync(() => {
          facilitators++
          return TestFacilitator.makeFacilitator(ledger)
        })
      )
      class Clock extends Context.Tag("Clock")<Clock, { readonly now: () => number }>() {}
      const clock = Layer.effect(Clock, Effect.sync(() => (services++, { now: () => 1 })))
      const handler = requiresPayment({ planId: "plan-1", layer, services: clock })(() =>
        Effect.map(Clock, () => hello)
      )
      // The first invocations race for the cold start.
      yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 5 }, () => handler(AgentCoreEvents.request({ token }), ctx)))
      )
      for (let i = 0; i < 20; i++) {
        yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      }
      assert.strictEqual(facilitators, 1)
      assert.strictEqual(services, 1)
      assert.strictEqual(ledger.settlements.length, 25)
      yield* Effect.promise(() => handler.runtime.dispose())
    }))

  it.effect("answers an internal error when the layer cannot be built, and retries the build next time", () =>
    Effect.gen(function*() {
      const { ctx, ledger, token } = setup()
      let attempts = 0
      const layer = Layer.effect(
        Facilitator.Facilitator,
        Effect.suspend(() =>
          ++attempts === 1
            ? Effect.fail(new Error("config missing"))
            : Effect.succeed(TestFacilitator.makeFacilitator(ledger))
        )
      )
      const handler = requiresPayment({ planId: "plan-1", layer })(() => hello)
      // No runtime, so no logger of the options: the line goes to the console, checked and kept quiet.
      const printed = yield* consoleLines(() => handler(AgentCoreEvents.request({ token }), ctx))
      const failed = printed.value
      assert.include(printed.lines.join("\n"), "x402: the Lambda runtime could not be built")
      assert.deepStrictEqual(responseOf(failed), {
        statusCode: 500,
        headers: { "Content-Type": "application/json" },
        body: { error: "Internal interceptor error", requestId: ctx.awsRequestId }
      })
      const paid = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.isTrue(receiptOf(paid).success)
      yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.strictEqual(attempts, 2)
    }))

  it("uses the live Nevermined layer by default: without NVM_API_KEY its construction names the variable", () => {
    const saved = process.env.NVM_API_KEY
    delete process.env.NVM_API_KEY
    try {
      assert.throws(() => requiresPayment({ planId: "plan-1" })(() => hello), /NVM_API_KEY is not set/)
    } finally {
      if (saved !== undefined) process.env.NVM_API_KEY = saved
    }
  })
})

describe("requiresPayment: X402 wire", () => {
  it("decodes the payment-required header as a strict X402 PaymentRequired", async () => {
    const { ctx, layer } = setup()
    const handler = requiresPayment({ planId: "plan-1", agentId: "agent-1", endpoint: ENDPOINT, layer })(() => hello)
    const output = await handler(AgentCoreEvents.request(), ctx)
    const header = headerOf(output, "payment-required")!
    const json = JSON.parse(Buffer.from(header, "base64").toString("utf8"))
    assert.deepStrictEqual(json, {
      x402Version: 2,
      resource: { url: ENDPOINT },
      accepts: [{
        scheme: "nvm:erc4337",
        network: "eip155:84532",
        planId: "plan-1",
        extra: { version: "1", agentId: "agent-1", httpVerb: "POST" }
      }],
      extensions: {}
    })
    assert.deepStrictEqual(X402.PaymentRequiredHeader.decodeEither(header)._tag, "Right")
  })
})
