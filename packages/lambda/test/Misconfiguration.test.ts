// Misconfiguration is loud at cold start, naming what to fix: an unset NVM_PLAN_ID (the usual
// `planId: process.env.NVM_PLAN_ID ?? ""`) stops the handler's construction with a message that
// names the variable, instead of a failure at the first paying call.
import { HttpPaywall } from "@effect-x402/core"
import { httpHandler } from "@effect-x402/lambda/HttpHandler"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"

const UNSET_PLAN = /no plan to charge with.*NVM_PLAN_ID/

describe("misconfiguration at cold start", () => {
  it("an empty or missing plan names NVM_PLAN_ID, in every adapter", () => {
    assert.throws(() => requiresPayment({ planId: "" })(() => "x"), RangeError, UNSET_PLAN)
    assert.throws(() => requiresPayment({})(() => "x"), RangeError, UNSET_PLAN)
    assert.throws(() => httpHandler({ planId: "" })(() => "x"), RangeError, UNSET_PLAN)
    assert.throws(() => HttpPaywall.middleware({ planIds: [] })(HttpServerResponse.empty()), RangeError, UNSET_PLAN)
  })
})
