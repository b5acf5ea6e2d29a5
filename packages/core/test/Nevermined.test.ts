import { Facilitator, Nevermined, type PaymentError, Paywall } from "@effect-x402/core"
import { FakeNevermined, TestFacilitator, TestTelemetry } from "@effect-x402/testing"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Config, ConfigError, ConfigProvider, Effect, Either, Fiber, Layer, Redacted } from "effect"
import * as Http from "node:http"
import * as Zlib from "node:zlib"
import {
  advanceUntil,
  AGENT,
  clients,
  counting,
  ENDPOINT,
  facilitator,
  FIAT_PLAN,
  paymentRequired,
  PLAN,
  seed,
  seedLedger,
  waitUntil
} from "./Nevermined.fixtures.js"

const { Fault } = FakeNevermined

// verify or settle, by name, with one error type.
const call = (
  live: Facilitator.Facilitator.Service,
  operation: "verify" | "settle",
  request: Facilitator.VerifyRequest
): Effect.Effect<unknown, PaymentError.FacilitatorError> =>
  operation === "verify" ? live.verify(request) : live.settle(request)

describe("Nevermined live layer: verify and settle on the wire", () => {
  it.scoped("verify sends the exact request of docs/protocol.md §1 and decodes the answer", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted, token } = seed(fake)
      const live = yield* facilitator(fake)
      const answer = yield* live.verify({ paymentRequired, token: redacted, maxAmount: 2 })
      assert.isTrue(answer.isValid)
      assert.strictEqual(answer.payer, fake.subscriber)
      assert.match(answer.agentRequestId ?? "", /^areq_/)

      assert.strictEqual(fake.requests.length, 1)
      const request = fake.requests[0]
      assert.strictEqual(request.method, "POST")
      assert.strictEqual(request.url, "/api/v1/x402/verify")
      assert.strictEqual(request.headers["authorization"], `Bearer ${fake.apiKey}`)
      assert.strictEqual(request.headers["nevermined-version"], "1.1")
      assert.strictEqual(request.headers["content-type"], "application/json")
      assert.strictEqual(request.headers["accept"], "application/json")
      // Golden body: field names, order and the decimal-string amount.
      assert.strictEqual(
        request.body,
        "{\"paymentRequired\":{\"x402Version\":2,\"resource\":{\"url\":\"https://agent.example/mcp\"}," +
          "\"accepts\":[{\"scheme\":\"nvm:erc4337\",\"network\":\"eip155:84532\"," +
          "\"planId\":\"plan-1\",\"extra\":{\"version\":\"1\",\"agentId\":\"agent-1\",\"httpVerb\":\"POST\"}}]," +
          `"extensions":{}},"x402AccessToken":"${token}","maxAmount":"2"}`
      )
    }))

  it.scoped("settle sends the verified agentRequestId and burns the credits", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted, token } = seed(fake)
      const live = yield* facilitator(fake)
      const verified = yield* live.verify({ paymentRequired, token: redacted, maxAmount: 3 })
      const settled = yield* live.settle({
        paymentRequired,
        token: redacted,
        maxAmount: 3,
        agentRequestId: verified.agentRequestId
      })
      assert.isTrue(settled.success)
      assert.strictEqual(settled.creditsRedeemed, "3")
      assert.strictEqual(settled.remainingBalance, "7")
      assert.strictEqual(settled.network, "eip155:84532")
      assert.match(settled.transaction, /^0x[0-9a-f]{64}$/)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 7)
      assert.deepStrictEqual(fake.ledger.settlements.map((s) => s.agentRequestId), [verified.agentRequestId])

      const request = fake.requests[1]
      assert.strictEqual(request.url, "/api/v1/x402/settle")
      assert.strictEqual(request.headers["authorization"], `Bearer ${fake.apiKey}`)
      assert.strictEqual(request.headers["nevermined-version"], "1.1")
      assert.deepStrictEqual(JSON.parse(request.body), {
        paymentRequired: JSON.parse(JSON.stringify(paymentRequired)),
        x402AccessToken: token,
        maxAmount: "3",
        agentRequestId: verified.agentRequestId
      })
      assert.isTrue(request.body.endsWith(`"maxAmount":"3","agentRequestId":"${verified.agentRequestId}"}`))
    }))

  it.scoped("settle without a known agentRequestId leaves the field out", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const live = yield* facilitator(fake)
      const settled = yield* live.settle({ paymentRequired, token: redacted, maxAmount: 1 })
      assert.isTrue(settled.success)
      assert.notProperty(JSON.parse(fake.requests[0].body), "agentRequestId")
    }))

  it.scoped("a refusal is an answer, not an error: isValid false and success false", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake, 1)
      const live = yield* facilitator(fake)
      const unknown = Redacted.make("nvm_tok_unknown.0000")
      const verified = yield* live.verify({ paymentRequired, token: unknown, maxAmount: 1 })
      assert.deepStrictEqual(verified, { isValid: false, invalidReason: "invalid_payload" })
      const settled = yield* live.settle({ paymentRequired, token: unknown, maxAmount: 1 })
      assert.isFalse(settled.success)
      assert.strictEqual(settled.errorReason, "invalid_payload")
      assert.strictEqual(settled.transaction, "")
    }))

  it.scoped("unknown fields of an answer are tolerated; a missing required one is MalformedResponse", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const live = yield* facilitator(fake)
      fake.faults.next("verify", Fault.wrongShape({ isValid: true, brandNew: { nested: 1 }, agentRequestId: "a-1" }))
      const tolerated = yield* live.verify({ paymentRequired, token: redacted, maxAmount: 1 })
      assert.deepStrictEqual(tolerated, { isValid: true, agentRequestId: "a-1" })

      fake.faults.next("verify", Fault.wrongShape({ valid: true }))
      const error = yield* Effect.flip(live.verify({ paymentRequired, token: redacted, maxAmount: 1 }))
      assert.strictEqual(error.kind, "MalformedResponse")
      assert.strictEqual(error.operation, "verify")
      assert.isTrue(error.requestSent)
      assert.strictEqual(error.status, 200)
      assert.include(error.detail, "isValid")
      assert.strictEqual(fake.calls("verify"), 2)
    }))

  it.scoped("a wrong API key is a 401 with the backend's code, and the key is nowhere in the error", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const wrongKey = FakeNevermined.makeApiKey("0xintruder")
      const live = yield* facilitator(fake, { apiKey: wrongKey })
      const error = yield* Effect.flip(live.verify({ paymentRequired, token: redacted, maxAmount: 1 }))
      assert.strictEqual(error.kind, "HttpStatus")
      assert.strictEqual(error.status, 401)
      assert.strictEqual(error.code, "BCK.AUTH.0001")
      assert.isTrue(error.requestSent)
      assert.notInclude(error.message, wrongKey)
      assert.notInclude(error.message, wrongKey.split(":")[1])
      assert.strictEqual(fake.calls("verify"), 1)
    }))
})

