// Invariant 11 as a property: `onSettleFailure: "release"` lets output go when the settle outcome
// is unavailable or unknown (an outage), never when the facilitator definitely refused; `withhold`
// never lets unsettled output go. Every generated settle fault, both policies, two adapters,
// reconciled against the ledger.
import { httpHandler } from "@effect-x402/lambda/HttpHandler"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { AgentCoreEvents, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { captureLogs } from "../helpers.js"

const PLAN = "plan-1"
const MARKER = "PAID-OUTPUT-5e1f"

const outage: fc.Arbitrary<TestFacilitator.Fault> = fc.oneof(
  fc.constant({ _tag: "Timeout" as const }),
  fc.constant({ _tag: "Unreachable" as const }),
  fc.constant({ _tag: "ConnectionDropped" as const }),
  fc.constant({ _tag: "Malformed" as const }),
  fc.boolean().map((applied) => ({ _tag: "Indeterminate" as const, applied })),
  fc.integer({ min: 500, max: 599 }).map((status) => ({ _tag: "HttpStatus" as const, status }))
)

const refusal: fc.Arbitrary<TestFacilitator.Fault> = fc.oneof(
  fc.constantFrom("insufficient_funds", "plan_expired", "x").map((reason) => ({ _tag: "Rejected" as const, reason })),
  fc.integer({ min: 400, max: 499 }).filter((status) => status !== 408 && status !== 429).map((status) => ({
    _tag: "HttpStatus" as const,
    status
  }))
)

const fault = fc.oneof(
  outage.map((f) => ({ fault: f, kind: "outage" as const })),
  refusal.map((f) => ({ fault: f, kind: "refusal" as const }))
)
const policy = fc.constantFrom("release" as const, "withhold" as const)

describe("hostile: release covers outages, never refusals (property, invariant 11)", () => {
  const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 1_000_000 })
  const layer = TestFacilitator.layer(ledger)
  const quiet = captureLogs()
  const output = () => ({ content: [{ type: "text", text: MARKER }] })
  const agentCore = {
    release: requiresPayment({ planId: PLAN, layer, services: quiet.layer, onSettleFailure: "release" })(output),
    withhold: requiresPayment({ planId: PLAN, layer, services: quiet.layer, onSettleFailure: "withhold" })(output)
  }
  const http = {
    release: httpHandler({ planId: PLAN, layer, services: quiet.layer, onSettleFailure: "release" })(() => MARKER),
    withhold: httpHandler({ planId: PLAN, layer, services: quiet.layer, onSettleFailure: "withhold" })(() => MARKER)
  }

  it.live.prop(
    "requiresPayment and httpHandler: released output ⇒ settled, or an outage under release",
    [fault, policy, fc.boolean()],
    ([{ fault, kind }, chosen, viaHttp]) =>
      Effect.gen(function*() {
        const before = ledger.settlements.length
        ledger.failNext("settle", fault)
        const answer: unknown = yield* Effect.promise((): Promise<unknown> =>
          viaHttp
            ? http[chosen](AgentCoreEvents.apiGatewayV2({ token }), AgentCoreEvents.context() as never)
            : agentCore[chosen](AgentCoreEvents.request({ token }), AgentCoreEvents.context())
        )
        const released = JSON.stringify(answer).includes(MARKER)
        const burned = ledger.settlements.length - before
        assert.isAtMost(burned, 1, "charged at most once")
        if (released) {
          assert.strictEqual(chosen, "release", `${JSON.stringify(fault)} released under withhold`)
          assert.strictEqual(kind, "outage", `${JSON.stringify(fault)} is a refusal, yet released`)
        }
        if (kind === "refusal") assert.isFalse(released)
        if (kind === "outage" && chosen === "release") assert.isTrue(released, `${JSON.stringify(fault)} withheld`)
      }),
    { fastCheck: { numRuns: 150 } }
  )
})
