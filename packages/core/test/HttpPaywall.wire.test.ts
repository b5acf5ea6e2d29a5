// Over the wire: a Node HTTP server protected by HttpPaywall, the live Nevermined facilitator
// talking to FakeNevermined, and X402Client paying as the fake's subscriber.
import { HttpPaywall, PaymentContext } from "@effect-x402/core"
import { FakeNevermined } from "@effect-x402/testing"
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpClientRequest,
  HttpRouter,
  HttpServerResponse
} from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Schema } from "effect"
import { liveFacilitator, payingClient, post, serve, serveLayer } from "./HttpPaywall.fixtures.js"

const PLAN = "plan-1"
const AGENT = "agent-1"

const seed = (fake: FakeNevermined.FakeNevermined.Service, credits = 10) => {
  fake.ledger.addPlan({ planId: PLAN, agentId: AGENT })
  fake.ledger.fund(fake.subscriber, PLAN, credits)
}

const ask = (url: string) => HttpClientRequest.bodyUnsafeJson(HttpClientRequest.post(url), { question: "6 x 7" })

const router = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/answer",
    Effect.flatMap(
      PaymentContext.PaymentContext,
      (payment) => HttpServerResponse.json({ answer: 42, payer: payment.payer })
    )
      .pipe(HttpPaywall.middleware({ planId: PLAN, agentId: AGENT, credits: 2 }))
  ),
  HttpRouter.post(
    "/missing",
    HttpServerResponse.text("no such thing", { status: 404 }).pipe(
      HttpPaywall.middleware({ planId: PLAN, agentId: AGENT })
    )
  ),
  HttpRouter.get("/ping", HttpServerResponse.text("pong"))
)

