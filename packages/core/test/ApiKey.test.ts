import { Nevermined } from "@effect-x402/core"
import { assert, describe, it } from "@effect/vitest"
import { Either, Redacted } from "effect"

const jwt = (payload: object) =>
  `${btoa(JSON.stringify({ alg: "ES256K" }))}.${btoa(JSON.stringify(payload)).replace(/=+$/, "")}.signature`

describe("Nevermined API keys and environments", () => {
  it("the key's prefix names the environment", () => {
    const cases: Array<[string, Nevermined.Environment | undefined]> = [
      ["sandbox", "sandbox"],
      ["live", "live"],
      ["SANDBOX", "sandbox"],
      ["sandbox-staging", "staging_sandbox"],
      ["live-staging", "staging_live"],
      ["other", undefined]
    ]
    for (const [prefix, environment] of cases) {
      const parsed = Nevermined.parseApiKey(`${prefix}:${jwt({ sub: "0xabc" })}`)
      assert.isTrue(Either.isRight(parsed))
      if (Either.isRight(parsed)) {
        assert.strictEqual(parsed.right.environment, environment, prefix)
        assert.strictEqual(parsed.right.address, "0xabc")
      }
    }
  })

  it("refuses keys without exactly one ':' and never echoes the key", () => {
    for (const key of ["no-colon", "a:b:c", ":jwt", "sandbox:"]) {
      const parsed = Nevermined.parseApiKey(Redacted.make(key))
      assert.isTrue(Either.isLeft(parsed), key)
      if (Either.isLeft(parsed)) {
        assert.strictEqual(parsed.left._tag, "InvalidApiKey")
        if (key.length > 3) assert.notInclude(parsed.left.message, key)
      }
    }
  })

  it("an unreadable JWT still parses, without an address", () => {
    const parsed = Nevermined.parseApiKey("sandbox:not-a-jwt")
    assert.isTrue(Either.isRight(parsed) && parsed.right.address === undefined)
  })

  it("the prefix wins over a configured environment; NVM_BACKEND_URL wins over the URL", () => {
    const apiKey = Either.getOrThrow(Nevermined.parseApiKey("live:x.y.z"))
    assert.deepStrictEqual(Nevermined.resolveEnvironment({ apiKey, environment: "sandbox" }), {
      environment: "live",
      backendUrl: "https://api.live.nevermined.app",
      network: "eip155:8453"
    })
    const unprefixed = Either.getOrThrow(Nevermined.parseApiKey("custom-thing:x.y.z"))
    assert.deepStrictEqual(
      Nevermined.resolveEnvironment({ apiKey: unprefixed, environment: "staging_live" }),
      { environment: "staging_live", backendUrl: "https://api.live.nevermined.dev", network: "eip155:8453" }
    )
    assert.strictEqual(
      Nevermined.resolveEnvironment({ apiKey, backendUrl: "http://127.0.0.1:4000/" }).backendUrl,
      "http://127.0.0.1:4000"
    )
    assert.deepStrictEqual(Nevermined.resolveEnvironment({ apiKey: unprefixed, environment: "custom" }), {
      environment: "custom",
      backendUrl: "http://localhost:3001",
      network: "eip155:84532"
    })
    assert.strictEqual(Nevermined.resolveEnvironment({ apiKey: unprefixed }).environment, "sandbox")
  })
})
