// Shared helpers of the tests that talk to FakeNevermined over real HTTP.
import { Facilitator, Nevermined, Paywall, Subscriber, X402 } from "@effect-x402/core"
import type { FakeNevermined, TestFacilitator } from "@effect-x402/testing"
import {
  FetchHttpClient,
  Headers,
  HttpClient,
  HttpRouter,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { Chunk, Clock, Duration, Effect, Either, FiberRef, Layer, Redacted, type Scope, TestClock } from "effect"
import * as Http from "node:http"

export const PLAN = "plan-1"
export const FIAT_PLAN = "plan-fiat"
export const AGENT = "agent-1"
export const ENDPOINT = "https://agent.example/mcp"

export const paymentRequired: X402.PaymentRequired = X402.paymentRequired({
  planIds: [PLAN],
  agentId: AGENT,
  endpoint: ENDPOINT,
  httpVerb: "POST",
  network: "eip155:84532"
})

/** The HTTP clients the live layers are tested with. */
export const clients: ReadonlyArray<readonly [string, Layer.Layer<HttpClient.HttpClient>]> = [
  ["fetch", FetchHttpClient.layer],
  ["lean fetch", Nevermined.layerFetchClient],
  ["node", NodeHttpClient.layer],
  ["undici", NodeHttpClient.layerUndici]
]

/** Seeds a plan bound to the agent and a fiat plan, funds the subscriber and mints a token for it. */
export const seedLedger = (ledger: TestFacilitator.Ledger, subscriber: string, credits = 10) => {
  ledger.addPlan({ planId: PLAN, agentId: AGENT })
  ledger.addPlan({ planId: FIAT_PLAN, fiatPaymentProvider: "stripe" })
  ledger.fund(subscriber, PLAN, credits)
  const token = ledger.mintToken({ planId: PLAN, subscriber, agentId: AGENT })
  return { token, redacted: Redacted.make(token) }
}

/** Seeds the fake's ledger for its subscriber. */
export const seed = (fake: FakeNevermined.FakeNevermined.Service, credits = 10) =>
  seedLedger(fake.ledger, fake.subscriber, credits)

/** An HTTP client layer that counts the requests it is asked to send. */
export const counting = (client: Layer.Layer<HttpClient.HttpClient>) => {
  let count = 0
  const layer = Layer.effect(
    HttpClient.HttpClient,
    Effect.map(HttpClient.HttpClient, (inner) => HttpClient.tapRequest(inner, () => Effect.sync(() => count++)))
  ).pipe(Layer.provide(client))
  return { layer, count: () => count }
}

/**
 * A live facilitator pointed at the fake; its HTTP client lives as long as the test's scope. By
 * default over `Nevermined.layerFetchClient`, the Lambda default: with no tracer, verify and settle
 * take the lean `fetch` path, so every fault test here runs on it (the per-client suites cover the
 * platform clients).
 */
export const facilitator = (
  fake: FakeNevermined.FakeNevermined.Service,
  options: Partial<Nevermined.Options> = {},
  client: Layer.Layer<HttpClient.HttpClient> = Nevermined.layerFetchClient
): Effect.Effect<Facilitator.Facilitator.Service, Nevermined.InvalidApiKey, Scope.Scope> =>
  Effect.flatMap(
    Layer.build(client),
    (context) =>
      Nevermined.make({ apiKey: fake.apiKey, backendUrl: fake.url, ...options }).pipe(Effect.provide(context))
  )

/** Waits in real time (the test clock does not move it), so real I/O can progress. */
export const realSleep = (millis: number) =>
  Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, millis)))

/** Polls in real time until the condition holds; fails after a few seconds. */
export const waitUntil = (condition: () => boolean, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500; i++) {
      if (condition()) return
      yield* realSleep(5)
    }
    return yield* Effect.dieMessage(`timed out waiting until ${what}`)
  })

/** Polls in real time until something sleeps on the test clock until `after` from now. */
export const waitForSleep = (after: Duration.DurationInput) =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(after)
    for (let i = 0; i < 500; i++) {
      if (Chunk.some(yield* TestClock.sleeps(), (at) => at === deadline)) return
      yield* realSleep(5)
    }
    return yield* Effect.dieMessage(`nothing went to sleep for ${Duration.format(after)}`)
  })

/**
 * Moves the test clock forward in small steps, letting real I/O run between steps, until the
 * condition holds or `limit` of virtual time has passed. Returns the virtual time advanced.
 */
export const advanceUntil = (
  condition: () => boolean,
  options: { readonly limit: Duration.DurationInput; readonly step?: Duration.DurationInput }
) =>
  Effect.gen(function*() {
    const step = Duration.toMillis(options.step ?? Duration.millis(100))
    const limit = Duration.toMillis(options.limit)
    let advanced = 0
    yield* realSleep(5)
    while (!condition() && advanced < limit) {
      yield* TestClock.adjust(Duration.millis(step))
      advanced += step
      yield* realSleep(3)
    }
    return advanced
  })