// The timing rules (Retry-After, the default timeouts, latency) on the test clock alone, with a stub
// HttpClient: Nevermined.clock.test.ts. Here the same layer against FakeNevermined's faults over
// real loopback HTTP.
describe("Nevermined live layer: faults and retry rules", () => {
  for (const status of [502, 503, 504]) {
    it.scopedLive(`verify retries a ${status} and succeeds`, () =>
      Effect.gen(function*() {
        const fake = yield* FakeNevermined.make()
        const { redacted } = seed(fake)
        const live = yield* facilitator(fake, { retry: { baseDelay: "1 millis" } })
        fake.faults.next("verify", Fault.status(status), Fault.status(status))
        const answer = yield* live.verify({ paymentRequired, token: redacted, maxAmount: 1 })
        assert.isTrue(answer.isValid)
        assert.strictEqual(fake.calls("verify"), 3)
      }))
  }

  it.scopedLive("verify retries are bounded: the last failure is reported with status and code", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const live = yield* facilitator(fake, { retry: { baseDelay: "1 millis", maxAttempts: 4 } })
      fake.faults.always("verify", Fault.status(503, "BCK.X402.0005", "backend overloaded"))
      const error = yield* Effect.flip(live.verify({ paymentRequired, token: redacted, maxAmount: 1 }))
      assert.strictEqual(error.kind, "HttpStatus")
      assert.strictEqual(error.status, 503)
      assert.strictEqual(error.code, "BCK.X402.0005")
      assert.strictEqual(error.detail, "backend overloaded")
      assert.strictEqual(fake.calls("verify"), 4)
    }))

  it.scoped("a Retry-After beyond the verify timeout fails at once with the 429", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const live = yield* facilitator(fake)
      fake.faults.next("verify", Fault.rateLimited(60))
      const error = yield* Effect.flip(live.verify({ paymentRequired, token: redacted, maxAmount: 1 }))
      assert.strictEqual(error.kind, "HttpStatus")
      assert.strictEqual(error.status, 429)
      assert.strictEqual(fake.calls("verify"), 1)
    }))

  it.scoped("verify does not retry what is not transient: 500, 4xx, garbage, a dropped connection", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const live = yield* facilitator(fake)
      const cases = [
        [Fault.status(500, "BCK.X402.0099"), "HttpStatus"],
        [Fault.status(400, "BCK.X402.0005"), "HttpStatus"],
        [Fault.malformedJson, "MalformedResponse"],
        [Fault.wrongShape(), "MalformedResponse"],
        [Fault.dropConnection(), "ConnectionDropped"]
      ] as const
      for (const [fault, kind] of cases) {
        const before = fake.calls("verify")
        fake.faults.next("verify", fault)
        const error = yield* Effect.flip(live.verify({ paymentRequired, token: redacted, maxAmount: 1 }))
        assert.strictEqual(error.kind, kind, fault._tag)
        assert.isTrue(error.requestSent)
        assert.strictEqual(fake.calls("verify") - before, 1, fault._tag)
      }
    }))

  // A 429 is no longer in this list: it says "not applied", so settle retries it (issue 17, see
  // hostile/BackendBounds.test.ts).
  it.scoped("settle is never retried once sent: 5xx and garbage fail after one call", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const live = yield* facilitator(fake)
      const cases = [
        [Fault.status(503), "HttpStatus"],
        [Fault.status(502), "HttpStatus"],
        [Fault.malformedJson, "MalformedResponse"],
        [Fault.wrongShape({ settled: "yes" }), "MalformedResponse"]
      ] as const
      for (const [fault, kind] of cases) {
        const before = fake.calls("settle")
        fake.faults.next("settle", fault)
        const error = yield* Effect.flip(live.settle({ paymentRequired, token: redacted, maxAmount: 1 }))
        assert.strictEqual(error.kind, kind, fault._tag)
        assert.strictEqual(error.operation, "settle")
        assert.isTrue(error.requestSent)
        assert.strictEqual(fake.calls("settle") - before, 1, fault._tag)
      }
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 10)
    }))

  it.scoped("settle with a dropped connection is ConnectionDropped (sent, outcome unknown), not retried", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const live = yield* facilitator(fake)
      fake.faults.next("settle", Fault.dropConnection({ applied: true }))
      const error = yield* Effect.flip(live.settle({ paymentRequired, token: redacted, maxAmount: 2 }))
      assert.strictEqual(error.kind, "ConnectionDropped")
      assert.isTrue(error.requestSent)
      assert.strictEqual(fake.calls("settle"), 1)
      // The backend did burn the credits: exactly why it must not be sent again.
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 8)
    }))

  it.scoped("configured timeouts apply", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const live = yield* facilitator(fake, { timeouts: { verify: "200 millis", settle: "300 millis" } })
      fake.faults.always("verify", Fault.noAnswer())
      fake.faults.always("settle", Fault.noAnswer())
      const verify = yield* Effect.fork(live.verify({ paymentRequired, token: redacted, maxAmount: 1 }))
      const settle = yield* Effect.fork(live.settle({ paymentRequired, token: redacted, maxAmount: 1 }))
      yield* waitUntil(() => fake.calls("verify") === 1 && fake.calls("settle") === 1, "both arrived")
      yield* advanceUntil(() => false, { limit: "300 millis" })
      assert.strictEqual((yield* Effect.flip(Fiber.join(verify))).kind, "Timeout")
      assert.strictEqual((yield* Effect.flip(Fiber.join(settle))).kind, "Timeout")
    }))
})

