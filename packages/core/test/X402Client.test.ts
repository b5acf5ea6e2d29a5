import { Subscriber, X402, X402Client } from "@effect-x402/core"
import { FakeNevermined } from "@effect-x402/testing"
import { FetchHttpClient, HttpClient, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer, Option } from "effect"
import { AGENT, paidAgent, PLAN, seed, subscriber } from "./Nevermined.fixtures.js"

const { Fault } = FakeNevermined

/** The paying client of the fake's subscriber, over fetch. */
const payingClient = (fake: FakeNevermined.FakeNevermined.Service, options: X402Client.Options = {}) =>
  Effect.gen(function*() {
    const service = yield* subscriber(fake)
    return yield* X402Client.make(options).pipe(
      Effect.provideService(Subscriber.Subscriber, service),
      Effect.provide(yield* Layer.build(FetchHttpClient.layer))
    )
  })

const post = (url: string) => HttpClientRequest.bodyUnsafeJson(HttpClientRequest.post(url), { question: "6 x 7" })

describe("X402Client end to end: X402Client + Subscriber → paid agent → FakeNevermined", () => {
  it.scoped("pays for a call over plain HTTP x402, and the receipt matches the ledger", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake, 10)
      const agent = yield* paidAgent(fake, { credits: 2 })
      const client = yield* payingClient(fake)

      const paid = yield* client.execute(post(`${agent.url}/tool`))
      assert.strictEqual(paid.response.status, 200)
      assert.deepStrictEqual(yield* paid.response.json, { answer: 42 })
      assert.isTrue(paid.paid)
      const receipt = Option.getOrThrow(paid.receipt)
      const settlement = fake.ledger.settlements[0]
      assert.strictEqual(fake.ledger.settlements.length, 1)
      assert.deepStrictEqual(receipt, {
        success: true,
        transactionHash: settlement.transaction,
        network: "eip155:84532",
        creditsRedeemed: "2",
        remainingBalance: "8"
      })
      assert.strictEqual(settlement.subscriber, fake.subscriber)
      assert.strictEqual(settlement.credits, 2)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 8)
      // One unpaid call, one paid retry; one token minted; verify and settle once each.
      assert.strictEqual(agent.calls(), 2)
      assert.strictEqual(fake.calls("permissions"), 1)
      assert.strictEqual(fake.calls("verify"), 1)
      assert.strictEqual(fake.calls("settle"), 1)
      // The paid retry carried the minted token, which is the one the ledger settled.
      const token = JSON.parse(fake.requests.find((r) => r.route === "settle")!.body).x402AccessToken
      assert.deepStrictEqual(fake.ledger.tokens.get(token), {
        planId: PLAN,
        subscriber: fake.subscriber,
        agentId: AGENT
      })
    }))

  it.scoped("pays for a call in the AgentCore form (status 200, isError result, payment-required header)", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake, 10)
      const agent = yield* paidAgent(fake, { credits: 3 })
      const client = yield* payingClient(fake)
      const paid = yield* client.execute(post(`${agent.url}/mcp`))
      assert.isTrue(paid.paid)
      const body = (yield* paid.response.json) as { result: { _meta: { x402: X402.MetaX402 } } }
      const receipt = Option.getOrThrow(paid.receipt)
      assert.strictEqual(receipt.transactionHash, fake.ledger.settlements[0].transaction)
      assert.strictEqual(receipt.creditsRedeemed, "3")
      assert.strictEqual(body.result._meta.x402.transaction, receipt.transactionHash)
      assert.strictEqual(agent.calls(), 2)
    }))

  it.scoped("the token is cached per plan: later calls pay without minting again", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake, 10)
      const agent = yield* paidAgent(fake, { credits: 1 })
      const client = yield* payingClient(fake)
      yield* Effect.all(Array.from({ length: 5 }, () => client.execute(post(`${agent.url}/tool`))), {
        concurrency: "unbounded"
      })
      yield* client.execute(post(`${agent.url}/tool`))
      assert.strictEqual(fake.calls("permissions"), 1)
      assert.strictEqual(fake.ledger.settlements.length, 6)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 4)
    }))

  it.scoped("an answer that asks for nothing passes through untouched", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const agent = yield* paidAgent(fake)
      const client = yield* payingClient(fake)
      const free = yield* client.execute(post(`${agent.url}/free`))
      assert.isFalse(free.paid)
      assert.isTrue(Option.isNone(free.receipt))
      assert.deepStrictEqual(yield* free.response.json, { free: true })
      assert.strictEqual(fake.requests.length, 0)
    }))

  it.scoped("the client works as a plain HttpClient too", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake, 10)
      const agent = yield* paidAgent(fake)
      const { client } = yield* payingClient(fake)
      const response = yield* client.pipe(HttpClient.filterStatusOk).execute(post(`${agent.url}/tool`))
      const receipt = Either.getOrThrow(X402Client.receipt(response))
      assert.isTrue(Option.getOrThrow(receipt).success)
      assert.deepStrictEqual(yield* response.json, { answer: 42 })
    }))
})

