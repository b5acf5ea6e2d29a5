// Over the wire: single-use (v3) access tokens and delegation spending limits. A Node HTTP server
// protected by HttpPaywall, the live Nevermined facilitator and the live Subscriber, both talking
// to FakeNevermined on 127.0.0.1, and X402Client paying; every test reconciles with the ledger.
import { HttpPaywall, PaymentError, Paywall, Subscriber, X402Client } from "@effect-x402/core"
import { FakeNevermined, TestFacilitator } from "@effect-x402/testing"
import { FetchHttpClient, HttpClientRequest, HttpRouter, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Option, Redacted } from "effect"
import { liveFacilitator, liveSubscriber, payingClient, post, serve } from "./HttpPaywall.fixtures.js"

const PLAN = "plan-1"
const AGENT = "agent-1"

const ask = (url: string) => HttpClientRequest.bodyUnsafeJson(HttpClientRequest.post(url), { question: "6 x 7" })

const router = (endpoint?: string) =>
  HttpRouter.empty.pipe(
    HttpRouter.post(
      "/answer",
      HttpServerResponse.json({ answer: 42 }).pipe(
        HttpPaywall.middleware({ planId: PLAN, agentId: AGENT, credits: 2, ...(endpoint ? { endpoint } : {}) })
      )
    )
  )

const setup = (options: { readonly credits?: number; readonly endpoint?: string } = {}) =>
  Effect.gen(function*() {
    const fake = yield* FakeNevermined.make()
    fake.ledger.addPlan({ planId: PLAN, agentId: AGENT })
    fake.ledger.fund(fake.subscriber, PLAN, options.credits ?? 20)
    const url = yield* serve(router(options.endpoint)).pipe(Effect.provide(yield* liveFacilitator(fake)))
    return { fake, url }
  })

const mintedTokens = (fake: FakeNevermined.FakeNevermined.Service) =>
  [...fake.ledger.tokens.entries()].map(([token, grant]) => ({ token, grant }))

const settledTokens = (fake: FakeNevermined.FakeNevermined.Service) =>
  fake.requests.filter((r) => r.route === "settle").map((r) => JSON.parse(r.body).x402AccessToken as string)

