// The paid Hono app served by @hono/node-server on 127.0.0.1, charging through the live Nevermined
// layer against FakeNevermined on loopback, called the way its users call it: plain fetch with a
// token, and X402Client paying on its own.
import { Nevermined, Subscriber, X402, X402Client } from "@effect-x402/core"
import { FakeNevermined } from "@effect-x402/testing"
import { FetchHttpClient, HttpClientRequest } from "@effect/platform"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { serve } from "@hono/node-server"
import { Effect, Either, Layer } from "effect"
import type { AddressInfo } from "node:net"
import { paid } from "../src/app.js"

const PLAN = "plan-hono"

let fake: Awaited<ReturnType<typeof FakeNevermined.start>>
let server: ReturnType<typeof serve>
let agent: ReturnType<typeof paid>
let base: string

beforeAll(async () => {
  fake = await FakeNevermined.start()
  fake.ledger.addPlan({ planId: PLAN })
  fake.ledger.fund(fake.subscriber, PLAN, 20)
  agent = paid(
    PLAN,
    Nevermined.layer({ apiKey: fake.apiKey, backendUrl: fake.url }).pipe(Layer.provide(FetchHttpClient.layer))
  )
  await new Promise<void>((resolve) => {
    server = serve({ fetch: agent.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve())
  })
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve))
  await agent.dispose()
  await fake.close()
})

const token = () => fake.ledger.mintToken({ planId: PLAN, subscriber: fake.subscriber })
const balance = () => fake.ledger.balance(fake.subscriber, PLAN)
const receiptOf = (response: Response) =>
  Either.getOrThrow(X402.SettleResponseHeader.decodeEither(response.headers.get("payment-response") ?? ""))

describe("a paid Hono app (WebPaywall route table)", () => {
  it("serves unlisted routes free, without asking the facilitator", async () => {
    const settledBefore = fake.ledger.settlements.length
    const response = await fetch(`${base}/health`)
    assert.strictEqual(response.status, 200)
    assert.deepStrictEqual(await response.json(), { ok: true })
    assert.isNull(response.headers.get("payment-required"))
    assert.strictEqual(fake.ledger.settlements.length, settledBefore)
  })

  it("answers 402 with payment-required for the route's plan and price, then serves the paid call", async () => {
    const unpaid = await fetch(`${base}/weather/lisbon`)
    assert.strictEqual(unpaid.status, 402)
    assert.notInclude(await unpaid.text(), "Sunny")
    const required = Either.getOrThrow(
      X402.PaymentRequiredHeader.decodeEither(unpaid.headers.get("payment-required") ?? "")
    )
    assert.strictEqual(required.accepts[0].planId, PLAN)
    assert.strictEqual(required.resource.url, `${base}/weather/lisbon`)

    const before = balance()
    const response = await fetch(`${base}/weather/lisbon`, { headers: { "payment-signature": token() } })
    assert.strictEqual(response.status, 200)
    assert.deepStrictEqual(await response.json(), { city: "lisbon", forecast: "Sunny, 21°C" })
    assert.strictEqual(receiptOf(response).creditsRedeemed, "1")
    assert.strictEqual(balance(), before - 1)
  })

  it("settles the handler's own price (X-Credits-To-Charge), and removes that header from the answer", async () => {
    const before = balance()
    const response = await fetch(`${base}/reports`, {
      method: "POST",
      headers: { "payment-signature": token(), "content-type": "application/json" },
      body: JSON.stringify({ days: 3 })
    })
    assert.strictEqual(response.status, 200)
    assert.lengthOf((await response.json()).days, 3)
    assert.isNull(response.headers.get("x-credits-to-charge"))
    assert.strictEqual(receiptOf(response).creditsRedeemed, "3")
    assert.strictEqual(balance(), before - 3)
  })

  it("no spelling of a paid path reaches its handler unpaid", async () => {
    const settledBefore = fake.ledger.settlements.length
    const variants = [
      "/weather/lisbon/",
      "//weather/lisbon",
      "/Weather/lisbon",
      "/WEATHER/Lisbon",
      "/weather/./lisbon",
      "/x/../weather/lisbon",
      "/weather%2Flisbon",
      "/%77eather/lisbon",
      "/weather/lisbon?city=porto",
      "/weather/lisbon#x"
    ]
    for (const path of variants) {
      for (const method of ["GET", "HEAD"]) {
        const response = await fetch(`${base}${path}`, { method })
        const body = await response.text()
        assert.notInclude(body, "Sunny", `${method} ${path} served the paid output`)
        assert.notStrictEqual(response.status, 200, `${method} ${path} answered 200 unpaid`)
      }
    }
    assert.strictEqual(fake.ledger.settlements.length, settledBefore)
  })

  it("a refused token gets 402, runs nothing and charges nothing", async () => {
    const before = balance()
    const response = await fetch(`${base}/weather/porto`, { headers: { "payment-signature": "not-a-token" } })
    assert.strictEqual(response.status, 402)
    assert.notInclude(await response.text(), "Sunny")
    assert.strictEqual(balance(), before)
  })

  it.effect("X402Client pays on its own: 402 → token → paid answer with its receipt", () =>
    Effect.gen(function*() {
      const subscriber = yield* Subscriber.make({ apiKey: fake.subscriberApiKey, backendUrl: fake.url })
      const client = yield* X402Client.make().pipe(Effect.provideService(Subscriber.Subscriber, subscriber))
      const before = balance()
      const { paid: wasPaid, receipt, response } = yield* client.execute(HttpClientRequest.get(`${base}/weather/oslo`))
      assert.isTrue(wasPaid)
      assert.strictEqual(response.status, 200)
      assert.strictEqual((yield* response.json as Effect.Effect<{ city: string }, unknown>).city, "oslo")
      assert(receipt._tag === "Some")
      assert.strictEqual(receipt.value.creditsRedeemed, "1")
      assert.strictEqual(balance(), before - 1)
    }).pipe(Effect.provide(FetchHttpClient.layer), Effect.orDie))
})