describe("X402Client refusals", () => {
  it.scoped("a refusal after paying is a typed error with the reason; never a second paid retry", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake, 1)
      const agent = yield* paidAgent(fake, { credits: 5 })
      const client = yield* payingClient(fake)
      const error = yield* Effect.flip(client.execute(post(`${agent.url}/tool`)))
      assert.strictEqual(error._tag, "X402ClientError")
      if (error._tag !== "X402ClientError") return
      assert.strictEqual(error.reason, "PaymentRefused")
      assert.strictEqual(error.status, 402)
      assert.strictEqual(error.planId, PLAN)
      assert.include(error.detail, "insufficient_funds")
      assert.strictEqual(agent.calls(), 2)
      assert.strictEqual(fake.ledger.settlements.length, 0)

      // The refused token is forgotten: the next call mints a fresh one.
      yield* Effect.flip(client.execute(post(`${agent.url}/tool`)))
      assert.strictEqual(fake.calls("permissions"), 2)
      assert.strictEqual(agent.calls(), 4)
    }))

  it.scoped("a failed settlement is SettlementFailed with the receipt", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake, 10)
      const agent = yield* paidAgent(fake)
      const client = yield* payingClient(fake)
      fake.faults.next(
        "settle",
        Fault.wrongShape({
          success: false,
          errorReason: "insufficient_funds",
          transaction: "",
          network: "eip155:84532"
        })
      )
      const error = yield* Effect.flip(client.execute(post(`${agent.url}/tool`)))
      assert.strictEqual(error._tag, "X402ClientError")
      if (error._tag !== "X402ClientError") return
      assert.strictEqual(error.reason, "SettlementFailed")
      assert.strictEqual(error.detail, "insufficient_funds")
      assert.isFalse(error.receipt?.success)
    }))

  it.scoped("plan preference: a listed plan is paid; none listed offered is NoAcceptablePlan", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake, 10)
      fake.ledger.addPlan({ planId: "plan-2", agentId: AGENT })
      fake.ledger.fund(fake.subscriber, "plan-2", 10)
      const agent = yield* paidAgent(fake, { planIds: [PLAN, "plan-2"], credits: 1 })

      const preferring = yield* payingClient(fake, { planIds: ["plan-x", "plan-2"] })
      yield* preferring.execute(post(`${agent.url}/tool`))
      assert.strictEqual(
        JSON.parse(fake.requests.find((r) => r.route === "permissions")!.body).accepted.planId,
        "plan-2"
      )
      assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-2"), 9)

      const picky = yield* payingClient(fake, { planIds: ["plan-x"] })
      const error = yield* Effect.flip(picky.execute(post(`${agent.url}/tool`)))
      assert.strictEqual(error._tag === "X402ClientError" && error.reason, "NoAcceptablePlan")
    }))

  it.scoped("a payment-required header that does not decode is InvalidPaymentRequired", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const agent = yield* paidAgent(fake)
      const client = yield* payingClient(fake)
      const error = yield* Effect.flip(client.execute(post(`${agent.url}/broken`)))
      assert.strictEqual(error._tag === "X402ClientError" && error.reason, "InvalidPaymentRequired")
      assert.strictEqual(agent.calls(), 1)
      assert.strictEqual(fake.calls("permissions"), 0)
    }))

  it.scoped("no token to be had is TokenUnavailable, and nothing is retried against the agent", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake, 10)
      const agent = yield* paidAgent(fake)
      const client = yield* payingClient(fake)
      fake.faults.always("permissions", Fault.status(500, "BCK.X402.0042"))
      const error = yield* Effect.flip(client.execute(post(`${agent.url}/tool`)))
      assert.strictEqual(error._tag, "X402ClientError")
      if (error._tag !== "X402ClientError") return
      assert.strictEqual(error.reason, "TokenUnavailable")
      assert.strictEqual(error.cause?._tag, "FacilitatorError")
      assert.strictEqual(agent.calls(), 1)

      // Failures are not cached: once the backend recovers, the client pays.
      fake.faults.clear()
      const paid = yield* client.execute(post(`${agent.url}/tool`))
      assert.isTrue(paid.paid)
    }))

  it.effect("receipt: both header forms decode; garbage is InvalidReceipt", () =>
    Effect.gen(function*() {
      const request = HttpClientRequest.get("http://agent.example/")
      const withHeader = (value: string) =>
        HttpClientResponse.fromWeb(request, new Response("{}", { headers: { "payment-response": value } }))
      const settlement = { success: true, transaction: "0xabc", network: "eip155:84532", creditsRedeemed: "1" }
      const fromSettle = Either.getOrThrow(X402Client.receipt(withHeader(X402.SettleResponseHeader.encode(settlement))))
      assert.strictEqual(Option.getOrThrow(fromSettle).transactionHash, "0xabc")
      const fromReceipt = Either.getOrThrow(
        X402Client.receipt(withHeader(X402.ReceiptHeader.encode(X402.receiptOf(settlement))))
      )
      assert.deepStrictEqual(fromReceipt, fromSettle)
      const garbage = X402Client.receipt(withHeader("not base64!"))
      assert.isTrue(Either.isLeft(garbage) && garbage.left.reason === "InvalidReceipt")
    }))
})
