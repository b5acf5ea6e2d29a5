// Hostile suite for the x402 MCP in-band format (docs/mcp.md) in `requiresPayment`: the token may
// come in `params._meta["x402/payment"]` as well as the header, the PaymentRequired is in the JSON-RPC
// answer as well as the header, the receipt in `_meta["x402/payment-response"]` and `_meta.x402`.
// What an attacker sends in that new place (a token on a free method or `initialize`, a token in both
// places, malformed or oversize tokens, a replayed request) never runs the paid handler unpaid and is
// never verified against one token and settled against another. Reconciled against the
// `TestFacilitator` ledger: one settlement per paid call, none for a refused one.
import { X402 } from "@effect-x402/core"
import * as InBand from "@effect-x402/core/McpInBand"
import type { AgentCore } from "@effect-x402/lambda"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { AgentCoreEvents, LocalGateway, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import type { Layer } from "effect"
import { Effect, Logger } from "effect"
import { bodyOf, captureLogs, headerOf, type Json } from "../helpers.js"

const PLAN = "plan-1"
const PRICE = 2
const MARKER = "PAID-OUTPUT-in-band"
const quiet = Logger.replace(Logger.defaultLogger, Logger.none) as Layer.Layer<never>
const ctx = AgentCoreEvents.context()

const paidHandler = (
  ledger: TestFacilitator.Ledger,
  extra: { readonly freeMethods?: ReadonlyArray<string>; readonly services?: Layer.Layer<never> } = {}
) => {
  const runs: Array<string> = []
  const handler = requiresPayment({
    planId: PLAN,
    credits: PRICE,
    endpoint: "https://gateway.example/mcp",
    tools: { forecast: { description: "The weather", inputSchema: { type: "object" } } },
    layer: TestFacilitator.layer(ledger),
    services: quiet,
    ...extra
  })((event) => {
    const body = event.mcp.gatewayRequest.body as Json
    runs.push(String(body?.method))
    return { content: [{ type: "text", text: MARKER }] }
  })
  return { handler, runs }
}

const rpc = (method: string, params: Record<string, unknown>, id: string | number = 1) => ({
  jsonrpc: "2.0",
  id,
  method,
  params
})

const call = (meta?: Record<string, unknown>, id: string | number = 1) =>
  rpc(
    "tools/call",
    { name: "forecast", arguments: { city: "Lisbon" }, ...(meta !== undefined ? { _meta: meta } : {}) },
    id
  )

const event = (body: unknown, token?: string) =>
  AgentCoreEvents.request({ body, ...(token !== undefined ? { token } : {}) })

const invoke = (
  handler: (event: unknown, context: typeof ctx) => Promise<AgentCore.InterceptorOutput>,
  input: unknown
) => Effect.promise(() => handler(input, ctx))

/** A refused call's answer: well formed, the id echoed, payment required in band, nothing released. */
const assertRefused = (output: AgentCore.InterceptorOutput, id: string | number, message?: string) => {
  const body = bodyOf(output)
  assert.strictEqual(body.jsonrpc, "2.0")
  assert.strictEqual(body.id, id)
  assert.isTrue(body.result.isError)
  assert.strictEqual(JSON.parse(body.result.content[0].text).code, 402)
  // The x402 MCP transport's place: the PaymentRequired as structuredContent, beside the header.
  assert.strictEqual(body.result.structuredContent.x402Version, 2)
  assert.strictEqual(body.result.structuredContent.accepts[0].planId, PLAN)
  if (message !== undefined) assert.strictEqual(body.result.structuredContent.error, message)
  assert.isDefined(headerOf(output, "payment-required"))
  assert.notInclude(JSON.stringify(body), MARKER)
  assert.isUndefined(headerOf(output, "payment-response"))
}

describe("hostile: in-band tokens in requiresPayment (direct events)", () => {
  it.effect("a _meta token on initialize, ping, tools/list, a notification or a free method is never verified", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 100 })
      const { handler, runs } = paidHandler(ledger, { freeMethods: ["resources/list"] })
      const meta = { [InBand.PAYMENT_META_KEY]: token }
      for (const method of ["initialize", "ping", "tools/list", "resources/list"]) {
        const output = yield* invoke(handler, event(rpc(method, { _meta: meta, protocolVersion: "2025-06-18" })))
        const body = bodyOf(output)
        assert.isDefined(body.result, method)
        assert.isUndefined(body.result._meta?.[InBand.PAYMENT_RESPONSE_META_KEY], method)
        assert.isUndefined(headerOf(output, "payment-response"), method)
      }
      const notification = yield* invoke(
        handler,
        event({ jsonrpc: "2.0", method: "notifications/initialized", params: { _meta: meta } })
      )
      assert.strictEqual(notification.mcp.transformedGatewayResponse?.statusCode, 202)
      // Only the declared free method ran the handler; the facilitator heard of none of them.
      assert.deepStrictEqual(runs, ["resources/list"])
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it.effect("a token in both places: different ones are refused as ambiguous, unverified; the same one pays once", () =>
    Effect.gen(function*() {
      const { ledger, subscriber, token } = TestFacilitator.seeded({ planId: PLAN, credits: 100 })
      const other = ledger.mintToken({ planId: PLAN, subscriber })
      const logs = captureLogs()
      const { handler, runs } = paidHandler(ledger, { services: logs.layer })
      const refused = yield* invoke(handler, event(call({ [InBand.PAYMENT_META_KEY]: other }, 7), token))
      assertRefused(refused, 7, InBand.REFUSED_AMBIGUOUS)
      // Neither token is echoed, in the answer or the log.
      for (const secret of [token, other]) {
        assert.notInclude(JSON.stringify(bodyOf(refused)), secret)
        assert.notInclude(logs.lines.join("\n"), secret)
      }
      assert.deepStrictEqual(ledger.calls, [])
      assert.deepStrictEqual(runs, [])

      const agreeing = yield* invoke(handler, event(call({ [InBand.PAYMENT_META_KEY]: token }, 8), token))
      assert.strictEqual(bodyOf(agreeing).result.content[0].text, MARKER)
      assert.strictEqual(ledger.settlements.length, 1)
      assert.strictEqual(ledger.balance(subscriber, PLAN), 100 - PRICE)
    }))

  it.effect("malformed or oversize in-band payments: payment required with the reason, nothing verified", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 100 })
      const { handler, runs } = paidHandler(ledger)
      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [42, InBand.REFUSED_INVALID],
        [true, InBand.REFUSED_INVALID],
        [null, InBand.REFUSED_INVALID],
        [[token], InBand.REFUSED_INVALID],
        ["", InBand.REFUSED_INVALID],
        ["   ", InBand.REFUSED_INVALID],
        ["x".repeat(X402.MAX_HEADER_LENGTH + 1), InBand.REFUSED_OVERSIZE],
        [{ x402Version: 2, payload: { pad: "x".repeat(X402.MAX_HEADER_LENGTH) } }, InBand.REFUSED_OVERSIZE]
      ]
      let id = 0
      for (const [payment, message] of cases) {
        // Alone, and beside a valid header token: a malformed in-band payment is refused either way.
        for (const header of [undefined, token]) {
          id++
          const output = yield* invoke(handler, event(call({ [InBand.PAYMENT_META_KEY]: payment }, id), header))
          assertRefused(output, id, message)
        }
      }
      assert.deepStrictEqual(runs, [])
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it.effect("a _meta that is not an object, or a payment under an inherited key, is no payment", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 100 })
      const { handler, runs } = paidHandler(ledger)
      const inherited = JSON.parse(`{"__proto__": {"${InBand.PAYMENT_META_KEY}": "${token}"}}`)
      for (const [i, meta] of ([token, [token], 7, inherited] as const).entries()) {
        const body = rpc("tools/call", { name: "forecast", arguments: {}, _meta: meta }, i)
        assertRefused(yield* invoke(handler, event(body)), i, "Payment required to access this resource")
      }
      assert.deepStrictEqual(runs, [])
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it.effect("a single-use _meta token replayed under the same JSON-RPC id: paid once, the replay withheld", () =>
    Effect.gen(function*() {
      const ledger = new TestFacilitator.Ledger({ singleUseTokens: true })
      ledger.fund("0xsub", PLAN, 100)
      const token = ledger.mintToken({ planId: PLAN, subscriber: "0xsub" })
      const { handler } = paidHandler(ledger)
      const request = call({ [InBand.PAYMENT_META_KEY]: token }, "same-id")
      const first = yield* invoke(handler, event(request))
      assert.strictEqual(bodyOf(first).result.content[0].text, MARKER)
      assert.isTrue(bodyOf(first).result._meta[InBand.PAYMENT_RESPONSE_META_KEY].success)
      const replay = yield* invoke(handler, event(request))
      const body = bodyOf(replay)
      assert.strictEqual(body.jsonrpc, "2.0")
      assert.strictEqual(body.id, "same-id")
      assert.isTrue(body.result.isError)
      assert.notInclude(JSON.stringify(body), MARKER)
      assert.strictEqual(ledger.settlements.length, 1)
      assert.strictEqual(ledger.balance("0xsub", PLAN), 100 - PRICE)
    }))
})