describe("Nevermined live layer: connection-level failures, per HTTP client", () => {
  for (const [name, client] of clients) {
    it.scopedLive(`${name}: connection refused is Unreachable, requestSent false, and retried`, () =>
      Effect.gen(function*() {
        // A port that was just ours and is now closed.
        const closedUrl = yield* Effect.scoped(Effect.map(FakeNevermined.make(), (fake) => fake.url))
        const fake = yield* FakeNevermined.make()
        const { redacted } = seed(fake)
        const counted = counting(client)
        const live = yield* facilitator(
          fake,
          { backendUrl: closedUrl, retry: { baseDelay: "1 millis", maxAttempts: 3 } },
          counted.layer
        )
        for (const operation of ["verify", "settle"] as const) {
          const before = counted.count()
          const error = yield* Effect.flip(call(live, operation, { paymentRequired, token: redacted, maxAmount: 1 }))
          assert.strictEqual(error.kind, "Unreachable", `${operation}: ${error.message}`)
          assert.isFalse(error.requestSent)
          assert.strictEqual(error.operation, operation)
          // Nothing left, so even settle may try again: all attempts were made.
          assert.strictEqual(counted.count() - before, 3, operation)
        }
      }))

    it.scoped(`${name}: a dropped connection is ConnectionDropped, requestSent true`, () =>
      Effect.gen(function*() {
        const fake = yield* FakeNevermined.make()
        const { redacted } = seed(fake)
        const live = yield* facilitator(fake, {}, client)
        fake.faults.next("verify", Fault.dropConnection())
        fake.faults.next("settle", Fault.dropConnection())
        for (const operation of ["verify", "settle"] as const) {
          const error = yield* Effect.flip(call(live, operation, { paymentRequired, token: redacted, maxAmount: 1 }))
          assert.strictEqual(error.kind, "ConnectionDropped", `${operation}: ${error.message}`)
          assert.isTrue(error.requestSent)
          assert.strictEqual(fake.calls(operation), 1)
        }
      }))

    it.scoped(`${name}: a full verify and settle round trip`, () =>
      Effect.gen(function*() {
        const fake = yield* FakeNevermined.make()
        const { redacted } = seed(fake)
        const live = yield* facilitator(fake, {}, client)
        const verified = yield* live.verify({ paymentRequired, token: redacted, maxAmount: 1 })
        const settled = yield* live.settle({
          paymentRequired,
          token: redacted,
          maxAmount: 1,
          agentRequestId: verified.agentRequestId
        })
        assert.isTrue(settled.success)
        assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 9)
      }))
  }

  it.scoped("settle retries a refused connection, and succeeds once the backend is up", () =>
    Effect.gen(function*() {
      const closedUrl = yield* Effect.scoped(Effect.map(FakeNevermined.make(), (fake) => fake.url))
      const ledger = new TestFacilitator.Ledger()
      const apiKey = FakeNevermined.makeApiKey("0xb01d3r")
      const subscriber = "0x5ub5cr1b3r"
      const { redacted } = seedLedger(ledger, subscriber)
      const counted = counting(clients[0][1])
      const live = yield* Nevermined.make({ apiKey, backendUrl: closedUrl, retry: { baseDelay: "1 second" } }).pipe(
        Effect.provide(yield* Layer.build(counted.layer))
      )
      const fiber = yield* Effect.fork(live.settle({ paymentRequired, token: redacted, maxAmount: 4 }))
      yield* waitUntil(() => counted.count() === 1, "the first attempt was refused")
      // The backend comes up on that port while the settle waits to try again.
      const fake = yield* FakeNevermined.make({ port: Number(new URL(closedUrl).port), ledger, apiKey, subscriber })
      yield* advanceUntil(() => fake.calls("settle") === 1, { limit: "5 seconds" })
      const settled = yield* Fiber.join(fiber)
      assert.isTrue(settled.success)
      assert.strictEqual(counted.count(), 2)
      assert.strictEqual(fake.calls("settle"), 1)
      assert.strictEqual(ledger.balance(subscriber, PLAN), 6)
    }))
})

