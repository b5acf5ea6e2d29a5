// Invariant 8 for the AgentCore adapters: the Lambda always answers before its deadline. Verify and
// settle are capped by `context.getRemainingTimeInMillis()` less a margin, so a slow facilitator ends
// in the library's own answer, never in AWS killing the function with the credits burned.
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { AgentCoreEvents, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { captureLogs } from "../helpers.js"

const PLAN = "plan-1"
const MARKER = "PAID-OUTPUT-d34d"

const setup = () => {
  const seeded = TestFacilitator.seeded({ planId: PLAN, credits: 10 })
  return { ...seeded, layer: TestFacilitator.layer(seeded.ledger), quiet: captureLogs() }
}

const textOf = (out: unknown) => JSON.stringify(out)

describe("hostile requiresPayment: answers before the Lambda's deadline (invariant 8)", () => {
  it.live("a settle slower than the remaining time ends in 'settlement outcome unknown', output withheld", () =>
    Effect.gen(function*() {
      const { layer, ledger, quiet, token } = setup()
      const handler = requiresPayment({ planId: PLAN, layer, services: quiet.layer })(() => {
        // Verify has answered; the facilitator turns slow for settle.
        ledger.latency = Duration.seconds(30)
        return { content: [{ type: "text", text: MARKER }] }
      })
      // 700 ms left, 500 ms margin: settle is cut off after at most ~200 ms, long before 30 s.
      const context = AgentCoreEvents.context({ remainingTimeInMillis: 700 })
      const started = Date.now()
      const out = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), context))
      assert.isBelow(Date.now() - started, 5_000, "answered long before the facilitator would have")
      assert.match(textOf(out), /outcome unknown/i)
      assert.notInclude(textOf(out), MARKER)
      assert.deepStrictEqual(ledger.settlements, [])
      yield* Effect.promise(() => handler.runtime.dispose())
    }))

  it.live("no time left at all: nothing runs, nothing is charged, and the answer is the library's", () =>
    Effect.gen(function*() {
      const { layer, ledger, quiet, token } = setup()
      let ran = false
      const handler = requiresPayment({ planId: PLAN, layer, services: quiet.layer })(() => {
        ran = true
        return { content: [{ type: "text", text: MARKER }] }
      })
      const out = yield* Effect.promise(() =>
        handler(AgentCoreEvents.request({ token }), AgentCoreEvents.context({ remainingTimeInMillis: 100 }))
      )
      assert.isFalse(ran)
      assert.notInclude(textOf(out), MARKER)
      assert.deepStrictEqual(ledger.settlements, [])
      yield* Effect.promise(() => handler.runtime.dispose())
    }))
})

describe("hostile interceptor: answers before the Lambda's deadline (invariant 8)", () => {
  it.live("RESPONSE: a settle slower than the remaining time is withheld as 'outcome unknown'", () =>
    Effect.gen(function*() {
      const { layer, ledger, quiet, token } = setup()
      const handler = interceptor({ planId: PLAN, layer, services: quiet.layer })
      const request = AgentCoreEvents.request({ token })
      const forwarded = yield* Effect.promise(() => handler(request, AgentCoreEvents.context()))
      const forwardedHeaders = forwarded.mcp.transformedGatewayRequest?.headers ?? {}
      ledger.latency = Duration.seconds(30)
      const started = Date.now()
      const out = yield* Effect.promise(() =>
        handler(
          AgentCoreEvents.response({
            token,
            forwardedHeaders: forwardedHeaders as Record<string, string>,
            result: { content: [{ type: "text", text: MARKER }] }
          }),
          AgentCoreEvents.context({ remainingTimeInMillis: 700 })
        )
      )
      assert.isBelow(Date.now() - started, 5_000)
      assert.match(textOf(out), /outcome unknown/i)
      assert.notInclude(textOf(out), MARKER)
      assert.deepStrictEqual(ledger.settlements, [])
      yield* Effect.promise(() => handler.runtime.dispose())
    }))
})
