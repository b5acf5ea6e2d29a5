import type { PaymentError } from "@effect-x402/core"
import { Subscriber, X402Client } from "@effect-x402/core"
import { FakeNevermined, TestTelemetry } from "@effect-x402/testing"
import { FetchHttpClient, HttpClientRequest } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import { facilitator, FIAT_PLAN, paidAgent, paymentRequired, seed, subscriber } from "./Nevermined.fixtures.js"

const { Fault } = FakeNevermined

describe("secrets never leak", () => {
  it.scopedLive("a failing run: no API key and no token in any log line, span or error message", () => {
    const captured = TestTelemetry.make()
    const errors: Array<string> = []
    // What a user would print: the message, the error itself, and the rendered cause.
    const keep = (error: { readonly message: string }) =>
      Effect.gen(function*() {
        errors.push(error.message, String(error), JSON.stringify(error), Cause.pretty(Cause.fail(error)))
        yield* Effect.logError("call failed", error)
      })
    return Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted, token } = seed(fake, 1)
      const live = yield* facilitator(fake, { retry: { baseDelay: "1 millis" } })
      const impatient = yield* facilitator(fake, { timeouts: { verify: "200 millis" } })
      const request = { paymentRequired, token: redacted, maxAmount: 1 }
      // Each step starts from a clean fault script, whatever the previous one left.
      const attempt = (effect: Effect.Effect<unknown, PaymentError.FacilitatorError>) =>
        effect.pipe(Effect.flip, Effect.flatMap(keep), Effect.ensuring(Effect.sync(() => fake.faults.clear())))

      // The backend echoes the secrets back in its error bodies and in garbage answers.
      fake.faults.next("verify", Fault.status(400, "BCK.X402.0005", `bad token ${token} for key ${fake.apiKey}`))
      yield* attempt(live.verify(request))
      fake.faults.next("verify", Fault.wrongShape({ isValid: token, x402AccessToken: token }))
      yield* attempt(live.verify(request))
      fake.faults.next("settle", Fault.status(503, "BCK.X402.0059", `${fake.apiKey.split(":")[1]} ${token}`))
      yield* attempt(live.settle(request))
      fake.faults.next("verify", Fault.status(503), Fault.rateLimited(0), Fault.dropConnection())
      yield* attempt(live.verify(request))
      fake.faults.next("verify", Fault.noAnswer())
      yield* attempt(impatient.verify(request))
      fake.faults.next("plan", Fault.status(500, "BCK.PLANS.0500", fake.apiKey))
      yield* live.networkFor(FIAT_PLAN)
      // A wrong key is refused; the error must not repeat it either.
      const intruder = FakeNevermined.makeApiKey("0xintruder")
      const wrong = yield* facilitator(fake, { apiKey: Redacted.make(intruder) })
      yield* attempt(wrong.verify(request))

      // The paying side: a paid call, then a refused one, then a token that cannot be minted.
      const buyer = yield* subscriber(fake)
      const http = yield* Layer.build(FetchHttpClient.layer)
      const client = yield* X402Client.make().pipe(
        Effect.provideService(Subscriber.Subscriber, buyer),
        Effect.provide(http)
      )
      const agent = yield* paidAgent(fake, { credits: 1 })
      const call = () => client.execute(HttpClientRequest.post(`${agent.url}/tool`))
      yield* call()
      const refused = yield* Effect.flip(call())
      yield* keep(refused)
      fake.faults.always("permissions", Fault.status(500, "BCK.X402.0001", `minting ${fake.subscriberApiKey}`))
      yield* Effect.flip(call()).pipe(Effect.flatMap(keep))
      const card = yield* buyer.createDelegation({
        provider: "stripe",
        spendingLimitCents: 100,
        durationSecs: 60,
        currency: "usd"
      })
      yield* Effect.log("created delegation", card)
      yield* Effect.flip(buyer.balance("no-such-plan")).pipe(Effect.flatMap(keep))

      const secrets = [
        fake.apiKey,
        fake.apiKey.split(":")[1],
        fake.subscriberApiKey,
        fake.subscriberApiKey.split(":")[1],
        intruder,
        intruder.split(":")[1],
        ...fake.ledger.tokens.keys(),
        `dtok_${card.delegationId}`
      ]
      assert.isAbove(fake.ledger.tokens.size, 1, "tokens were minted and used")
      assert.isAbove(captured.logs.length, 5)
      assert.isAbove(captured.spans.length, 10)
      const everything = [captured.text(), ...errors].join("\n")
      for (const secret of secrets) {
        const at = everything.indexOf(secret)
        const context = at < 0 ? "" : everything.slice(Math.max(0, at - 300), at + secret.length + 50)
        assert.isFalse(at >= 0, `a secret leaked here: ${context.split(secret).join("<SECRET>")}`)
      }
      // The failures are still readable: statuses and backend codes survive the scrubbing.
      assert.include(everything, "BCK.X402.0005")
      assert.include(everything, "HttpStatus 401")
    }).pipe(
      Effect.provide(captured.layer),
      Logger.withMinimumLogLevel(LogLevel.All)
    )
  })
})
