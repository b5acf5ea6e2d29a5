import { X402 } from "@effect-x402/core"
import { FakeNevermined, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"

const { Fault } = FakeNevermined

const paymentRequired = X402.paymentRequired({
  planIds: ["plan-1"],
  agentId: "agent-1",
  endpoint: "https://agent.example/mcp",
  network: "eip155:84532"
})

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: unknown
}

/** A raw request with fetch: the fake is tested on the wire, without our client. */
const send = (
  fake: FakeNevermined.FakeNevermined.Service,
  path: string,
  options: { readonly body?: unknown; readonly key?: string | null; readonly signal?: AbortSignal } = {}
) =>
  Effect.promise(async (): Promise<Answer> => {
    const key = options.key === undefined ? fake.apiKey : options.key
    const response = await fetch(fake.url + path, {
      method: options.body === undefined ? "GET" : "POST",
      headers: {
        "content-type": "application/json",
        "nevermined-version": "1.1",
        ...(key !== null ? { authorization: `Bearer ${key}` } : {})
      },
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      ...(options.signal !== undefined ? { signal: options.signal } : {})
    })
    const text = await response.text()
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: response.status, headers: response.headers, text, json }
  })

/** Like `send`, but the outcome of fetch itself (a dropped connection rejects). */
const attempt = (fake: FakeNevermined.FakeNevermined.Service, path: string, body?: unknown) =>
  Effect.either(Effect.tryPromise(() =>
    fetch(fake.url + path, {
      method: body === undefined ? "GET" : "POST",
      headers: { authorization: `Bearer ${fake.apiKey}`, "content-type": "application/json" },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {})
    }).then((r) => r.text())
  ))

const seeded = (fake: FakeNevermined.FakeNevermined.Service, credits = 10) => {
  fake.ledger.addPlan({ planId: "plan-1", agentId: "agent-1" })
  fake.ledger.fund(fake.subscriber, "plan-1", credits)
  return fake.ledger.mintToken({ planId: "plan-1", subscriber: fake.subscriber, agentId: "agent-1" })
}

describe("FakeNevermined: lifecycle", () => {
  it.scopedLive("listens on 127.0.0.1 on an ephemeral port", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      assert.match(fake.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.notStrictEqual(new URL(fake.url).port, "0")
      assert.match(fake.apiKey, /^sandbox:[\w-]+\.[\w-]+\.[\w-]+$/)
      assert.notStrictEqual(fake.apiKey, fake.subscriberApiKey)
    }))

  it.live("start/close from a script, and the port refuses connections once closed", () =>
    Effect.gen(function*() {
      const fake = yield* Effect.promise(() => FakeNevermined.start())
      const answer = yield* send(fake, "/api/v1/delegation")
      assert.strictEqual(answer.status, 200)
      // A request that will never be answered must not keep the server from stopping.
      fake.faults.next("delegationList", Fault.noAnswer())
      const hanging = fetch(`${fake.url}/api/v1/delegation`, { headers: { authorization: `Bearer ${fake.apiKey}` } })
        .then(() => "answered", () => "dropped")
      yield* Effect.promise(() => waitFor(() => fake.calls("delegationList") === 2))
      yield* Effect.promise(() => fake.close())
      assert.strictEqual(yield* Effect.promise(() => hanging), "dropped")
      const after = yield* attempt(fake, "/api/v1/delegation")
      assert.isTrue(Either.isLeft(after))
    }))

  it.scopedLive("a given ledger is served, and the same keys can be reused", () =>
    Effect.gen(function*() {
      const ledger = new TestFacilitator.Ledger({ network: "eip155:8453" })
      const apiKey = FakeNevermined.makeApiKey("0xprovider", "live")
      const fake = yield* FakeNevermined.make({ ledger, apiKey, environment: "live" })
      assert.strictEqual(fake.ledger, ledger)
      assert.strictEqual(fake.apiKey, apiKey)
      const added = fake.addAccount("0xanother")
      const answer = yield* send(fake, "/api/v1/delegation", { key: added })
      assert.strictEqual(answer.status, 200)
    }))
})