describe("Nevermined live layer: network for a 402", () => {
  it.scoped("a fiat plan advertises its provider; a crypto or unknown plan the environment's default", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const live = yield* facilitator(fake)
      const telemetry = TestTelemetry.make()
      assert.strictEqual(yield* live.networkFor(FIAT_PLAN), "stripe")
      assert.strictEqual(yield* live.networkFor(PLAN), "eip155:84532")
      assert.deepStrictEqual(telemetry.logs, [])
      assert.strictEqual(yield* live.networkFor("no-such-plan").pipe(Effect.provide(telemetry.layer)), "eip155:84532")
      // An unknown plan is a misconfiguration every payer would hit: an ERROR naming the plan and
      // what to check, once per cache window (the second lookup is a cache hit), never the key.
      assert.strictEqual(yield* live.networkFor("no-such-plan").pipe(Effect.provide(telemetry.layer)), "eip155:84532")
      const unknown = telemetry.logs.filter((line) => line.includes("no-such-plan is unknown"))
      assert.strictEqual(unknown.length, 1)
      assert.include(unknown[0], "ERROR")
      assert.include(unknown[0], "NVM_PLAN_ID")
      assert.notInclude(telemetry.text(), fake.apiKey)
      assert.deepStrictEqual(fake.requests.map((r) => r.url), [
        `/api/v1/protocol/plans/${FIAT_PLAN}`,
        `/api/v1/protocol/plans/${PLAN}`,
        "/api/v1/protocol/plans/no-such-plan"
      ])
      assert.strictEqual(fake.requests[0].headers["authorization"], `Bearer ${fake.apiKey}`)
    }))

  it.scoped("the live environment's default is Base mainnet", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make({ environment: "live" })
      const live = yield* facilitator(fake)
      const telemetry = TestTelemetry.make()
      assert.strictEqual(yield* live.networkFor("no-such-plan").pipe(Effect.provide(telemetry.layer)), "eip155:8453")
      assert.isTrue(telemetry.logs.some((line) => line.includes("unknown to the Nevermined live backend")))
    }))

  it.scoped("an explicit network wins and costs no request", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const live = yield* facilitator(fake, { network: "eip155:1" })
      assert.strictEqual(yield* live.networkFor(FIAT_PLAN), "eip155:1")
      assert.strictEqual(fake.calls("plan"), 0)
    }))

  it.scoped("one plan request per plan per 5 minutes, even under concurrency", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const live = yield* facilitator(fake)
      const networks = yield* Effect.all(Array.from({ length: 20 }, () => live.networkFor(FIAT_PLAN)), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(new Set(networks), new Set(["stripe"]))
      assert.strictEqual(fake.calls("plan"), 1)
      yield* advanceUntil(() => false, { limit: "4 minutes", step: "1 minute" })
      assert.strictEqual(yield* live.networkFor(FIAT_PLAN), "stripe")
      assert.strictEqual(fake.calls("plan"), 1)
      yield* advanceUntil(() => false, { limit: "61 seconds", step: "61 seconds" })
      assert.strictEqual(yield* live.networkFor(FIAT_PLAN), "stripe")
      assert.strictEqual(fake.calls("plan"), 2)
    }))

  it.scoped("several plans at once: each as networkFor says, one request per plan, none when warm or stale-free", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const live = yield* facilitator(fake)
      const plans = [FIAT_PLAN, PLAN, "no-such-plan"]
      // Nothing known before the first lookup: the synchronous read says so, and asks nobody.
      assert.strictEqual(live.cachedNetworks!(plans), undefined)
      assert.strictEqual(fake.calls("plan"), 0)
      const cold = yield* live.networksFor!(plans)
      assert.deepStrictEqual(cold, ["stripe", "eip155:84532", "eip155:84532"])
      assert.strictEqual(fake.calls("plan"), 3)
      // Warm: the same answers, from the cache (the synchronous read too).
      assert.deepStrictEqual(yield* live.networksFor!(plans), cold)
      assert.deepStrictEqual(live.cachedNetworks!(plans), cold)
      assert.strictEqual(live.cachedNetworks!([PLAN, "never-asked"]), undefined)
      assert.strictEqual(fake.calls("plan"), 3)
      // Past the window, each plan is asked again; the stale answers are not read synchronously either.
      yield* advanceUntil(() => false, { limit: "6 minutes", step: "6 minutes" })
      assert.strictEqual(live.cachedNetworks!(plans), undefined)
      assert.deepStrictEqual(yield* live.networksFor!(plans), cold)
      assert.strictEqual(fake.calls("plan"), 6)
      // A failed lookup is not a cached answer: the default network, as networkFor says.
      fake.faults.next("plan", Fault.status(500))
      yield* advanceUntil(() => false, { limit: "6 minutes", step: "6 minutes" })
      const degraded = yield* live.networksFor!([FIAT_PLAN])
      assert.deepStrictEqual(degraded, ["eip155:84532"])
      assert.strictEqual(live.cachedNetworks!([FIAT_PLAN]), undefined)
    }))

  it.scoped("a failing plan lookup falls back to the default network, never fails", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const live = yield* facilitator(fake, { timeouts: { plan: "100 millis" } })
      fake.faults.next("plan", Fault.status(500))
      assert.strictEqual(yield* live.networkFor(FIAT_PLAN), "eip155:84532")
      assert.strictEqual(fake.calls("plan"), 1)
    }))

  it.scoped("a plan lookup that keeps failing warns once per lookup, not once per call reading the cached failure", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const live = yield* facilitator(fake, { timeouts: { plan: "100 millis" } })
      const telemetry = TestTelemetry.make()
      fake.faults.always("plan", Fault.status(500))
      const warnings = () => telemetry.logs.filter((line) => line.includes("plan lookup failed")).length
      for (let i = 0; i < 5; i++) {
        assert.strictEqual(yield* live.networkFor(FIAT_PLAN).pipe(Effect.provide(telemetry.layer)), "eip155:84532")
      }
      assert.strictEqual(fake.calls("plan"), 1)
      assert.strictEqual(warnings(), 1)
      // Past the failure's short window the plan is asked again, and that lookup warns again.
      yield* advanceUntil(() => false, { limit: "31 seconds", step: "31 seconds" })
      assert.strictEqual(yield* live.networkFor(FIAT_PLAN).pipe(Effect.provide(telemetry.layer)), "eip155:84532")
      assert.strictEqual(fake.calls("plan"), 2)
      assert.strictEqual(warnings(), 2)
      assert.notInclude(telemetry.text(), fake.apiKey)
    }))
})