describe("v3 single-use tokens over the wire", () => {
  it.scopedLive("tokenVersion 3: a fresh token per call, bound to the agent, the advertised URL and the verb", () =>
    Effect.gen(function*() {
      const { fake, url } = yield* setup()
      const client = yield* payingClient(fake, { tokenVersion: 3 })
      for (let i = 0; i < 3; i++) {
        const paid = yield* client.execute(ask(`${url}/answer`))
        assert.strictEqual(paid.response.status, 200)
        assert.isTrue(Option.getOrThrow(paid.receipt).success)
      }
      assert.strictEqual(fake.calls("permissions"), 3, "never reused")
      const minted = mintedTokens(fake)
      assert.strictEqual(minted.length, 3)
      for (const { grant, token } of minted) {
        assert.deepStrictEqual(grant, {
          planId: PLAN,
          subscriber: fake.subscriber,
          agentId: AGENT,
          version: 3,
          resourceUrl: `${url}/answer`,
          httpVerb: "POST"
        })
        assert.strictEqual(Subscriber.accessTokenVersion(token), 3)
      }
      // each token settled exactly once; the ledger agrees with the receipts
      const settled = settledTokens(fake)
      assert.strictEqual(new Set(settled).size, 3)
      assert.sameMembers(settled, minted.map((m) => m.token))
      assert.strictEqual(fake.ledger.settlements.length, 3)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 20 - 3 * 2)
    }))

  it.scopedLive("a backend that mints v3 unasked: the client sees it in the token and never reuses it, even concurrently", () =>
    Effect.gen(function*() {
      const { fake, url } = yield* setup()
      fake.ledger.addPlan({ planId: PLAN, agentId: AGENT, singleUseTokens: true })
      const client = yield* payingClient(fake)
      const answers = yield* Effect.all(
        Array.from({ length: 4 }, () => client.execute(ask(`${url}/answer`))),
        { concurrency: "unbounded" }
      )
      for (const paid of answers) assert.strictEqual(paid.response.status, 200)
      yield* client.execute(ask(`${url}/answer`))
      assert.strictEqual(fake.calls("permissions"), 5, "one token per call")
      assert.strictEqual(new Set(settledTokens(fake)).size, 5, "no token settled twice")
      assert.strictEqual(fake.ledger.settlements.length, 5)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 20 - 5 * 2)
    }))

  it.scopedLive("a spent token: the paywall refuses it with a typed TokenAlreadyUsed and withholds the output", () =>
    Effect.gen(function*() {
      const { fake, url } = yield* setup()
      const subscriber = yield* liveSubscriber(fake)
      const token = yield* subscriber.accessToken({
        planId: PLAN,
        agentId: AGENT,
        tokenVersion: 3,
        resource: `${url}/answer`,
        httpVerb: "POST"
      })
      const first = yield* post(`${url}/answer`, { token: Redacted.value(token), body: {} })
      assert.strictEqual(first.status, 200)
      const replay = yield* post(`${url}/answer`, { token: Redacted.value(token), body: {} })
      // verify passed (it never consumes), the work ran, the settle was refused: nothing goes out
      assert.strictEqual(replay.status, 402)
      assert.notInclude(replay.text, "42")
      assert.deepStrictEqual(
        [replay.paymentResponse?.success, replay.paymentResponse?.errorReason],
        [false, PaymentError.TOKEN_ALREADY_USED_CODE]
      )
      assert.notInclude(replay.text, Redacted.value(token))
      assert.strictEqual(fake.ledger.settlements.length, 1)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 18)

      // the same refusal, as the pipeline types it
      const paywall = Paywall.make({ planId: PLAN, agentId: AGENT, endpoint: `${url}/answer`, httpVerb: "POST" })
      const paymentRequired = JSON.parse(
        fake.requests.filter((r) => r.route === "settle")[0].body
      ).paymentRequired
      const failed = yield* Effect.flip(
        Paywall.settle(paywall, { paymentRequired, token, credits: 2 }).pipe(
          Effect.provide(yield* liveFacilitator(fake))
        )
      )
      assert.strictEqual(failed._tag, "SettleFailed")
      assert.strictEqual(failed.reason, "Rejected")
      assert.strictEqual(
        failed.cause?._tag === "FacilitatorError" ? failed.cause.reason : undefined,
        "TokenAlreadyUsed"
      )
      assert.isTrue(PaymentError.isTokenAlreadyUsed(failed))
      assert.notInclude(failed.message, Redacted.value(token))
    }))

  it.scopedLive("X402Client given a spent token fails with TokenAlreadyUsed, not a generic settlement failure", () =>
    Effect.gen(function*() {
      const { fake, url } = yield* setup()
      const live = yield* liveSubscriber(fake)
      // A subscriber that hands out one v3 token over and over: what a client that cached a
      // single-use token would send.
      const first = yield* live.accessToken({ planId: PLAN, agentId: AGENT })
      fake.ledger.addPlan({ planId: PLAN, agentId: AGENT, singleUseTokens: true })
      const stuck = yield* live.accessToken({ planId: PLAN, agentId: AGENT })
      assert.strictEqual(Subscriber.accessTokenVersion(first), 2)
      const client = yield* X402Client.make({ cacheTokens: false }).pipe(
        Effect.provideService(Subscriber.Subscriber, { ...live, accessToken: () => Effect.succeed(stuck) }),
        Effect.provide(FetchHttpClient.layer)
      )
      assert.strictEqual((yield* client.execute(ask(`${url}/answer`))).response.status, 200)
      const error = yield* Effect.flip(client.execute(ask(`${url}/answer`)))
      assert.strictEqual(error._tag, "X402ClientError")
      if (error._tag === "X402ClientError") {
        assert.strictEqual(error.reason, "TokenAlreadyUsed")
        assert.match(error.message, /already spent/)
        assert.notInclude(error.message, Redacted.value(stuck))
      }
      assert.strictEqual(fake.ledger.settlements.length, 1)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 18)
    }))

  it.scopedLive("a server that advertises another origin's resource gets no bound token", () =>
    Effect.gen(function*() {
      const { fake, url } = yield* setup({ endpoint: "https://other-seller.example/answer" })
      const client = yield* payingClient(fake, { tokenVersion: 3 })
      const error = yield* Effect.flip(client.execute(ask(`${url}/answer`)))
      assert.strictEqual(error._tag === "X402ClientError" ? error.reason : error._tag, "NoAcceptablePlan")
      assert.strictEqual(fake.calls("permissions"), 0)
      assert.strictEqual(fake.ledger.settlements.length, 0)
    }))

  it.scopedLive("a v3 token bound to one endpoint is refused at another, and nothing is burned", () =>
    Effect.gen(function*() {
      const { fake, url } = yield* setup()
      const subscriber = yield* liveSubscriber(fake)
      const token = yield* subscriber.accessToken({
        planId: PLAN,
        agentId: AGENT,
        tokenVersion: 3,
        resource: `${url}/elsewhere`,
        httpVerb: "POST"
      })
      const answer = yield* post(`${url}/answer`, { token: Redacted.value(token), body: {} })
      assert.strictEqual(answer.status, 402)
      assert.strictEqual(fake.calls("settle"), 0)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 20)
    }))
})