describe("FakeNevermined: authentication", () => {
  it.scopedLive("a missing or unknown Bearer key is a 401 with a backend-style body", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      for (const key of [null, "sandbox:not.a.key", fake.apiKey.toUpperCase()]) {
        const answer = yield* send(fake, "/api/v1/x402/verify", { key, body: {} })
        assert.strictEqual(answer.status, 401)
        assert.deepStrictEqual(answer.json, {
          statusCode: 401,
          code: "BCK.AUTH.0001",
          message: "Unauthorized: missing or invalid API key",
          error: "Unauthorized"
        })
      }
      assert.strictEqual(fake.calls("verify"), 3)
      assert.strictEqual(fake.ledger.calls.length, 0)
    }))
})

describe("FakeNevermined: the wire of docs/protocol.md §1", () => {
  it.scopedLive("verify and settle answer with the exact field names and string amounts", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const token = seeded(fake)
      const verify = yield* send(fake, "/api/v1/x402/verify", {
        body: { paymentRequired, x402AccessToken: token, maxAmount: "4" }
      })
      assert.strictEqual(verify.status, 200)
      assert.strictEqual(verify.headers.get("content-type"), "application/json")
      const verified = verify.json as Record<string, unknown>
      assert.deepStrictEqual(Object.keys(verified).sort(), ["agentRequestId", "isValid", "network", "payer"])
      assert.strictEqual(verified["isValid"], true)

      const settle = yield* send(fake, "/api/v1/x402/settle", {
        body: { paymentRequired, x402AccessToken: token, maxAmount: "4", agentRequestId: verified["agentRequestId"] }
      })
      const settled = settle.json as Record<string, unknown>
      assert.strictEqual(settled["success"], true)
      assert.strictEqual(settled["creditsRedeemed"], "4")
      assert.strictEqual(settled["remainingBalance"], "6")
      assert.match(String(settled["transaction"]), /^0x[0-9a-f]{64}$/)
      assert.strictEqual(settled["network"], "eip155:84532")
      assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-1"), 6)

      // The same agentRequestId cannot be settled twice.
      const again = yield* send(fake, "/api/v1/x402/settle", {
        body: { paymentRequired, x402AccessToken: token, maxAmount: "4", agentRequestId: verified["agentRequestId"] }
      })
      assert.deepStrictEqual(again.json, {
        success: false,
        errorReason: "duplicate_settlement",
        transaction: "",
        network: "eip155:84532"
      })
    }))

  it.scopedLive("v3: a bound token is minted on request; a second settle is a 409 with BCK.X402.0059", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seeded(fake)
      const as = { key: fake.subscriberApiKey }
      const accepted = {
        scheme: "nvm:erc4337",
        network: "eip155:84532",
        planId: "plan-1",
        extra: { agentId: "agent-1" }
      }
      // a binding on a v2 mint is refused, as the backend does
      const unbound = yield* send(fake, "/api/v1/x402/permissions", {
        ...as,
        body: { accepted, resource: { url: "https://agent.example/mcp" }, httpVerb: "POST" }
      })
      assert.strictEqual(unbound.status, 400)
      assert.strictEqual((unbound.json as { code: string }).code, "BCK.X402.0013")

      const minted = yield* send(fake, "/api/v1/x402/permissions", {
        ...as,
        body: { accepted, resource: { url: "https://agent.example/mcp" }, httpVerb: "POST", tokenVersion: 3 }
      })
      const token = (minted.json as { accessToken: string }).accessToken
      const decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8"))
      assert.isString(decoded.payload.authorization.nonce, "a v3 token carries its nonce")
      const bound = X402.paymentRequired({
        planIds: ["plan-1"],
        agentId: "agent-1",
        endpoint: "https://agent.example/mcp",
        httpVerb: "POST",
        network: "eip155:84532"
      })
      const body = { paymentRequired: bound, x402AccessToken: token, maxAmount: "1" }
      // verify checks the binding and never consumes
      const wrongVerb = yield* send(fake, "/api/v1/x402/verify", {
        body: {
          ...body,
          paymentRequired: {
            ...bound,
            accepts: [{ ...bound.accepts[0], extra: { version: "1", agentId: "agent-1", httpVerb: "GET" } }]
          }
        }
      })
      assert.deepStrictEqual(wrongVerb.json, { isValid: false, invalidReason: "invalid_payment_requirements" })
      for (let i = 0; i < 2; i++) {
        assert.strictEqual(
          ((yield* send(fake, "/api/v1/x402/verify", { body })).json as { isValid: boolean }).isValid,
          true
        )
      }
      const first = yield* send(fake, "/api/v1/x402/settle", { body })
      assert.strictEqual((first.json as { success: boolean }).success, true)
      const second = yield* send(fake, "/api/v1/x402/settle", { body })
      assert.strictEqual(second.status, 409)
      assert.strictEqual((second.json as { code: string }).code, TestFacilitator.TOKEN_ALREADY_USED)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-1"), 9)
    }))

  it.scopedLive("delegations: maxTransactions is taken, the listing counts spending, accessible=true filters", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seeded(fake)
      fake.ledger.addPlan({ planId: "plan-1", agentId: "agent-1", pricePerCredit: "0.1" })
      const as = { key: fake.subscriberApiKey }
      const created = yield* send(fake, "/api/v1/delegation/create", {
        ...as,
        body: { provider: "erc4337", spendingLimitCents: 100, durationSecs: 3600, currency: "usdc", maxTransactions: 1 }
      })
      const delegationId = (created.json as { delegationId: string }).delegationId
      const minted = yield* send(fake, "/api/v1/x402/permissions", {
        ...as,
        body: {
          accepted: { scheme: "nvm:erc4337", network: "eip155:84532", planId: "plan-1", extra: { agentId: "agent-1" } },
          delegationConfig: { delegationId }
        }
      })
      const token = (minted.json as { accessToken: string }).accessToken
      const body = { paymentRequired, x402AccessToken: token, maxAmount: "3" }
      assert.strictEqual(
        ((yield* send(fake, "/api/v1/x402/settle", { body })).json as { success: boolean }).success,
        true
      )
      assert.deepStrictEqual(
        (yield* send(fake, "/api/v1/x402/verify", { body })).json,
        { isValid: false, invalidReason: TestFacilitator.DelegationRefusal.maxTransactions }
      )
      const list = (yield* send(fake, "/api/v1/delegation", as)).json as { delegations: Array<Record<string, unknown>> }
      const listed = list.delegations[0]
      assert.deepStrictEqual(
        [
          listed["amountSpentCents"],
          listed["remainingBudgetCents"],
          listed["transactionCount"],
          listed["maxTransactions"]
        ],
        ["30", "70", 1, 1]
      )
      const usable = (yield* send(fake, "/api/v1/delegation?accessible=true", as)).json as {
        delegations: Array<unknown>
      }
      assert.deepStrictEqual(usable.delegations, [])
    }))

  it.scopedLive("requests of the wrong shape are a 400: maxAmount must be a decimal string", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const token = seeded(fake)
      for (
        const body of [
          { paymentRequired, x402AccessToken: token, maxAmount: 1 },
          { paymentRequired, x402AccessToken: token, maxAmount: "1.5" },
          { x402AccessToken: token, maxAmount: "1" }
        ]
      ) {
        const answer = yield* send(fake, "/api/v1/x402/verify", { body })
        assert.strictEqual(answer.status, 400)
        assert.strictEqual((answer.json as { code: string }).code, "BCK.COMMON.0002")
      }
      const notJson = yield* Effect.promise(() =>
        fetch(`${fake.url}/api/v1/x402/settle`, {
          method: "POST",
          headers: { authorization: `Bearer ${fake.apiKey}` },
          body: "{"
        }).then((r) => r.status)
      )
      assert.strictEqual(notJson, 400)
    }))

  it.scopedLive("permissions, delegations, balance and plan", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seeded(fake, 5)
      fake.ledger.addPlan({ planId: "plan-fiat", fiatPaymentProvider: "stripe", pricePerCredit: "2" })
      const as = { key: fake.subscriberApiKey }

      const created = yield* send(fake, "/api/v1/delegation/create", {
        ...as,
        body: { provider: "erc4337", spendingLimitCents: 1000, durationSecs: 3600, currency: "usdc", planId: "plan-1" }
      })
      const delegationId = (created.json as { delegationId: string }).delegationId
      assert.deepStrictEqual(created.json, { delegationId })

      const minted = yield* send(fake, "/api/v1/x402/permissions", {
        ...as,
        body: {
          accepted: { scheme: "nvm:erc4337", network: "eip155:84532", planId: "plan-1", extra: { agentId: "agent-1" } },
          delegationConfig: { delegationId }
        }
      })
      const accessToken = (minted.json as { accessToken: string }).accessToken
      assert.deepStrictEqual(fake.ledger.tokens.get(accessToken), {
        planId: "plan-1",
        subscriber: fake.subscriber,
        agentId: "agent-1",
        delegationId
      })

      const list = yield* send(fake, "/api/v1/delegation", as)
      const listed = list.json as { delegations: Array<Record<string, unknown>>; totalResults: number }
      assert.strictEqual(listed.totalResults, 1)
      assert.strictEqual(listed.delegations[0]["delegationId"], delegationId)
      assert.strictEqual(listed.delegations[0]["spendingLimitCents"], "1000")
      assert.strictEqual(listed.delegations[0]["status"], "Active")
      // Delegations are per account.
      const providerList = yield* send(fake, "/api/v1/delegation")
      assert.strictEqual((providerList.json as { totalResults: number }).totalResults, 0)

      const balance = yield* send(fake, `/api/v1/protocol/plans/plan-1/balance/${fake.subscriber}`)
      assert.deepStrictEqual(balance.json, {
        planId: "plan-1",
        planName: "plan-1",
        planType: "credits",
        holderAddress: fake.subscriber,
        balance: "5",
        creditsContract: "0x0000000000000000000000000000000000c4ed17",
        isSubscriber: true,
        pricePerCredit: 0
      })

      const fiat = yield* send(fake, "/api/v1/protocol/plans/plan-fiat")
      assert.strictEqual(
        (fiat.json as { metadata: { plan: { fiatPaymentProvider: string } } }).metadata.plan.fiatPaymentProvider,
        "stripe"
      )
      const missing = yield* send(fake, "/api/v1/protocol/plans/nope")
      assert.strictEqual(missing.status, 404)
      assert.strictEqual((missing.json as { code: string }).code, "BCK.PLANS.0001")
      const unknownRoute = yield* send(fake, "/api/v2/whatever")
      assert.strictEqual(unknownRoute.status, 404)
      assert.strictEqual(fake.requests.at(-1)!.route, "unknown")
    }))

  it.scopedLive("every request is recorded as it arrived", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const token = seeded(fake)
      const body = { paymentRequired, x402AccessToken: token, maxAmount: "1" }
      yield* send(fake, "/api/v1/x402/verify", { body })
      assert.deepStrictEqual(fake.requests.map((r) => [r.route, r.method, r.url]), [[
        "verify",
        "POST",
        "/api/v1/x402/verify"
      ]])
      assert.strictEqual(fake.requests[0].body, JSON.stringify(body))
      assert.strictEqual(fake.requests[0].headers["nevermined-version"], "1.1")
    }))
})