describe("Nevermined.layerConfig", () => {
  const withEnv = (env: Record<string, string>) =>
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

  it.scoped("reads NVM_API_KEY, NVM_ENVIRONMENT and NVM_BACKEND_URL", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const verified = yield* Effect.flatMap(
        Facilitator.Facilitator,
        (service) => service.verify({ paymentRequired, token: redacted, maxAmount: 1 })
      ).pipe(
        Effect.provide(Nevermined.layerConfig().pipe(Layer.provide(clients[0][1]))),
        withEnv({ NVM_API_KEY: fake.apiKey, NVM_ENVIRONMENT: "staging_live", NVM_BACKEND_URL: fake.url })
      )
      assert.isTrue(verified.isValid)
      assert.strictEqual(fake.requests[0].headers["authorization"], `Bearer ${fake.apiKey}`)
    }))

  it.effect("a missing key is a ConfigError; a malformed one is InvalidApiKey without the key", () =>
    Effect.gen(function*() {
      const build = Effect.provide(Facilitator.Facilitator, Nevermined.layerConfig().pipe(Layer.provide(clients[0][1])))
      const missing = yield* Effect.flip(build.pipe(withEnv({})))
      assert.strictEqual(missing._tag, "ConfigError")
      assert.isTrue(ConfigError.isMissingDataOnly(missing as ConfigError.ConfigError))
      const malformed = yield* Effect.flip(build.pipe(withEnv({ NVM_API_KEY: "not-a-key-but-a-secret-value" })))
      assert.strictEqual(malformed._tag, "InvalidApiKey")
      assert.notInclude(malformed.message, "secret-value")
    }))

  it.scoped("takes Config values per field; what is not given still comes from NVM_*", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const layer = Nevermined.layerConfig({
        apiKey: Config.redacted("SELLER_KEY"),
        retry: Config.succeed({ maxAttempts: 1 })
      }).pipe(Layer.provide(clients[0][1]))
      const verified = yield* Effect.flatMap(
        Facilitator.Facilitator,
        (service) => service.verify({ paymentRequired, token: redacted, maxAmount: 1 })
      ).pipe(
        Effect.provide(layer),
        // NVM_API_KEY is wrong on purpose: the given Config wins; NVM_BACKEND_URL still applies.
        withEnv({ SELLER_KEY: fake.apiKey, NVM_API_KEY: "sandbox:wrong", NVM_BACKEND_URL: fake.url })
      )
      assert.isTrue(verified.isValid)
      assert.strictEqual(fake.requests[0].headers["authorization"], `Bearer ${fake.apiKey}`)
    }))

  it.effect("Nevermined.layer: a malformed key is a typed InvalidApiKey, not a defect", () =>
    Effect.gen(function*() {
      const build = Effect.provide(
        Facilitator.Facilitator,
        Nevermined.layer({ apiKey: "not-a-key-but-a-secret-value" }).pipe(Layer.provide(clients[0][1]))
      )
      const error = yield* Effect.flip(build)
      assert.strictEqual(error._tag, "InvalidApiKey")
      assert.notInclude(error.message, "secret-value")
    }))

  it("the key's prefix names the environment", () => {
    const key = FakeNevermined.makeApiKey("0xabc", "live")
    const parsed = Either.getOrThrow(Nevermined.parseApiKey(key))
    assert.strictEqual(parsed.environment, "live")
    assert.strictEqual(parsed.address, "0xabc")
    assert.strictEqual(Nevermined.resolveEnvironment({ apiKey: parsed }).network, "eip155:8453")
  })
})