describe("delegation spending limits over the wire", () => {
  const withDelegation = (
    fake: FakeNevermined.FakeNevermined.Service,
    limits: { readonly spendingLimitCents: number; readonly durationSecs?: number; readonly maxTransactions?: number }
  ) =>
    Effect.gen(function*() {
      const subscriber = yield* liveSubscriber(fake)
      const created = yield* subscriber.createDelegation({
        provider: "erc4337",
        currency: "usdc",
        durationSecs: limits.durationSecs ?? 3600,
        spendingLimitCents: limits.spendingLimitCents,
        ...(limits.maxTransactions !== undefined ? { maxTransactions: limits.maxTransactions } : {})
      })
      const client = yield* payingClient(fake, { delegationId: created.delegationId })
      return { subscriber, client, delegationId: created.delegationId }
    })

  const listed = (subscriber: Subscriber.Subscriber.Service, delegationId: string) =>
    Effect.map(subscriber.listDelegations(), (list) => list.delegations.find((d) => d.delegationId === delegationId)!)

  const refusal = (error: unknown) =>
    error instanceof X402Client.X402ClientError ? [error.reason, error.detail] : ["not a client error", String(error)]

  it.scopedLive("amount: spendingLimitCents at pricePerCredit; verify refuses past it, the listing adds up", () =>
    Effect.gen(function*() {
      const { fake, url } = yield* setup()
      fake.ledger.addPlan({ planId: PLAN, agentId: AGENT, pricePerCredit: "0.5" })
      // 2 credits a call at 50 cents: 100 cents a call, 250 cents allowed
      const { client, delegationId, subscriber } = yield* withDelegation(fake, { spendingLimitCents: 250 })
      yield* client.execute(ask(`${url}/answer`))
      yield* client.execute(ask(`${url}/answer`))
      const third = yield* Effect.flip(client.execute(ask(`${url}/answer`)))
      const [reason, detail] = refusal(third)
      assert.strictEqual(reason, "PaymentRefused")
      assert.include(detail, TestFacilitator.DelegationRefusal.spendingLimit)

      const delegation = yield* listed(subscriber, delegationId)
      assert.deepStrictEqual(
        [delegation.amountSpentCents, delegation.remainingBudgetCents, delegation.transactionCount],
        ["200", "50", 2]
      )
      assert.strictEqual(fake.ledger.settlements.length, 2)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 16)
    }))

  it.scopedLive("number of transactions: maxTransactions settles, then verify refuses", () =>
    Effect.gen(function*() {
      const { fake, url } = yield* setup()
      const { client, delegationId, subscriber } = yield* withDelegation(fake, {
        spendingLimitCents: 10_000,
        maxTransactions: 2
      })
      yield* client.execute(ask(`${url}/answer`))
      yield* client.execute(ask(`${url}/answer`))
      const [reason, detail] = refusal(yield* Effect.flip(client.execute(ask(`${url}/answer`))))
      assert.strictEqual(reason, "PaymentRefused")
      assert.include(detail, TestFacilitator.DelegationRefusal.maxTransactions)
      const delegation = yield* listed(subscriber, delegationId)
      assert.deepStrictEqual(
        [delegation.transactionCount, delegation.maxTransactions, delegation.amountSpentCents],
        [2, 2, "0"]
      )
      assert.strictEqual(fake.ledger.settlements.length, 2)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 16)
    }))

  it.scopedLive("duration: past durationSecs the delegation pays nothing more, and the listing says Expired", () =>
    Effect.gen(function*() {
      const { fake, url } = yield* setup()
      let now = Date.now()
      fake.ledger.now = () => now
      const { client, delegationId, subscriber } = yield* withDelegation(fake, {
        spendingLimitCents: 10_000,
        durationSecs: 60
      })
      yield* client.execute(ask(`${url}/answer`))
      now += 60_000
      const [reason, detail] = refusal(yield* Effect.flip(client.execute(ask(`${url}/answer`))))
      assert.strictEqual(reason, "PaymentRefused")
      assert.include(detail, TestFacilitator.DelegationRefusal.expired)
      const delegation = yield* listed(subscriber, delegationId)
      assert.deepStrictEqual([delegation.status, delegation.transactionCount], ["Expired", 1])
      assert.strictEqual(fake.ledger.settlements.length, 1)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 18)
    }))

  it.scopedLive("settle refuses past the limit when a verify passed before another call spent the budget", () =>
    Effect.gen(function*() {
      const { fake, url } = yield* setup()
      const { delegationId, subscriber } = yield* withDelegation(fake, {
        spendingLimitCents: 10_000,
        maxTransactions: 1
      })
      const token = yield* subscriber.accessToken({ planId: PLAN, agentId: AGENT, delegationId })
      // Two calls verified on one token before either settles: only the first may settle.
      const facilitator = yield* liveFacilitator(fake)
      const paywall = Paywall.make({ planId: PLAN, agentId: AGENT, endpoint: `${url}/answer`, httpVerb: "POST" })
      const paymentRequired = JSON.parse(JSON.stringify(
        (yield* post(`${url}/answer`, { body: {} })).paymentRequired
      ))
      const results = yield* Effect.all(
        [0, 1].map(() => Effect.either(Paywall.settle(paywall, { paymentRequired, token, credits: 2 }))),
        { concurrency: 1 }
      ).pipe(Effect.provide(facilitator))
      assert.isTrue(Either.isRight(results[0]))
      assert.isTrue(Either.isLeft(results[1]))
      if (Either.isLeft(results[1])) {
        assert.strictEqual(results[1].left.reason, "Rejected")
        assert.strictEqual(results[1].left.settlement?.errorReason, TestFacilitator.DelegationRefusal.maxTransactions)
      }
      assert.strictEqual(fake.ledger.settlements.length, 1)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 18)
    }))
})
