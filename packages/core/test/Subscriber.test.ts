import { Subscriber } from "@effect-x402/core"
import { FakeNevermined } from "@effect-x402/testing"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Fiber, Layer, Redacted, TestClock } from "effect"
import { AGENT, FIAT_PLAN, PLAN, seed, subscriber, waitUntil } from "./Nevermined.fixtures.js"

const { Fault } = FakeNevermined

describe("Subscriber.accessToken", () => {
  it.scoped("mints a token with the exact body of docs/protocol.md §1, usable for verify and settle", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const delegation = fake.ledger.delegate(fake.subscriber)
      const live = yield* subscriber(fake, { delegationId: delegation.delegationId })
      const token = yield* live.accessToken({ planId: PLAN, agentId: AGENT })
      assert.isTrue(Redacted.isRedacted(token))
      assert.notInclude(String(token), Redacted.value(token))

      const request = fake.requests[0]
      assert.strictEqual(request.method, "POST")
      assert.strictEqual(request.url, "/api/v1/x402/permissions")
      assert.strictEqual(request.headers["authorization"], `Bearer ${fake.subscriberApiKey}`)
      assert.strictEqual(request.headers["nevermined-version"], "1.1")
      assert.strictEqual(
        request.body,
        `{"accepted":{"scheme":"nvm:erc4337","network":"eip155:84532","planId":"plan-1","extra":{"agentId":"agent-1"}},` +
          `"delegationConfig":{"delegationId":"${delegation.delegationId}"}}`
      )
      // The token is bound to the subscriber of the key and to the agent.
      assert.deepStrictEqual(fake.ledger.tokens.get(Redacted.value(token)), {
        planId: PLAN,
        subscriber: fake.subscriber,
        agentId: AGENT,
        delegationId: delegation.delegationId
      })
      assert.strictEqual(Subscriber.accessTokenVersion(token), 2, "the backend's default: reusable")
    }))

  it.scoped("v3: the binding and tokenVersion go in the mint body only when asked, and the token's version is read from it", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const live = yield* subscriber(fake)
      const token = yield* live.accessToken({
        planId: PLAN,
        agentId: AGENT,
        tokenVersion: 3,
        resource: "https://seller.example/api/tasks",
        httpVerb: "POST"
      })
      assert.strictEqual(
        fake.requests[0].body,
        `{"accepted":{"scheme":"nvm:erc4337","network":"eip155:84532","planId":"plan-1","extra":{"agentId":"agent-1"}},` +
          `"resource":{"url":"https://seller.example/api/tasks"},"httpVerb":"POST","tokenVersion":3}`
      )
      assert.strictEqual(Subscriber.accessTokenVersion(token), 3)
      assert.isTrue(Subscriber.isSingleUseAccessToken(token))
      assert.deepStrictEqual(fake.ledger.tokens.get(Redacted.value(token)), {
        planId: PLAN,
        subscriber: fake.subscriber,
        agentId: AGENT,
        version: 3,
        resourceUrl: "https://seller.example/api/tasks",
        httpVerb: "POST"
      })
      // a plan whose backend mints v3 unasked: the version is read off the token, not the request
      fake.ledger.addPlan({ planId: "plan-v3", singleUseTokens: true })
      const unasked = yield* live.accessToken({ planId: "plan-v3" })
      assert.notInclude(fake.requests[1].body, "tokenVersion")
      assert.strictEqual(Subscriber.accessTokenVersion(unasked), 3)
      // a binding without tokenVersion 3 is a programming error, never sent
      const exit = yield* Effect.exit(live.accessToken({ planId: PLAN, resource: "https://seller.example/x" }))
      assert.isTrue(exit._tag === "Failure")
      assert.strictEqual(fake.requests.length, 2)
    }))

  it("accessTokenVersion: a non-empty string nonce is v3; anything else, opaque or odd, is v2", () => {
    const b64 = (json: unknown) => Buffer.from(JSON.stringify(json)).toString("base64url")
    const withNonce = (nonce: unknown) => b64({ payload: { authorization: { from: "0x1", nonce } } })
    assert.strictEqual(Subscriber.accessTokenVersion(withNonce("0xabc")), 3)
    assert.strictEqual(
      Subscriber.accessTokenVersion(
        Buffer.from(JSON.stringify({ payload: { authorization: { nonce: "n" } } })).toString("base64")
      ),
      3,
      "standard padded base64 too"
    )
    assert.strictEqual(Subscriber.accessTokenVersion(withNonce("")), 2)
    assert.strictEqual(Subscriber.accessTokenVersion(withNonce("   ")), 2)
    assert.strictEqual(Subscriber.accessTokenVersion(withNonce(123)), 2)
    assert.strictEqual(Subscriber.accessTokenVersion(b64({ payload: { authorization: { from: "0x1" } } })), 2)
    assert.strictEqual(Subscriber.accessTokenVersion("nvm_tok_00000001.k3y"), 2)
    assert.strictEqual(Subscriber.accessTokenVersion(b64(null)), 2)
    assert.strictEqual(Subscriber.accessTokenVersion("!!!"), 2)
  })

  it.scoped("card delegations: the scheme, the provider network and a delegation id", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const live = yield* subscriber(fake)
      const refused = yield* Effect.flip(live.accessToken({ planId: FIAT_PLAN, scheme: "nvm:card-delegation" }))
      assert.strictEqual(refused.kind, "HttpStatus")
      assert.strictEqual(refused.status, 400)
      assert.strictEqual(refused.code, "BCK.DELEGATION.0003")
      assert.strictEqual(refused.operation, "permissions")

      const created = yield* live.createDelegation({
        provider: "stripe",
        providerPaymentMethodId: "pm_123",
        spendingLimitCents: 500,
        durationSecs: 600,
        currency: "usd"
      })
      const token = yield* live.accessToken({
        planId: FIAT_PLAN,
        scheme: "nvm:card-delegation",
        delegationId: created.delegationId
      })
      assert.isTrue(Redacted.value(token).length > 0)
      assert.deepStrictEqual(JSON.parse(fake.requests.at(-1)!.body), {
        accepted: { scheme: "nvm:card-delegation", network: "stripe", planId: FIAT_PLAN, extra: {} },
        delegationConfig: { delegationId: created.delegationId }
      })
    }))

  it.scoped("a delegation of another account, or an unknown plan, is refused with the backend's code", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const other = fake.ledger.addDelegation({
        owner: "0xsomeone-else",
        provider: "erc4337",
        currency: "usdc",
        spendingLimitCents: 1,
        durationSecs: 1,
        createdAt: fake.ledger.now()
      })
      const live = yield* subscriber(fake)
      const foreign = yield* Effect.flip(live.accessToken({ planId: PLAN, delegationId: other.delegationId }))
      assert.strictEqual(foreign.status, 404)
      assert.strictEqual(foreign.code, "BCK.DELEGATION.0001")
      const unknown = yield* Effect.flip(live.accessToken({ planId: "no-such-plan" }))
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(unknown.code, "BCK.PLANS.0001")
    }))

  it.scopedLive("minting is retried on transient failures", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const live = yield* subscriber(fake, { retry: { baseDelay: "1 millis" } })
      fake.faults.next("permissions", Fault.status(503), Fault.rateLimited(0))
      const token = yield* live.accessToken({ planId: PLAN, agentId: AGENT })
      assert.isTrue(Redacted.value(token).length > 0)
      assert.strictEqual(fake.calls("permissions"), 3)
    }))

  it.scoped("a wrong key is a 401; garbage is MalformedResponse", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const intruder = yield* subscriber(fake, { apiKey: FakeNevermined.makeApiKey("0xintruder") })
      const unauthorized = yield* Effect.flip(intruder.accessToken({ planId: PLAN }))
      assert.strictEqual(unauthorized.status, 401)
      assert.strictEqual(unauthorized.code, "BCK.AUTH.0001")

      const live = yield* subscriber(fake)
      fake.faults.next("permissions", Fault.wrongShape({ token: "x" }))
      const malformed = yield* Effect.flip(live.accessToken({ planId: PLAN }))
      assert.strictEqual(malformed.kind, "MalformedResponse")
    }))
})

