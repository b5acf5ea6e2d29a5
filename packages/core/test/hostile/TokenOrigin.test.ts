// Hostile suite, invariant 5 (RELIABILITY.md, "Money-tight"): a token goes only where it was bought
// for. X402Client keeps minted tokens per origin (from the request it sent) and resource, never per
// the plan a server's 402 names; the paid retry never follows a redirect. Real HTTP on 127.0.0.1
// against FakeNevermined, reconciled against its ledger; then a property over generated origins and
// paths with an in-memory server.
import { Subscriber, X402, X402Client } from "@effect-x402/core"
import { HttpPaywall } from "@effect-x402/core"
import { FakeNevermined } from "@effect-x402/testing"
import {
  FetchHttpClient,
  HttpClient,
  HttpClientRequest,
  HttpClientResponse,
  HttpRouter,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Logger, Redacted } from "effect"
import { liveFacilitator, payingClient, serve } from "../HttpPaywall.fixtures.js"
import { AGENT, PLAN, seed } from "../Nevermined.fixtures.js"

const PRICE = 1

/** A paid agent for the honest plan: records every token it receives. */
const agent = (received: Array<string>) => {
  const router = HttpRouter.empty.pipe(
    HttpRouter.post(
      "/tool",
      HttpServerResponse.json({ answer: 42 }).pipe(
        HttpPaywall.middleware({ planId: PLAN, agentId: AGENT, credits: PRICE })
      )
    )
  )
  // Records what reaches the server before the paywall, whatever the paywall answers.
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const token = request.headers[X402.PAYMENT_SIGNATURE_HEADER]
    if (token !== undefined) received.push(token)
    return router
  })
}

const settledTokens = (fake: FakeNevermined.FakeNevermined.Service): Array<string> =>
  fake.requests.filter((r) => r.route === "settle").map((r) => JSON.parse(r.body).x402AccessToken as string)

const post = (url: string) => HttpClientRequest.bodyUnsafeJson(HttpClientRequest.post(url), { question: "6 x 7" })

describe("hostile: a token goes only where it was bought for (X402Client over HTTP)", () => {
  it.scopedLive("a server advertising the honest plan never receives the honest origin's token", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake, 10)
      const facilitator = yield* liveFacilitator(fake)
      const honestSeen: Array<string> = []
      const attackerSeen: Array<string> = []
      const honest = yield* serve(agent(honestSeen)).pipe(Effect.provide(facilitator))
      const attacker = yield* serve(agent(attackerSeen)).pipe(Effect.provide(facilitator))
      assert.notStrictEqual(honest, attacker)
      const client = yield* payingClient(fake)

      const first = yield* client.execute(post(`${honest}/tool`))
      assert.isTrue(first.paid)
      const honestToken = honestSeen[0]
      assert.isString(honestToken)
      for (let i = 0; i < 5; i++) {
        const paid = yield* client.execute(post(`${attacker}/tool`))
        assert.isTrue(paid.paid)
      }
      yield* client.execute(post(`${honest}/tool`))

      // The attacker never saw the honest origin's token; the honest server saw no other.
      assert.isAbove(attackerSeen.length, 0)
      assert.notInclude(attackerSeen, honestToken)
      assert.isTrue(honestSeen.every((token) => token === honestToken))
      // One token minted per origin; each settlement used the token of the origin that was called.
      assert.strictEqual(fake.calls("permissions"), 2)
      const settled = settledTokens(fake)
      assert.strictEqual(settled.length, 7)
      assert.strictEqual(settled.filter((t) => t === honestToken).length, 2)
      assert.isTrue(settled.filter((t) => t !== honestToken).every((t) => t === attackerSeen[0]))
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 10 - 7 * PRICE)
    }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger))))

  it.scopedLive("a server that only collects tokens (402 with the honest plan, always) gets only its own", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake, 10)
      const facilitator = yield* liveFacilitator(fake)
      const honestSeen: Array<string> = []
      const honest = yield* serve(agent(honestSeen)).pipe(Effect.provide(facilitator))
      const collected: Array<string> = []
      // The collector copies the honest agent's own 402 and keeps whatever token comes back.
      const demand = yield* Effect.map(
        Effect.flatMap(HttpClient.HttpClient, (http) => http.execute(post(`${honest}/tool`))),
        (response) => response.headers[X402.PAYMENT_REQUIRED_HEADER]
      ).pipe(Effect.provide(FetchHttpClient.layer))
      const collector = yield* serve(
        Effect.gen(function*() {
          const request = yield* HttpServerRequest.HttpServerRequest
          const token = request.headers[X402.PAYMENT_SIGNATURE_HEADER]
          if (token !== undefined) collected.push(token)
          return HttpServerResponse.empty({ status: 402, headers: { [X402.PAYMENT_REQUIRED_HEADER]: demand } })
        })
      )
      const client = yield* payingClient(fake)
      yield* client.execute(post(`${honest}/tool`))
      for (let i = 0; i < 3; i++) {
        const refused = yield* Effect.flip(client.execute(post(`${collector}/steal`)))
        assert.strictEqual(refused._tag, "X402ClientError")
      }
      assert.strictEqual(honestSeen.length, 1)
      assert.notInclude(collected, honestSeen[0])
      // Nothing was settled but the honest call: the collector holds no token that pays the honest agent.
      assert.deepStrictEqual(settledTokens(fake), [honestSeen[0]])
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 10 - PRICE)
    }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger))))

  it.scopedLive("the paid retry does not follow a redirect to another origin", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake, 10)
      const facilitator = yield* liveFacilitator(fake)
      const collected: Array<string> = []
      const collector = yield* serve(
        Effect.gen(function*() {
          const request = yield* HttpServerRequest.HttpServerRequest
          const token = request.headers[X402.PAYMENT_SIGNATURE_HEADER]
          if (token !== undefined) collected.push(token)
          return HttpServerResponse.text("thanks")
        })
      )
      // An open redirect on the paid origin: a paid request is sent on to the collector.
      const open = yield* serve(
        HttpRouter.empty.pipe(
          HttpRouter.post(
            "/go",
            HttpServerResponse.empty({ status: 307, headers: { location: `${collector}/take` } }).pipe(
              HttpPaywall.middleware({ planId: PLAN, agentId: AGENT, credits: PRICE })
            )
          )
        )
      ).pipe(Effect.provide(facilitator))
      const client = yield* payingClient(fake)
      const paid = yield* client.execute(post(`${open}/go`))
      assert.strictEqual(paid.response.status, 307)
      assert.deepStrictEqual(collected, [])
    }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger))))
})

