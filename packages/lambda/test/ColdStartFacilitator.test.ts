// The adapters' default facilitator read from the environment without `Config`
// (`internal/coldStart.environmentFacilitator`): the same facilitator as `Nevermined.layerConfig()`
// over the lean fetch client, against FakeNevermined over real HTTP; failures name the variable,
// never its value.
import { Facilitator, X402 } from "@effect-x402/core"
import { LambdaRuntime } from "@effect-x402/lambda"
import { FakeNevermined } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import type { Layer } from "effect"
import { ConfigError, Effect, Exit, Redacted } from "effect"
import { environmentFacilitator } from "../src/internal/coldStart.js"
import { isolateEnv } from "./helpers.js"

isolateEnv(["NVM_API_KEY", "NVM_ENVIRONMENT", "NVM_BACKEND_URL"])

const PLAN = "plan-1"
const AGENT = "agent-1"
const paymentRequired = X402.paymentRequired({ planIds: [PLAN], agentId: AGENT, network: "eip155:84532" })

// Verify one minted token through a facilitator layer, built the way an adapter builds it.
const verifyThrough = (layer: Layer.Layer<Facilitator.Facilitator, unknown>, token: string) =>
  Effect.flatMap(
    Facilitator.Facilitator,
    (service) => service.verify({ paymentRequired, token: Redacted.make(token), maxAmount: 1 })
  ).pipe(Effect.provide(layer))

describe("internal/coldStart.environmentFacilitator", () => {
  it.scoped("answers as Nevermined.layerConfig() does, from the same variables, read when built", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      fake.ledger.addPlan({ planId: PLAN, agentId: AGENT })
      fake.ledger.fund(fake.subscriber, PLAN, 10)
      const token = fake.ledger.mintToken({ planId: PLAN, subscriber: fake.subscriber, agentId: AGENT })
      // Set after the layer value exists: the variables are read when the runtime builds it.
      process.env.NVM_API_KEY = fake.apiKey
      process.env.NVM_BACKEND_URL = fake.url
      const ours = yield* verifyThrough(environmentFacilitator, token)
      const reference = yield* verifyThrough(LambdaRuntime.defaultFacilitator, token)
      assert.isTrue(ours.isValid)
      // The same answer but for the request id the backend issues per verify.
      assert.deepStrictEqual({ ...ours, agentRequestId: "" }, { ...reference, agentRequestId: "" })
      assert.strictEqual(fake.requests.length, 2)
      for (const request of fake.requests) {
        assert.strictEqual(request.headers["authorization"], `Bearer ${fake.apiKey}`)
      }
      // A blank NVM_ENVIRONMENT is unset (the key's prefix decides), as the cold-start check says;
      // through `Config` the same blank value failed the layer on every call.
      process.env.NVM_ENVIRONMENT = " "
      assert.isTrue((yield* verifyThrough(environmentFacilitator, token)).isValid)
      const viaConfig = yield* Effect.exit(verifyThrough(LambdaRuntime.defaultFacilitator, token))
      assert.isTrue(Exit.isFailure(viaConfig))
    }))

  it.effect("no key, or an unknown environment, fails the layer with a ConfigError naming the variable", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.flip(verifyThrough(environmentFacilitator, "token"))
      assert.isTrue(ConfigError.isConfigError(missing))
      assert.include(String(missing), "NVM_API_KEY")
      const secret = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIweDEyMyJ9.c2VjcmV0LXNpZ25hdHVyZQ"
      process.env.NVM_API_KEY = `sandbox:${secret}`
      process.env.NVM_ENVIRONMENT = "prod-secret-value"
      const unknown = yield* Effect.flip(verifyThrough(environmentFacilitator, "token"))
      assert.isTrue(ConfigError.isConfigError(unknown))
      assert.include(String(unknown), "NVM_ENVIRONMENT")
      assert.include(String(unknown), "sandbox, live")
      assert.notInclude(String(unknown), "prod-secret-value")
      // A malformed key: InvalidApiKey, which never contains the key.
      process.env.NVM_ENVIRONMENT = "sandbox"
      process.env.NVM_API_KEY = secret
      const malformed = yield* Effect.flip(verifyThrough(environmentFacilitator, "token"))
      assert.strictEqual((malformed as { readonly _tag?: string })._tag, "InvalidApiKey")
      assert.notInclude(JSON.stringify(malformed) + String(malformed), "c2VjcmV0")
    }))
})
