/**
 * What a user's code and tests see of `requiresPayment`'s types: requirements inferred from
 * `services` (an Effect credits policy and an Effect handler needing different services), the
 * compile-time refusal naming what is missing, and answers whose body is typed (no `as any`).
 * `pnpm check` compiles this file: a type regression fails the build, the runtime half fails here.
 */
import { AgentCore } from "@effect-x402/lambda"
import type { LambdaRuntime } from "@effect-x402/lambda"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import type * as RequiresPayment from "@effect-x402/lambda/RequiresPayment"
import { AgentCoreEvents, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { answerOf, paidHandler } from "./snippets/typedRequiresPayment.js"

class Pricing extends Context.Tag("Pricing")<Pricing, { readonly creditsFor: (tool: string) => number }>() {}
class Db extends Context.Tag("Db")<Db, { readonly greeting: (name: string) => string }>() {}

const PricingLive = Layer.succeed(Pricing, { creditsFor: (tool) => (tool === "expensive" ? 3 : 2) })
const DbLive = Layer.succeed(Db, { greeting: (name) => `Hello, ${name}!` })

// A credits policy needing Pricing: the price of the called tool.
const credits = (event: AgentCore.InterceptorInput) =>
  Effect.map(Pricing, (pricing) => pricing.creditsFor(AgentCore.toolCallOf(event)?.tool ?? ""))

// A handler needing Db.
const work = () => Effect.map(Db, (db) => ({ content: [{ type: "text" as const, text: db.greeting("Ada") }] }))

const setup = () => {
  const seeded = TestFacilitator.seeded({ planId: "plan-1", credits: 10 })
  return { ...seeded, layer: TestFacilitator.layer(seeded.ledger), ctx: AgentCoreEvents.context() }
}

describe("requiresPayment: requirements inferred from services and credits together", () => {
  it.effect("an Effect credits policy (Pricing) beside an Effect handler (Db) compiles without type arguments", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, subscriber, token } = setup()
      const handler = requiresPayment({
        planId: "plan-1",
        credits,
        layer,
        services: Layer.mergeAll(PricingLive, DbLive)
      })(work)
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token, tool: "cheap" }), ctx))
      // The body is typed: the result's text and its receipt read without `as any`.
      const body = output.mcp.transformedGatewayResponse.body
      assert.strictEqual(body?.result?.content[0]?.text, "Hello, Ada!")
      assert.strictEqual(body?.jsonrpc, "2.0")
      const result = body?.result
      assert.isDefined(result)
      assert.isTrue(result?._meta?.["x402/payment-response"]?.success)
      // Priced by the policy through Pricing (2 credits), the output made through Db.
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 8)
      assert.deepStrictEqual(ledger.settlements.map((s) => s.credits), [2])
    }))

  it.effect("a per-tool policy needing Pricing compiles beside the same services", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, token } = setup()
      const handler = requiresPayment({
        planId: "plan-1",
        layer,
        services: Layer.mergeAll(PricingLive, DbLive),
        tools: { expensive: { inputSchema: { type: "object" }, credits } }
      })(work)
      const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token, tool: "expensive" }), ctx))
      assert.strictEqual(output.mcp.transformedGatewayResponse.body?.result?.content[0]?.text, "Hello, Ada!")
      assert.deepStrictEqual(ledger.settlements.map((s) => s.credits), [3])
    }))

  it("still refuses at compile time what services do not provide, naming it", () => {
    const { layer } = setup()
    // The handler needs Db; services provide only Pricing: the handler is refused, naming Db.
    requiresPayment({ planId: "plan-1", credits, layer, services: PricingLive })(
      // @ts-expect-error x402: services missing from the options: Db
      work
    )
    // The credits policy needs Pricing; services provide only Db: the policy is refused.
    requiresPayment({
      planId: "plan-1",
      // @ts-expect-error Pricing is not provided by services
      credits,
      layer,
      services: DbLive
    })(work)
    // Nothing provided at all: both refused.
    requiresPayment({
      planId: "plan-1",
      // @ts-expect-error Pricing is not provided (no services)
      credits,
      layer
    })(
      // @ts-expect-error x402: services missing from the options: Db
      work
    )
    // The refusal names the missing service: the handler must carry a property saying so.
    type Refused = LambdaRuntime.Checked<typeof work, Pricing>
    expectTypeOf<Refused>().toHaveProperty("x402: services missing from the options").toEqualTypeOf<Db>()
    expectTypeOf<LambdaRuntime.Checked<typeof work, Pricing | Db>>().toEqualTypeOf<typeof work>()
  })
})