/** A client that reads only JSON-RPC bodies (never an HTTP header), as an MCP client over stdio would. */
const bodyOnlyClient = (url: string) => {
  let id = 0
  return (method: string, params: Record<string, unknown>) =>
    Effect.promise(async (): Promise<Json> => {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify(rpc(method, params, ++id))
      })
      return response.json()
    })
}

describe("in band through LocalGateway over real HTTP", () => {
  it.scopedLive("a client that reads only JSON-RPC bodies pays: PaymentRequired in the result, token in _meta, receipt in _meta", () =>
    Effect.gen(function*() {
      const ledger = new TestFacilitator.Ledger()
      ledger.fund("0xsub", PLAN, 10)
      const { handler, runs } = paidHandler(ledger)
      const gateway = yield* LocalGateway.make({ handler })
      const send = bodyOnlyClient(gateway.url)

      const unpaid = yield* send("tools/call", { name: "forecast", arguments: { city: "Lisbon" } })
      assert.isTrue(unpaid.result.isError)
      const required = unpaid.result.structuredContent
      assert.strictEqual(required.x402Version, 2)
      assert.strictEqual(required.resource.url, "https://gateway.example/mcp")
      // The client buys access to the advertised plan, then pays in band.
      const token = ledger.mintToken({ planId: required.accepts[0].planId, subscriber: "0xsub" })
      for (const city of ["Lisbon", "Porto"]) {
        const paid = yield* send("tools/call", {
          name: "forecast",
          arguments: { city },
          _meta: { [InBand.PAYMENT_META_KEY]: token }
        })
        assert.strictEqual(paid.result.content[0].text, MARKER)
        const receipt = paid.result._meta[InBand.PAYMENT_RESPONSE_META_KEY]
        assert.isTrue(receipt.success)
        assert.strictEqual(receipt.creditsRedeemed, String(PRICE))
        // The same receipt for the Python SDK's clients.
        assert.strictEqual(paid.result._meta.x402.transaction, receipt.transaction)
      }
      const forged = yield* send("tools/call", {
        name: "forecast",
        arguments: {},
        _meta: { [InBand.PAYMENT_META_KEY]: "forged" }
      })
      assert.isTrue(forged.result.isError)
      assert.strictEqual(forged.result.structuredContent.accepts[0].planId, PLAN)
      // Reconciled: two paid calls, two settlements, two runs; the unpaid and forged ones none.
      assert.deepStrictEqual(runs, ["tools/call", "tools/call"])
      assert.strictEqual(ledger.settlements.length, 2)
      assert.strictEqual(ledger.balance("0xsub", PLAN), 10 - 2 * PRICE)
    }))
})
