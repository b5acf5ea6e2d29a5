// Shared helpers of the tests that talk to FakeNevermined over real HTTP.
import type { Facilitator } from "@effect-x402/core"
import { Nevermined, X402 } from "@effect-x402/core"
import type { FakeNevermined } from "@effect-x402/testing"
import { type TestFacilitator } from "@effect-x402/testing"
import { FetchHttpClient, HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Duration, Effect, Layer, Redacted, type Scope, TestClock } from "effect"

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

/** A live facilitator pointed at the fake; its HTTP client lives as long as the test's scope. */
export const facilitator = (
  fake: FakeNevermined.FakeNevermined.Service,
  options: Partial<Nevermined.Options> = {},
  client: Layer.Layer<HttpClient.HttpClient> = FetchHttpClient.layer
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
