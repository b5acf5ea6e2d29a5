// Code that pays (X402Client over the in-memory Subscriber) tested with no HTTP at all: the paid
// server is a WebPaywall handler on the TestFacilitator ledger, reached through FetchHttpClient's
// `Fetch` service.
import { WebPaywall, X402Client } from "@effect-x402/core"
import { Subscriber } from "@effect-x402/core/Subscriber"
import { TestFacilitator, TestSubscriber } from "@effect-x402/testing"
import { FetchHttpClient, HttpClientRequest } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"

const setup = (planId = "plan-1") => {
  const { ledger, subscriber } = TestFacilitator.seeded({ planId, credits: 5 })
  const server = WebPaywall.toFetchHandler({ planId, credits: 2 }, TestFacilitator.layer(ledger))(
    () => Response.json({ answer: 42 })
  )
  const layer = X402Client.layer().pipe(
    Layer.provideMerge(TestSubscriber.layer(ledger, subscriber)),
    Layer.provideMerge(FetchHttpClient.layer),
    Layer.provide(Layer.succeed(FetchHttpClient.Fetch, (input, init) => server(new Request(input, init))))
  )
  return { ledger, subscriber, layer }
}

describe("TestSubscriber", () => {
  it.effect("lets X402Client pay on the in-memory ledger: 402 → token → paid answer, 2 credits burned", () => {
    const { layer, ledger, subscriber } = setup()
    return Effect.gen(function*() {
      const { paid, receipt, response } = yield* X402Client.execute(HttpClientRequest.get("http://agent.test/ask"))
      assert.isTrue(paid)
      assert.deepStrictEqual(yield* response.json, { answer: 42 })
      assert(receipt._tag === "Some")
      assert.strictEqual(receipt.value.creditsRedeemed, "2")
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 3)
      const balance = yield* Effect.flatMap(Subscriber, (s) => s.balance("plan-1"))
      assert.deepStrictEqual(balance, { planId: "plan-1", holderAddress: subscriber, balance: "3", isSubscriber: true })
    }).pipe(Effect.provide(layer))
  })

  it.effect("refuses a token for a plan the ledger does not know, as the backend does", () => {
    const { ledger, subscriber } = TestFacilitator.seeded({ planId: "plan-1", credits: 1 })
    const service = TestSubscriber.make(ledger, subscriber)
    return Effect.gen(function*() {
      const error = yield* Effect.flip(service.accessToken({ planId: "plan-unknown" }))
      assert.strictEqual(error.status, 404)
      const token = yield* service.accessToken({ planId: "plan-1" })
      assert.strictEqual(ledger.tokens.get(Redacted.value(token))?.subscriber, subscriber)
    })
  })

  it.effect("creates and lists delegations; `accessible` leaves out revoked ones", () => {
    const { ledger, subscriber } = TestFacilitator.seeded({ planId: "plan-1", credits: 1 })
    const service = TestSubscriber.make(ledger, subscriber)
    return Effect.gen(function*() {
      const kept = yield* service.createDelegation({
        provider: "erc4337",
        spendingLimitCents: 10_000,
        durationSecs: 3600,
        currency: "USDC"
      })
      const revoked = yield* service.createDelegation({
        provider: "stripe",
        spendingLimitCents: 500,
        durationSecs: 3600,
        currency: "USD"
      })
      ledger.revokeDelegation(revoked.delegationId)
      const all = yield* service.listDelegations()
      assert.deepStrictEqual(all.delegations.map((d) => d.delegationId), [kept.delegationId, revoked.delegationId])
      const usable = yield* service.listDelegations({ accessible: true })
      assert.deepStrictEqual(usable.delegations.map((d) => d.delegationId), [kept.delegationId])
    })
  })
})