describe("Subscriber delegations", () => {
  it.scoped("creates delegations and lists them with string amounts", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const live = yield* subscriber(fake)
      const crypto = yield* live.createDelegation({
        provider: "erc4337",
        spendingLimitCents: 10_000,
        durationSecs: 604_800,
        currency: "usdc",
        planId: PLAN
      })
      assert.isUndefined(crypto.delegationToken)
      assert.deepStrictEqual(JSON.parse(fake.requests[0].body), {
        provider: "erc4337",
        spendingLimitCents: 10_000,
        durationSecs: 604_800,
        currency: "usdc",
        planId: PLAN
      })
      assert.strictEqual(fake.requests[0].url, "/api/v1/delegation/create")

      const card = yield* live.createDelegation({
        provider: "visa",
        spendingLimitCents: 2_000,
        durationSecs: 3_600,
        currency: "eur"
      })
      assert.isTrue(card.delegationToken !== undefined && Redacted.isRedacted(card.delegationToken))

      const list = yield* live.listDelegations()
      assert.strictEqual(list.totalResults, 2)
      assert.deepStrictEqual(list.delegations.map((d) => d.delegationId), [crypto.delegationId, card.delegationId])
      assert.strictEqual(list.delegations[0].spendingLimitCents, "10000")
      assert.strictEqual(list.delegations[0].status, "Active")
      assert.strictEqual(list.delegations[1].currency, "eur")

      yield* live.listDelegations({ accessible: true })
      assert.strictEqual(fake.requests.at(-1)!.url, "/api/v1/delegation?accessible=true")
    }))

  it.scoped("a refused creation reports the backend's code", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const live = yield* subscriber(fake)
      const error = yield* Effect.flip(
        live.createDelegation({ provider: "stripe", spendingLimitCents: 100, durationSecs: 60, currency: "usdc" })
      )
      assert.strictEqual(error.status, 400)
      assert.strictEqual(error.code, "BCK.DELEGATION.0004")
    }))

  it.scopedLive("creating a delegation is never retried once sent", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const live = yield* subscriber(fake, { retry: { baseDelay: "1 millis" } })
      fake.faults.next("delegationCreate", Fault.status(503))
      const error = yield* Effect.flip(
        live.createDelegation({ provider: "erc4337", spendingLimitCents: 100, durationSecs: 60, currency: "usdc" })
      )
      assert.strictEqual(error.status, 503)
      assert.strictEqual(fake.calls("delegationCreate"), 1)
      assert.strictEqual(fake.ledger.delegations.size, 0)

      fake.faults.next("delegationList", Fault.status(502))
      const list = yield* live.listDelegations()
      assert.strictEqual(list.totalResults, 0)
      assert.strictEqual(fake.calls("delegationList"), 2)
    }))
})

