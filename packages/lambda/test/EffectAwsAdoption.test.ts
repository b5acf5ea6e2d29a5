import { LambdaHandler } from "@effect-aws/lambda"
import { HttpHandler, Interceptor, RequiresPayment } from "@effect-x402/lambda"
import { AgentCoreEvents, TestFacilitator } from "@effect-x402/testing"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { errorOf, receiptOf, resultOf } from "./helpers.js"

// Users of @effect-aws/lambda keep their runtime and layer: our `effectHandler`s are its
// `EffectHandler`s, and the facilitator is one more service of their global layer.
describe("@effect-aws/lambda adoption", () => {
  // Its runtime installs SIGTERM/SIGINT handlers that exit the process: not in our test workers.
  const signals = ["SIGTERM", "SIGINT"] as const
  const before = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]))
  afterAll(() => {
    for (const signal of signals) {
      for (const listener of process.listeners(signal)) {
        if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener)
      }
    }
  })

  it.effect("runs requiresPayment's effectHandler through LambdaHandler.make, with the user's layer", () =>
    Effect.gen(function*() {
      const { ledger, subscriber, token } = TestFacilitator.seeded({ planId: "plan-1", credits: 5 })
      class Greeter extends Context.Tag("Greeter")<Greeter, { readonly greet: () => string }>() {}
      const handler = LambdaHandler.make({
        handler: RequiresPayment.effectHandler({ planId: "plan-1", credits: 2 })(
          () => Effect.map(Greeter, (g) => ({ content: [{ type: "text", text: g.greet() }] }))
        ),
        layer: Layer.merge(TestFacilitator.layer(ledger), Layer.succeed(Greeter, { greet: () => "Hello!" }))
      })
      const ctx = AgentCoreEvents.context()
      const paid = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), ctx))
      assert.strictEqual(resultOf(paid).content[0].text, "Hello!")
      assert.isTrue(receiptOf(paid).success)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 3)
      const unpaid = yield* Effect.promise(() => handler(AgentCoreEvents.request(), ctx))
      assert.strictEqual(errorOf(unpaid).code, 402)
    }))

  it.effect("runs the interceptor and the HTTP handler the same way", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ planId: "plan-1", credits: 5 })
      const layer = TestFacilitator.layer(ledger)
      const ctx = AgentCoreEvents.context()
      const interceptor = LambdaHandler.make({ handler: Interceptor.effectHandler({ planId: "plan-1" }), layer })
      const forwarded = yield* Effect.promise(() => interceptor(AgentCoreEvents.request({ token }), ctx))
      assert.isDefined(forwarded.mcp.transformedGatewayRequest?.headers?.["x-nvm-agent-request-id"])
      const http = LambdaHandler.make({
        handler: HttpHandler.effectHandler({ planId: "plan-1" })(() => ({ statusCode: 200, body: "ok" })),
        layer
      })
      const result = yield* Effect.promise(() => http(AgentCoreEvents.apiGatewayV2({ token }), ctx))
      assert.strictEqual(result.statusCode, 200)
      assert.isDefined(result.headers?.["payment-response"])
    }))
})