describe("Nevermined live layer through Paywall: what a settle failure means", () => {
  const paywall = Paywall.make<unknown>({ planId: PLAN, agentId: AGENT, endpoint: ENDPOINT, credits: 1 })
  const protect = (token: Redacted.Redacted<string>) =>
    Paywall.protect(paywall, { request: undefined, token }, () => Effect.succeed("paid output"))

  it.scoped("a timeout or a dropped connection after sending is Indeterminate; a 4xx Rejected; 5xx Indeterminate", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const live = yield* facilitator(fake, { timeouts: { settle: "200 millis" } })
      const run = (fault: FakeNevermined.Fault) =>
        Effect.gen(function*() {
          fake.faults.next("settle", fault)
          const settles = fake.calls("settle")
          const fiber = yield* Effect.fork(Effect.flip(protect(redacted)))
          // Once the settle has arrived, its timeout is running: then let virtual time pass it.
          yield* waitUntil(() => fake.calls("settle") === settles + 1, "the settle arrived")
          yield* advanceUntil(() => false, { limit: "300 millis" })
          const error = yield* Fiber.join(fiber)
          return error._tag === "SettleFailed" ? error.reason : error._tag
        }).pipe(Effect.provideService(Facilitator.Facilitator, live))
      assert.strictEqual(yield* run(Fault.noAnswer({ applied: true })), "Indeterminate")
      assert.strictEqual(yield* run(Fault.dropConnection()), "Indeterminate")
      assert.strictEqual(yield* run(Fault.status(503)), "Indeterminate")
      assert.strictEqual(yield* run(Fault.malformedJson), "Indeterminate")
      assert.strictEqual(yield* run(Fault.status(409, "BCK.X402.0059")), "Rejected")
      // One settle call per protected call, whatever happened.
      assert.strictEqual(fake.calls("settle"), 5)
      assert.strictEqual(fake.calls("verify"), 5)
    }))

  it.scopedLive("a backend that refuses connections: verify Unavailable, nothing settled", () =>
    Effect.gen(function*() {
      const closedUrl = yield* Effect.scoped(Effect.map(FakeNevermined.make(), (fake) => fake.url))
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      // The plan lookup's warning is captured (not printed) and checked: it names the plan, never the key.
      const telemetry = TestTelemetry.make()
      const live = yield* facilitator(fake, { backendUrl: closedUrl, retry: { baseDelay: "1 millis" } })
      const error = yield* Effect.flip(protect(redacted)).pipe(
        Effect.provideService(Facilitator.Facilitator, live),
        Effect.provide(telemetry.layer)
      )
      assert.strictEqual(error._tag, "VerifyFailed")
      assert.strictEqual(error._tag === "VerifyFailed" && error.reason, "Unavailable")
      assert.isTrue(telemetry.logs.some((line) => line.includes("plan lookup failed")))
      assert.notInclude(telemetry.text(), fake.apiKey)
    }))
})