describe("Subscriber.balance", () => {
  it.scoped("reads a plan balance, by default of the key's own account", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake, 7)
      const live = yield* subscriber(fake)
      const balance = yield* live.balance(PLAN)
      assert.strictEqual(balance.balance, "7")
      assert.strictEqual(balance.holderAddress, fake.subscriber)
      assert.isTrue(balance.isSubscriber)
      assert.strictEqual(fake.requests[0].url, `/api/v1/protocol/plans/${PLAN}/balance/${fake.subscriber}`)

      const stranger = yield* live.balance(PLAN, "0xstranger")
      assert.strictEqual(stranger.balance, "0")
      assert.isFalse(stranger.isSubscriber)

      const unknown = yield* Effect.flip(live.balance("no-such-plan"))
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(unknown.operation, "balance")
    }))

  it.scoped("times out per its configured timeout", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const live = yield* subscriber(fake, { timeout: "100 millis" })
      fake.faults.next("balance", Fault.noAnswer())
      const fiber = yield* Effect.fork(live.balance(PLAN))
      yield* waitUntil(() => fake.calls("balance") === 1, "the request arrived")
      yield* TestClock.adjust("100 millis")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error.kind, "Timeout")
      assert.strictEqual(error.operation, "balance")
    }))
})

describe("Subscriber.layerConfig", () => {
  it.scoped("reads NVM_API_KEY, NVM_BACKEND_URL and NVM_DELEGATION_ID", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const delegation = fake.ledger.delegate(fake.subscriber, { spendingLimitCents: 1, durationSecs: 60 })
      const env = new Map([
        ["NVM_API_KEY", fake.subscriberApiKey],
        ["NVM_BACKEND_URL", fake.url],
        ["NVM_DELEGATION_ID", delegation.delegationId]
      ])
      yield* Effect.flatMap(Subscriber.Subscriber, (live) => live.accessToken({ planId: PLAN })).pipe(
        Effect.provide(Subscriber.layerConfig().pipe(Layer.provide(FetchHttpClient.layer))),
        Effect.withConfigProvider(ConfigProvider.fromMap(env))
      )
      assert.deepStrictEqual(JSON.parse(fake.requests[0].body).delegationConfig, {
        delegationId: delegation.delegationId
      })
    }))
})
