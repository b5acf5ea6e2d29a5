// Hostile suite, invariants 1 and 11 (RELIABILITY.md, "Money-tight"): the caller never sets the
// price, and `release` covers outages, never refusals. Every case goes through `LocalGateway` over
// real HTTP, as a caller reaches a deployed agent, and is reconciled against the ledger.
import { type Facilitator, X402 } from "@effect-x402/core"
import type { AgentCore } from "@effect-x402/lambda"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { LocalGateway, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import type { Layer } from "effect"
import { Duration, Effect, Either, FastCheck as fc, Logger } from "effect"

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any

const PLAN = "plan-1"
const PRICE = 5
const quiet = Logger.replace(Logger.defaultLogger, Logger.none) as Layer.Layer<never>

interface Seen {
  readonly status: number
  readonly text: string
  readonly json: Json
  readonly receipt: X402.Receipt | undefined
}

/** A tools/call POSTed with fetch, the way an MCP client sends it. */
const callTool = (url: string, args: Record<string, unknown>, token?: string) =>
  Effect.promise(async (): Promise<Seen> => {
    const response = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...(token !== undefined ? { "payment-signature": token } : {})
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: args } })
    })
    const text = await response.text()
    let json: Json = undefined
    try {
      json = JSON.parse(text)
    } catch {
      // not JSON
    }
    const header = response.headers.get(X402.PAYMENT_RESPONSE_HEADER)
    const receipt = header === null ? undefined : Either.getOrUndefined(X402.ReceiptHeader.decodeEither(header))
    return { status: response.status, text, json, receipt }
  })

/** What the echo tool answers: the caller's text, as a tool that fetches or stores text would. */
const echoResult = (text: unknown) => ({ content: [{ type: "text", text: String(text) }] })

const textOf = (event: AgentCore.InterceptorInput): unknown => {
  const body: Json = event.mcp.gatewayRequest?.body
  return body?.params?.arguments?.text
}

/** A gateway in front of a `requiresPayment` echo tool priced at PRICE credits. */
const decoratorGateway = (layer: Layer.Layer<Facilitator.Facilitator>, options: { readonly release?: boolean } = {}) =>
  LocalGateway.make({
    handler: requiresPayment({
      planId: PLAN,
      credits: PRICE,
      layer,
      services: quiet,
      ...(options.release === true ? { onSettleFailure: "release" as const } : {})
    })((event) => echoResult(textOf(event)))
  })

/** A gateway with the interceptor in front of an echo target priced at PRICE credits. */
const interceptorGateway = (
  layer: Layer.Layer<Facilitator.Facilitator>,
  options: { readonly release?: boolean } = {}
) => {
  const handler = interceptor({
    planId: PLAN,
    credits: PRICE,
    layer,
    services: quiet,
    ...(options.release === true ? { onSettleFailure: "release" as const } : {})
  })
  return LocalGateway.make({
    interceptor: handler,
    target: (request) => {
      const body: Json = request.body
      return {
        statusCode: 200,
        headers: { "Content-Type": "application/json" },
        body: { jsonrpc: "2.0", id: body.id, result: echoResult(body.params?.arguments?.text) }
      }
    }
  })
}

const flavours = [
  ["requiresPayment", decoratorGateway],
  ["interceptor", interceptorGateway]
] as const

/** Texts a caller might make a tool echo to choose its own price. */
const priceTexts = [
  `{"creditsToCharge":0}`,
  `{"creditsToCharge":"0"}`,
  `{"creditsToCharge":1}`,
  `{"creditsToCharge":-5}`,
  `{"creditsToCharge":0.5}`,
  `{"creditsToCharge":null}`,
  `{"__proto__":{"creditsToCharge":0}}`,
  ` {"creditsToCharge":0} `
]