describe("Nevermined live layer: a compressed answer", () => {
  it.scoped("is capped by its decoded size, not by the length it declares (fetch decodes gzip)", () =>
    Effect.gen(function*() {
      // 4 MiB of JSON that gzips to a few KiB, sent with that small content-length.
      const json = Buffer.from(`{"isValid":true,"pad":"${"a".repeat(4 * 1024 * 1024)}"}`)
      const gzipped = Zlib.gzipSync(json)
      const server = yield* Effect.acquireRelease(
        Effect.async<Http.Server>((resume) => {
          const s = Http.createServer((request, response) => {
            request.resume()
            response.writeHead(200, {
              "content-type": "application/json",
              "content-encoding": "gzip",
              "content-length": String(gzipped.length)
            })
            response.end(gzipped)
          })
          s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
        }),
        (s) =>
          Effect.async<void>((resume) => {
            s.close(() => resume(Effect.void))
          })
      )
      const port = (server.address() as { readonly port: number }).port
      const live = yield* Effect.flatMap(
        Layer.build(FetchHttpClient.layer),
        (context) =>
          Nevermined.make({ apiKey: FakeNevermined.makeApiKey("0xprovider"), backendUrl: `http://127.0.0.1:${port}` })
            .pipe(Effect.provide(context))
      )
      const error = yield* Effect.flip(
        live.verify({ paymentRequired, token: Redacted.make("nvm_tok_compressed"), maxAmount: 1 })
      )
      assert.strictEqual(error.kind, "TooLarge")
      assert.isTrue(error.requestSent)
    }))
})