describe("requiresPayment: typed answers", () => {
  it.effect("a plain handler's answer body is the JSON-RPC response with its result type", () =>
    Effect.gen(function*() {
      const { ctx, layer } = setup()
      const handler = requiresPayment({ planId: "plan-1", layer })(async () => ({
        content: [{ type: "text" as const, text: "plain" }],
        structuredContent: { answer: 42 }
      }))
      type Body = RequiresPayment.BodyOf<() => Promise<{ readonly a: 1 }>>
      expectTypeOf<Body>().toEqualTypeOf<RequiresPayment.AnswerBody<{ readonly a: 1 }>>()
      const unpaid = yield* Effect.promise(() => handler(AgentCoreEvents.request(), ctx))
      const body = unpaid.mcp.transformedGatewayResponse.body
      // A payment-required answer is the library's ErrorResult, typed too.
      assert.isTrue(body?.result?.isError)
      const required = body?.result?.structuredContent
      assert.strictEqual(required !== undefined && "x402Version" in required ? required.x402Version : undefined, 2)
      assert.strictEqual(unpaid.mcp.transformedGatewayResponse.statusCode, 200)
    }))

  it("an InterceptorOutput or a JSON-RPC response of the handler's own keeps an unknown body", () => {
    type Own = RequiresPayment.BodyOf<() => AgentCore.InterceptorOutput>
    expectTypeOf<Own>().toBeUnknown()
    type Rpc = RequiresPayment.BodyOf<() => { readonly jsonrpc: "2.0"; readonly result: object }>
    expectTypeOf<Rpc>().toBeUnknown()
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    type AnyResult = RequiresPayment.BodyOf<() => any>
    expectTypeOf<AnyResult>().toBeUnknown()
    type FromEffect = RequiresPayment.BodyOf<() => Effect.Effect<{ readonly content: ReadonlyArray<unknown> }>>
    expectTypeOf<FromEffect>().toEqualTypeOf<
      RequiresPayment.AnswerBody<{ readonly content: ReadonlyArray<unknown> }>
    >()
    expectTypeOf<RequiresPayment.BodyOf<() => unknown>>().toBeUnknown()
    // A handler that may answer in its own format on some path: the body is not claimed.
    type Mixed = RequiresPayment.BodyOf<
      () => Promise<{ readonly content: ReadonlyArray<unknown> } | AgentCore.InterceptorOutput>
    >
    expectTypeOf<Mixed>().toBeUnknown()
    type EitherWay = RequiresPayment.BodyOf<
      () => Effect.Effect<{ readonly content: ReadonlyArray<unknown> }> | Promise<{ readonly content: [] }>
    >
    expectTypeOf<EitherWay>().toEqualTypeOf<
      RequiresPayment.AnswerBody<{ readonly content: ReadonlyArray<unknown> } | { readonly content: [] }>
    >()
    // The typed output is still an AgentCore.InterceptorOutput.
    expectTypeOf<RequiresPayment.Output<RequiresPayment.AnswerBody<object>>>().toMatchTypeOf<
      AgentCore.InterceptorOutput
    >()
  })
})

describe("requiresPayment: the README's typed snippet", () => {
  it.effect("compiles without type arguments, prices through Pricing, answers through Db, reads typed", () =>
    Effect.gen(function*() {
      const { ctx, layer, ledger, subscriber, token } = setup()
      const handler = paidHandler("plan-1", layer)
      const event = AgentCoreEvents.request({ token, tool: "getHistory", arguments: { patient_id: "p-7" } })
      const { receipt, text } = yield* Effect.promise(() => answerOf(handler, event, ctx))
      assert.strictEqual(text, "patient p-7: stable")
      assert.isTrue(receipt?.success)
      assert.strictEqual(receipt?.creditsRedeemed, "5")
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 5)
    }))
})