// ---------------------------------------------------------------------------
// Property: over generated origins and paths
// ---------------------------------------------------------------------------

const demand = X402.PaymentRequiredHeader.encode(
  X402.paymentRequired({ planIds: [PLAN], agentId: AGENT, network: "eip155:84532", httpVerb: "POST" })
)

/**
 * Every URL answers the same 402 (one plan, one agent: the words of every server agree) until a token
 * comes; each minted token is remembered with the target it was minted for.
 */
const inMemory = () => {
  const minted = new Map<string, string>()
  const arrivals: Array<{ readonly url: string; readonly token: string }> = []
  let count = 0
  let mintingFor = ""
  const http = HttpClient.make((request) =>
    Effect.sync(() => {
      const token = request.headers[X402.PAYMENT_SIGNATURE_HEADER]
      if (token === undefined) {
        const target = X402Client.targetOf(request)
        mintingFor = target === undefined ? "?" : `${target.origin}${target.resource}`
        return HttpClientResponse.fromWeb(
          request,
          new Response(null, { status: 402, headers: { [X402.PAYMENT_REQUIRED_HEADER]: demand } })
        )
      }
      arrivals.push({ url: request.url, token })
      return HttpClientResponse.fromWeb(request, new Response("ok", { status: 200 }))
    })
  )
  const subscriber = Subscriber.Subscriber.of({
    accessToken: () =>
      Effect.sync(() => {
        count += 1
        const token = `tok-${count}`
        minted.set(token, mintingFor)
        return Redacted.make(token)
      })
  } as unknown as Subscriber.Subscriber.Service)
  return { http, subscriber, minted, arrivals }
}

const arbUrl = fc.record({
  scheme: fc.constantFrom("http", "https", "HTTP"),
  host: fc.constantFrom("agent.example", "AGENT.example", "evil.example", "127.0.0.1", "localhost", "agent.example."),
  port: fc.option(fc.constantFrom(80, 443, 8080, 8443), { nil: undefined }),
  path: fc.constantFrom("/tool", "/tool/", "/Tool", "/other", "/tool/../other", "/"),
  query: fc.option(fc.constantFrom("?a=1", "?b=2"), { nil: undefined })
}).map(({ host, path, port, query, scheme }) =>
  `${scheme}://${host}${port !== undefined ? `:${port}` : ""}${path}${query ?? ""}`
)

describe("property: a token is only ever sent to the origin and resource it was minted for", () => {
  it.live("any sequence of paid requests to generated URLs", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(fc.array(arbUrl, { minLength: 1, maxLength: 12 }), async (urls) => {
          const { arrivals, http, minted, subscriber } = inMemory()
          await Effect.runPromise(Effect.gen(function*() {
            const client = yield* X402Client.make().pipe(
              Effect.provideService(HttpClient.HttpClient, http),
              Effect.provideService(Subscriber.Subscriber, subscriber)
            )
            for (const url of urls) {
              const paid = yield* client.execute(HttpClientRequest.post(url))
              assert.isTrue(paid.paid)
            }
          }))
          assert.strictEqual(arrivals.length, urls.length)
          for (const { token, url } of arrivals) {
            const target = new URL(url)
            const port = target.port !== "" ? target.port : target.protocol === "https:" ? "443" : "80"
            assert.strictEqual(minted.get(token), `${target.protocol}//${target.hostname}:${port}${target.pathname}`)
          }
          // One token per distinct target, never more.
          const targets = new Set(arrivals.map(({ token }) => minted.get(token)))
          assert.strictEqual(minted.size, targets.size)
        }),
        { numRuns: 100, seed: 12 }
      )
    ))
})