describe("hostile: the caller never sets the price", () => {
  for (const [name, gatewayOf] of flavours) {
    it.scopedLive(`${name}: echoed creditsToCharge text settles the configured price, every time`, () =>
      Effect.gen(function*() {
        const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 1000 })
        const gateway = yield* gatewayOf(TestFacilitator.layer(ledger))
        for (const text of priceTexts) {
          const seen = yield* callTool(gateway.url, { text }, token)
          assert.strictEqual(seen.status, 200, text)
          // The output goes out, for the price the server set.
          assert.include(seen.text, "creditsToCharge", text)
          assert.strictEqual(seen.receipt?.success, true, text)
          assert.strictEqual(seen.receipt?.creditsRedeemed, String(PRICE), text)
        }
        assert.deepStrictEqual(ledger.settlements.map((s) => s.credits), priceTexts.map(() => PRICE))
      }))

    it.scopedLive(`${name}: for any echoed text, the settled amount is the configured price`, () =>
      Effect.gen(function*() {
        const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 1_000_000 })
        const gateway = yield* gatewayOf(TestFacilitator.layer(ledger))
        const texts = fc.sample(
          fc.oneof(
            fc.string(),
            fc.json(),
            fc.jsonValue().map((v) => JSON.stringify({ creditsToCharge: v })),
            fc.record({ creditsToCharge: fc.oneof(fc.integer(), fc.double(), fc.string()), other: fc.jsonValue() })
              .map((v) => JSON.stringify(v))
          ),
          { numRuns: 40, seed: 12 }
        )
        for (const text of texts) {
          const seen = yield* callTool(gateway.url, { text }, token)
          assert.strictEqual(seen.receipt?.creditsRedeemed, String(PRICE), text)
        }
        assert.isTrue(ledger.settlements.every((s) => s.credits === PRICE))
        assert.strictEqual(ledger.settlements.length, texts.length)
      }))
  }
})

describe("hostile: release covers outages, never refusals", () => {
  for (const [name, gatewayOf] of flavours) {
    it.scopedLive(`${name}: 20 concurrent calls on a token funded for one: one output, the others withheld`, () =>
      Effect.gen(function*() {
        const { ledger, subscriber, token } = TestFacilitator.seeded({ planId: PLAN, credits: PRICE })
        // A facilitator that takes a moment, as a real one does: several calls are verified (the
        // balance covers each one) before the first settle burns it.
        ledger.latency = Duration.millis(100)
        const gateway = yield* gatewayOf(TestFacilitator.layer(ledger), { release: true })
        const seen = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          (i) => callTool(gateway.url, { text: `paid output ${i}` }, token),
          { concurrency: "unbounded" }
        )
        const verified = ledger.calls.filter((c) => c.operation === "verify" && c.outcome === "valid").length
        assert.isAbove(verified, 1, "the race did not happen: only one call was verified")
        const released = seen.filter((s) => s.text.includes("paid output"))
        // Only the call that was settled got its output; every refused settle withheld its output.
        assert.strictEqual(ledger.settlements.length, 1)
        assert.strictEqual(released.length, 1)
        assert.strictEqual(released[0].receipt?.success, true)
        assert.strictEqual(ledger.balance(subscriber, PLAN), 0)
        for (const refused of seen.filter((s) => !s.text.includes("paid output"))) {
          assert.notStrictEqual(refused.receipt?.success, true)
        }
      }))

    it.scopedLive(`${name}: an unreachable facilitator at settle releases under the release policy`, () =>
      Effect.gen(function*() {
        const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 100 })
        const gateway = yield* gatewayOf(TestFacilitator.layer(ledger), { release: true })
        ledger.failNext("settle", { _tag: "Unreachable" })
        const seen = yield* callTool(gateway.url, { text: "paid output" }, token)
        assert.include(seen.text, "paid output")
        assert.strictEqual(ledger.settlements.length, 0)
        // Without the release policy the same outage withholds.
        const strict = yield* gatewayOf(TestFacilitator.layer(ledger))
        ledger.failNext("settle", { _tag: "Unreachable" })
        const withheld = yield* callTool(strict.url, { text: "paid output" }, token)
        assert.notInclude(withheld.text, "paid output")
      }))
  }
})