describe("FakeNevermined: fault injection per route", () => {
  it.scopedLive("status, 429 with Retry-After, malformed and wrong-shape JSON", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const token = seeded(fake)
      const body = { paymentRequired, x402AccessToken: token, maxAmount: "1" }
      fake.faults.next(
        "verify",
        Fault.status(503, "BCK.X402.0005", "down"),
        Fault.rateLimited(7),
        Fault.malformedJson,
        Fault.wrongShape({ odd: true })
      )
      const unavailable = yield* send(fake, "/api/v1/x402/verify", { body })
      assert.strictEqual(unavailable.status, 503)
      assert.deepStrictEqual(unavailable.json, {
        statusCode: 503,
        code: "BCK.X402.0005",
        message: "down",
        error: "Service Unavailable"
      })
      const limited = yield* send(fake, "/api/v1/x402/verify", { body })
      assert.strictEqual(limited.status, 429)
      assert.strictEqual(limited.headers.get("retry-after"), "7")
      const malformed = yield* send(fake, "/api/v1/x402/verify", { body })
      assert.strictEqual(malformed.status, 200)
      assert.isUndefined(malformed.json)
      const wrong = yield* send(fake, "/api/v1/x402/verify", { body })
      assert.deepStrictEqual(wrong.json, { odd: true })
      // The queue is spent: back to normal; other routes were never affected.
      const normal = yield* send(fake, "/api/v1/x402/verify", { body })
      assert.strictEqual((normal.json as { isValid: boolean }).isValid, true)
      assert.strictEqual(fake.calls("verify"), 5)
      assert.strictEqual(fake.calls("settle"), 0)
    }))

  it.scopedLive("standing faults answer every request until cleared", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      fake.faults.always("delegationList", Fault.status(502))
      assert.strictEqual((yield* send(fake, "/api/v1/delegation")).status, 502)
      assert.strictEqual((yield* send(fake, "/api/v1/delegation")).status, 502)
      fake.faults.next("delegationList", Fault.status(504))
      assert.strictEqual((yield* send(fake, "/api/v1/delegation")).status, 504)
      fake.faults.clear("delegationList")
      assert.strictEqual((yield* send(fake, "/api/v1/delegation")).status, 200)
    }))

  it.scopedLive("latency delays the answer, which is still correct", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      fake.faults.next("delegationList", Fault.latency("20 millis"))
      const answer = yield* send(fake, "/api/v1/delegation")
      assert.strictEqual(answer.status, 200)
      assert.deepStrictEqual(answer.json, { delegations: [], totalResults: 0, page: 1, offset: 0 })
    }))

  it.scopedLive("a dropped connection: the client sees the socket close; `applied` settles first", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const token = seeded(fake)
      const body = { paymentRequired, x402AccessToken: token, maxAmount: "3" }
      fake.faults.next("settle", Fault.dropConnection(), Fault.dropConnection({ applied: true }))
      const first = yield* attempt(fake, "/api/v1/x402/settle", body)
      assert.isTrue(Either.isLeft(first))
      assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-1"), 10)
      const second = yield* attempt(fake, "/api/v1/x402/settle", body)
      assert.isTrue(Either.isLeft(second))
      assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-1"), 7)
      assert.strictEqual(fake.ledger.settlements.length, 1)
    }))

  it.scopedLive("no answer at all: the request hangs until the client gives up", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      fake.faults.next("plan", Fault.noAnswer())
      const controller = new AbortController()
      const pending = fetch(`${fake.url}/api/v1/protocol/plans/p`, {
        headers: { authorization: `Bearer ${fake.apiKey}` },
        signal: controller.signal
      }).then(() => "answered", (error: Error) => error.name)
      yield* Effect.promise(() => waitFor(() => fake.calls("plan") === 1))
      const raced = yield* Effect.promise(() =>
        Promise.race([pending, new Promise((resolve) => setTimeout(() => resolve("still waiting"), 50))])
      )
      assert.strictEqual(raced, "still waiting")
      controller.abort()
      assert.strictEqual(yield* Effect.promise(() => pending), "AbortError")
      // The server keeps working for others.
      assert.strictEqual((yield* send(fake, "/api/v1/protocol/plans/p")).status, 404)
    }))
})

describe("FakeNevermined.layer", () => {
  it.layer(FakeNevermined.layer())("as a scoped layer", (it) => {
    it.effect("provides the running backend", () =>
      Effect.gen(function*() {
        const fake = yield* FakeNevermined.FakeNevermined
        const answer = yield* send(fake, "/api/v1/delegation")
        assert.strictEqual(answer.status, 200)
      }))
  })
})

const waitFor = async (condition: () => boolean): Promise<void> => {
  for (let i = 0; i < 400 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5))
  if (!condition()) throw new Error("condition not met in time")
}
