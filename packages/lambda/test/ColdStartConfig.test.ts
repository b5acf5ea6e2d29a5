// A Lambda whose environment cannot configure the default facilitator stops at construction (its
// init phase) with a message naming the variable, in every adapter; the secret never shows.
import { httpHandler } from "@effect-x402/lambda/HttpHandler"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { assert, describe, it } from "@effect/vitest"
import { isolateEnv } from "./helpers.js"

isolateEnv(["NVM_API_KEY", "NVM_ENVIRONMENT", "NVM_BACKEND_URL"])

const construct = {
  requiresPayment: () => requiresPayment({ planId: "plan-1" })(() => "x"),
  httpHandler: () => httpHandler({ planId: "plan-1" })(() => "x"),
  interceptor: () => interceptor({ planId: "plan-1" })
}
const SECRET = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIweDEyMyJ9.c2VjcmV0LXNpZ25hdHVyZQ"

describe("default facilitator misconfiguration at cold start", () => {
  for (const [name, make] of Object.entries(construct)) {
    it(`${name}: no NVM_API_KEY names the variable`, () => {
      assert.throws(make, /NVM_API_KEY is not set/)
      process.env.NVM_API_KEY = "   "
      assert.throws(make, /NVM_API_KEY is not set/)
    })

    it(`${name}: a malformed NVM_API_KEY names the variable, never its value`, () => {
      process.env.NVM_API_KEY = SECRET // no "<environment>:" prefix
      try {
        make()
        assert.fail("construction should have thrown")
      } catch (error) {
        assert.instanceOf(error, Error)
        assert.match(error.message, /NVM_API_KEY is not a Nevermined API key/)
        assert.notInclude(error.message, SECRET)
        assert.notInclude(error.message, "c2VjcmV0")
      }
    })

    it(`${name}: an unknown NVM_ENVIRONMENT is named with the allowed values`, () => {
      process.env.NVM_API_KEY = `sandbox:${SECRET}`
      process.env.NVM_ENVIRONMENT = "prod"
      assert.throws(make, /NVM_ENVIRONMENT must be one of sandbox, live/)
    })

    it(`${name}: a well-formed environment constructs the handler`, () => {
      process.env.NVM_API_KEY = `sandbox:${SECRET}`
      process.env.NVM_ENVIRONMENT = "sandbox"
      assert.isFunction(make())
    })
  }

  it("a given layer is not checked against the environment", async () => {
    const { TestFacilitator } = await import("@effect-x402/testing")
    const layer = TestFacilitator.layer()
    assert.isFunction(requiresPayment({ planId: "plan-1", layer })(() => "x"))
  })

  // RELIABILITY bug 9: the construction check took a blank NVM_ENVIRONMENT for unset, and the
  // default facilitator (through `Config`) then refused it on every call.
  it("a blank NVM_ENVIRONMENT is unset for the default facilitator too: a paid call settles", async () => {
    const { AgentCoreEvents, FakeNevermined } = await import("@effect-x402/testing")
    const fake = await FakeNevermined.start()
    try {
      fake.ledger.addPlan({ planId: "plan-1", agentId: "agent-1" })
      fake.ledger.fund(fake.subscriber, "plan-1", 5)
      const token = fake.ledger.mintToken({ planId: "plan-1", subscriber: fake.subscriber, agentId: "agent-1" })
      process.env.NVM_API_KEY = fake.apiKey
      process.env.NVM_BACKEND_URL = fake.url
      process.env.NVM_ENVIRONMENT = "  "
      const handler = httpHandler({ planId: "plan-1", agentId: "agent-1", credits: 2 })(() => ({ answer: 42 }))
      try {
        const result = await handler(AgentCoreEvents.apiGatewayV2({ token, json: {} }), AgentCoreEvents.context())
        assert.strictEqual(result.statusCode, 200)
        assert.isString(result.headers?.["payment-response"])
        assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-1"), 3)
      } finally {
        await handler.runtime.dispose()
      }
    } finally {
      await fake.close()
    }
  })
})