/** A live subscriber pointed at the fake, with the fake's subscriber key. */
export const subscriber = (
  fake: FakeNevermined.FakeNevermined.Service,
  options: Partial<Subscriber.Options> = {},
  client: Layer.Layer<HttpClient.HttpClient> = FetchHttpClient.layer
): Effect.Effect<Subscriber.Subscriber.Service, Nevermined.InvalidApiKey, Scope.Scope> =>
  Effect.flatMap(
    Layer.build(client),
    (context) =>
      Subscriber.make({ apiKey: fake.subscriberApiKey, backendUrl: fake.url, ...options }).pipe(
        Effect.provide(context)
      )
  )

/**
 * A paid agent served on loopback: `Paywall.protect` with the live facilitator pointed at the fake.
 * `POST /tool` speaks the plain x402 HTTP transport (docs/protocol.md §8); `POST /mcp` the AgentCore form
 * (status 200, `isError` result, docs/protocol.md §3).
 */
export const paidAgent = (
  fake: FakeNevermined.FakeNevermined.Service,
  options: { readonly planIds?: ReadonlyArray<string>; readonly credits?: number } = {}
) =>
  Effect.gen(function*() {
    const live = yield* facilitator(fake)
    let calls = 0
    const paywall = Paywall.make<unknown>({
      planIds: options.planIds ?? [PLAN],
      agentId: AGENT,
      endpoint: ENDPOINT,
      httpVerb: "POST",
      credits: options.credits ?? 2
    })

    const handle = (agentCore: boolean) =>
      Effect.gen(function*() {
        calls++
        const request = yield* HttpServerRequest.HttpServerRequest
        const token = request.headers[X402.PAYMENT_SIGNATURE_HEADER]
        const outcome = yield* Paywall.protect(paywall, { request: undefined, token }, () =>
          Effect.succeed({ answer: 42 })).pipe(Effect.either)
        if (Either.isRight(outcome)) {
          if (outcome.right._tag !== "Settled") {
            return HttpServerResponse.text("unexpected", { status: 500 })
          }
          const settlement = outcome.right.settlement
          return agentCore
            ? HttpServerResponse.unsafeJson({
              jsonrpc: "2.0",
              id: 1,
              result: { content: [{ type: "text", text: "42" }], _meta: { x402: X402.metaOf(settlement) } }
            }, { headers: { [X402.PAYMENT_RESPONSE_HEADER]: X402.ReceiptHeader.encode(X402.receiptOf(settlement)) } })
            : HttpServerResponse.unsafeJson(outcome.right.value, {
              headers: { [X402.PAYMENT_RESPONSE_HEADER]: X402.SettleResponseHeader.encode(settlement) }
            })
        }
        const error = outcome.left
        const demand = (extra: Record<string, string> = {}) => {
          const headers = {
            [X402.PAYMENT_REQUIRED_HEADER]: X402.PaymentRequiredHeader.encode(error.paymentRequired),
            ...extra
          }
          return agentCore
            ? HttpServerResponse.unsafeJson({
              jsonrpc: "2.0",
              id: 1,
              result: {
                isError: true,
                content: [{
                  type: "text",
                  text: JSON.stringify({ error: "Payment required", code: 402, message: error.message })
                }],
                _meta: { x402: true }
              }
            }, { headers })
            : HttpServerResponse.unsafeJson({ error: "Payment Required", message: error.message }, {
              status: 402,
              headers
            })
        }
        switch (error._tag) {
          case "PaymentRequired":
            return demand()
          case "VerifyFailed":
            return error.reason === "Unavailable"
              ? HttpServerResponse.unsafeJson({ error: "Bad Gateway", message: error.message }, { status: 502 })
              : demand()
          case "SettleFailed": {
            if (error.reason !== "Rejected") {
              return HttpServerResponse.unsafeJson({ error: "Bad Gateway", message: error.message }, { status: 502 })
            }
            const settlement = error.settlement ??
              { success: false, errorReason: error.message, transaction: "", network: "" }
            return demand({ [X402.PAYMENT_RESPONSE_HEADER]: X402.SettleResponseHeader.encode(settlement) })
          }
        }
      })

    const router = HttpRouter.empty.pipe(
      HttpRouter.post("/tool", handle(false)),
      HttpRouter.post("/mcp", handle(true)),
      HttpRouter.post(
        "/free",
        Effect.sync(() =>
          HttpServerResponse.unsafeJson({ free: true })
        )
      ),
      HttpRouter.post(
        "/broken",
        Effect.sync(() => {
          calls++
          return HttpServerResponse.text("{}", { status: 402, headers: { [X402.PAYMENT_REQUIRED_HEADER]: "%%%" } })
        })
      )
    )
    const server = yield* NodeHttpServer.make(() => Http.createServer(), { host: "127.0.0.1", port: 0 })
    // The platform's server spans record request headers: the token header must be redacted there.
    const redacted = yield* FiberRef.get(Headers.currentRedactedNames)
    yield* server.serve(router).pipe(
      Effect.provideService(Facilitator.Facilitator, live),
      Effect.locally(Headers.currentRedactedNames, [...redacted, X402.PAYMENT_SIGNATURE_HEADER])
    )
    const address = server.address as { readonly hostname: string; readonly port: number }
    return { url: `http://${address.hostname}:${address.port}`, calls: () => calls }
  })