describe("HttpPaywall over the wire: X402Client → Node server → FakeNevermined", () => {
  it.scopedLive("HttpApp: pays once, the receipt matches the ledger, the token is reused", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const url = yield* serve(router).pipe(Effect.provide(yield* liveFacilitator(fake)))
      const client = yield* payingClient(fake)

      const paid = yield* client.execute(ask(`${url}/answer`))
      assert.strictEqual(paid.response.status, 200)
      assert.deepStrictEqual(yield* paid.response.json, { answer: 42, payer: fake.subscriber })
      assert.isTrue(paid.paid)
      const receipt = Option.getOrThrow(paid.receipt)
      assert.strictEqual(receipt.success, true)
      assert.strictEqual(receipt.transactionHash, fake.ledger.settlements[0].transaction)
      assert.strictEqual(receipt.creditsRedeemed, "2")
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 8)
      // the settle carried the agent request id verify returned
      assert.match(fake.ledger.settlements[0].agentRequestId ?? "", /^areq_/)

      const again = yield* client.execute(ask(`${url}/answer`))
      assert.strictEqual(again.response.status, 200)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 6)
      assert.strictEqual(fake.calls("permissions"), 1)
      assert.strictEqual(fake.calls("verify"), 2)
      assert.strictEqual(fake.calls("settle"), 2)

      // free routes stay free
      const ping = yield* client.execute(HttpClientRequest.get(`${url}/ping`))
      assert.isFalse(ping.paid)
      assert.strictEqual(yield* ping.response.text, "pong")
    }))

  it.scopedLive("the 402, the verify and settle bodies and the receipt carry exactly the Python SDK's fields", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const url = yield* serve(router).pipe(Effect.provide(yield* liveFacilitator(fake)))
      const port = new URL(url).port
      // The exact PaymentRequired a Python seller builds for this route: no resource.mimeType, no
      // resource.description (docs/protocol.md §2), the request's URL and verb bound in.
      const expected = {
        x402Version: 2,
        resource: { url: `http://127.0.0.1:${port}/answer` },
        accepts: [{
          scheme: "nvm:erc4337",
          network: "eip155:84532",
          planId: PLAN,
          extra: { version: "1", agentId: AGENT, httpVerb: "POST" }
        }],
        extensions: {}
      }
      const unpaid = yield* post(`${url}/answer`, { body: {} })
      assert.strictEqual(unpaid.status, 402)
      const header = unpaid.headers["payment-required"]
      assert.strictEqual(Buffer.from(header, "base64").toString("utf8"), JSON.stringify(expected))

      const client = yield* payingClient(fake)
      const paid = yield* client.execute(ask(`${url}/answer`))
      assert.strictEqual(paid.response.status, 200)
      const [verify, settle] = fake.requests.filter((r) => r.route === "verify" || r.route === "settle")
      const token = JSON.parse(verify.body).x402AccessToken
      assert.strictEqual(
        verify.body,
        JSON.stringify({ paymentRequired: expected, x402AccessToken: token, maxAmount: "2" })
      )
      const agentRequestId = fake.ledger.settlements[0].agentRequestId
      assert.strictEqual(
        settle.body,
        JSON.stringify({ paymentRequired: expected, x402AccessToken: token, maxAmount: "2", agentRequestId })
      )
      // The plain-HTTP receipt is the facilitator's settle answer, nulls left out.
      const receipt = JSON.parse(
        Buffer.from(paid.response.headers["payment-response"], "base64").toString("utf8")
      )
      assert.deepStrictEqual(receipt, {
        success: true,
        payer: fake.subscriber,
        transaction: fake.ledger.settlements[0].transaction,
        network: "eip155:84532",
        creditsRedeemed: "2",
        remainingBalance: "8"
      })
    }))

  it.scopedLive("HttpApp: an answer >= 400 is paid for with a token but never settled", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const url = yield* serve(router).pipe(Effect.provide(yield* liveFacilitator(fake)))
      const client = yield* payingClient(fake)
      const missing = yield* client.execute(ask(`${url}/missing`))
      assert.strictEqual(missing.response.status, 404)
      assert.isTrue(Option.isNone(missing.receipt))
      assert.strictEqual(fake.calls("verify"), 1)
      assert.strictEqual(fake.calls("settle"), 0)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 10)
    }))

  it.scopedLive("HttpApp: facilitator trouble answers 502; a failed settlement withholds the output", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const url = yield* serve(router).pipe(Effect.provide(yield* liveFacilitator(fake)))
      const client = yield* payingClient(fake)

      fake.faults.always("verify", FakeNevermined.Fault.malformedJson)
      const verify = yield* client.execute(ask(`${url}/answer`))
      assert.strictEqual(verify.response.status, 502)
      assert.strictEqual(((yield* verify.response.json) as { error: string }).error, "Bad Gateway")
      fake.faults.clear()

      // the backend refuses the settlement (a 4xx): the client learns it from the receipt
      fake.faults.next("settle", FakeNevermined.Fault.status(400, "BCK.X402.0005"))
      const settle = yield* Effect.flip(client.execute(ask(`${url}/answer`)))
      if (settle._tag !== "X402ClientError") return assert.fail(`unexpected ${settle._tag}`)
      assert.strictEqual(settle.reason, "SettlementFailed")
      assert.strictEqual(settle.status, 402)
      assert.strictEqual(settle.receipt?.success, false)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 10)
    }))

  class Api extends HttpApi.make("agent").add(
    HttpApiGroup.make("tools").add(
      HttpApiEndpoint.post("answer", "/answer")
        .addSuccess(Schema.Struct({ answer: Schema.Number, payer: Schema.optional(Schema.String) }))
        .middleware(HttpPaywall.Paid)
    )
  ) {}

  const ToolsLive = HttpApiBuilder.group(
    Api,
    "tools",
    (handlers) =>
      handlers.handle("answer", () =>
        Effect.gen(function*() {
          const payment = yield* PaymentContext.PaymentContext
          yield* payment.chargeCredits(3)
          return { answer: 42, payer: payment.payer }
        }))
  )

  it.scopedLive("HttpApi: the endpoint's handler reads the payment and sets the amount", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const url = yield* serveLayer(
        HttpApiBuilder.serve().pipe(
          Layer.provide(HttpApiBuilder.api(Api)),
          Layer.provide(ToolsLive),
          Layer.provide(HttpPaywall.layerHttpApi({ planId: PLAN, agentId: AGENT, credits: 2 })),
          Layer.provide(yield* liveFacilitator(fake))
        )
      )
      const client = yield* payingClient(fake)
      const paid = yield* client.execute(ask(`${url}/answer`))
      assert.strictEqual(paid.response.status, 200)
      assert.deepStrictEqual(yield* paid.response.json, { answer: 42, payer: fake.subscriber })
      const receipt = Option.getOrThrow(paid.receipt)
      assert.strictEqual(receipt.creditsRedeemed, "3")
      assert.strictEqual(receipt.transactionHash, fake.ledger.settlements[0].transaction)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 7)
      // verified for the route's price, settled for the handler's
      const bodies = fake.requests.filter((r) => r.route === "verify" || r.route === "settle").map((r) =>
        JSON.parse(r.body).maxAmount
      )
      assert.deepStrictEqual(bodies, ["2", "3"])
    }))
})
