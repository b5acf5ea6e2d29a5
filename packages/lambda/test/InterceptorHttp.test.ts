// The interceptor in front of HTTP targets (AgentCore Runtime, passthrough): the `http` event flavour
// (base64 bodies, `gatewayRequest: null` in RESPONSE), streamed answers (one RESPONSE call per event
// with an id), and MCP targets whose RESPONSE phase gets no request headers. The RESPONSE phase finds
// the call through the ledger, by the sealed id the target echoes; what it cannot match is withheld.
import { SettlementLedger } from "@effect-x402/core"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { AgentCoreEvents, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { captureLogs, forwardedOf, type Json, responseOf } from "./helpers.js"

const PAID = "the paid report"
const SEAL = Redacted.make("a seal key shared by every instance")

const result = (id: unknown, text = PAID, meta?: Record<string, unknown>) => ({
  jsonrpc: "2.0",
  id,
  result: { content: [{ type: "text", text }], ...(meta !== undefined ? { _meta: meta } : {}) }
})

/** One interceptor (an instance) over a shared ledger and seal key. */
const setup = (options: { readonly credits?: number; readonly sealKey?: Redacted.Redacted<string> } = {}) =>
  Effect.gen(function*() {
    const seeded = TestFacilitator.seeded({ planId: "plan-1", credits: options.credits ?? 20 })
    const store = yield* SettlementLedger.makeMemory()
    const instance = (sealKey: Redacted.Redacted<string> = options.sealKey ?? SEAL) => {
      const logs = captureLogs()
      const handler = interceptor({
        planId: "plan-1",
        credits: 2,
        requestSealKey: sealKey,
        layer: TestFacilitator.layer(seeded.ledger),
        services: Layer.merge(logs.layer, Layer.succeed(SettlementLedger.SettlementLedger, store))
      })
      const call = (event: unknown) =>
        Effect.promise(() => handler(event, AgentCoreEvents.context()) as Promise<unknown>)
      return { handler, logs, call }
    }
    return { ...seeded, store, instance }
  })

/** The REQUEST phase of a paid call: the request the target gets. */
const forwardPaid = (
  call: (event: unknown) => Effect.Effect<unknown>,
  token: string,
  options: AgentCoreEvents.RequestOptions = {}
) =>
  Effect.map(
    call(AgentCoreEvents.httpRequest({ token, tool: "report", id: "client-7", ...options })),
    (output) => {
      const forwarded = AgentCoreEvents.forwardedHttp(output)
      assert.isDefined(forwarded, "expected a forwarded request")
      return forwarded!
    }
  )

const answered = (output: unknown) => {
  const answer = AgentCoreEvents.answeredHttp(output)
  assert.isDefined(answer, "expected an answer")
  return answer!
}

/** The ledger row a forwarded id names (docs/protocol.md, "HTTP targets"). */
const ledgerKeyOf = (id: unknown): string =>
  typeof id === "number"
    ? `x402_fwd_${id}`
    : Buffer.from(String(id).split(".")[1], "base64url").toString("utf8")

const header = (headers: Record<string, string>, name: string) =>
  Object.entries(headers).find(([key]) => key.toLowerCase() === name)?.[1]

describe("interceptor: HTTP targets", () => {
  it.effect("REQUEST forwards a base64 body under a sealed id, without the token; the ledger keeps no token in clear", () =>
    Effect.gen(function*() {
      const { instance, store, token } = yield* setup()
      const { call } = instance()
      const forwarded = yield* forwardPaid(call, token)
      const id = forwarded.body.id as string
      assert.match(id, /^x402:p\./)
      assert.strictEqual(forwarded.body.method, "tools/call")
      assert.isUndefined(header(forwarded.headers, "payment-signature"))
      assert.notInclude(JSON.stringify(forwarded), token)
      assert.isDefined(header(forwarded.headers, "x-nvm-agent-request-id"))
      const entry = Option.getOrThrow(yield* store.get(ledgerKeyOf(id)))
      assert.strictEqual(entry.state, "verified")
      assert.isString(entry.sealed)
      assert.notInclude(JSON.stringify(entry), token)
    }))

  it.effect("RESPONSE (gatewayRequest null) settles once through the ledger: receipt header, _meta.x402, the caller's id", () =>
    Effect.gen(function*() {
      const { instance, ledger, store, token } = yield* setup()
      const { call } = instance()
      const forwarded = yield* forwardPaid(call, token)
      const out = answered(
        yield* call(AgentCoreEvents.httpResponse({ body: result(forwarded.body.id, PAID, { creditsToCharge: 3 }) }))
      )
      const body: Json = JSON.parse(out.text!)
      assert.strictEqual(body.id, "client-7")
      assert.strictEqual(body.result.content[0].text, PAID)
      assert.isDefined(header(out.headers, "payment-response"))
      assert.isDefined(body.result._meta.x402)
      assert.deepStrictEqual(ledger.settlements.map((s) => s.credits), [3])
      const entry = Option.getOrThrow(yield* store.get(ledgerKeyOf(forwarded.body.id)))
      assert.strictEqual(entry.state, "settled")
      // The sealed token is gone once the attempt ended.
      assert.isUndefined(entry.sealed)
    }))

  it.effect("a small numeric caller id is forwarded as a number (numeric-only JSON-RPC servers) and restored", () =>
    Effect.gen(function*() {
      const { instance, ledger, token } = yield* setup()
      const { call } = instance()
      const forwarded = yield* forwardPaid(call, token, { id: 3 })
      const id = forwarded.body.id as number
      assert.isTrue(Number.isSafeInteger(id) && id >= 2 ** 52)
      const out = answered(yield* call(AgentCoreEvents.httpResponse({ body: result(id) })))
      assert.strictEqual(JSON.parse(out.text!).id, 3)
      assert.strictEqual(ledger.settlements.length, 1)
      // Another number in the paid range names no row; a free-range number with a wrong tag is no call.
      for (const forged of [id + 2 ** 20, 2 ** 52 + 3, 7 * 2 ** 20 + 3]) {
        const text = answered(yield* call(AgentCoreEvents.httpResponse({ body: result(forged) }))).text!
        assert.notInclude(text, PAID)
      }
      assert.strictEqual(ledger.settlements.length, 1)
    }))

  it.effect("a replayed RESPONSE is answered with the one receipt and never settles again", () =>
    Effect.gen(function*() {
      const { instance, ledger, token } = yield* setup()
      const { call } = instance()
      const forwarded = yield* forwardPaid(call, token)
      const event = AgentCoreEvents.httpResponse({ body: result(forwarded.body.id) })
      const first = answered(yield* call(event))
      const again = answered(yield* call(event))
      assert.strictEqual(ledger.settlements.length, 1)
      assert.strictEqual(header(again.headers, "payment-response"), header(first.headers, "payment-response"))
      assert.include(again.text!, PAID)
    }))

  it.effect("the other instance settles a call this one verified (shared ledger and seal key); another key never", () =>
    Effect.gen(function*() {
      const { instance, ledger, token } = yield* setup()
      const a = instance()
      const b = instance()
      const forwarded = yield* forwardPaid(a.call, token)
      const stranger = instance(Redacted.make("another key"))
      const refused = answered(yield* stranger.call(AgentCoreEvents.httpResponse({ body: result(forwarded.body.id) })))
      assert.notInclude(refused.text!, PAID)
      assert.strictEqual(ledger.settlements.length, 0)
      const out = answered(yield* b.call(AgentCoreEvents.httpResponse({ body: result(forwarded.body.id) })))
      assert.include(out.text!, PAID)
      assert.strictEqual(ledger.settlements.length, 1)
    }))

  it.effect("an answer no verified REQUEST forwarded is withheld: a foreign id, a forged or unknown sealed id", () =>
    Effect.gen(function*() {
      const { instance, ledger, token } = yield* setup()
      const { call, logs } = instance()
      const forwarded = yield* forwardPaid(call, token)
      const id = forwarded.body.id as string
      const forged = [
        "client-7",
        7,
        null,
        `${id.slice(0, -4)}AAAA`,
        id.replace(/^x402:p\.[^.]+/, `x402:p.${Buffer.from("x402_someone-else").toString("base64url")}`),
        "x402:f.bnVsbA.not-a-seal"
      ]
      for (const candidate of forged) {
        const out = answered(yield* call(AgentCoreEvents.httpResponse({ body: result(candidate) })))
        assert.notInclude(out.text!, PAID, `released for id ${JSON.stringify(candidate)}`)
      }
      // The target's plain text (not JSON-RPC) is withheld too, and a 2xx without a body (payloadFilter).
      assert.notInclude(answered(yield* call(AgentCoreEvents.httpResponse({ body: PAID }))).text!, PAID)
      assert.isNotNull(answered(yield* call(AgentCoreEvents.httpResponse({ body: null }))).text)
      assert.strictEqual(ledger.settlements.length, 0)
      assert.isTrue(logs.lines.some((line) => line.includes("output withheld")))
      assert.isFalse(logs.lines.some((line) => line.includes(token)))
    }))

  it.effect("explicit errors pass through with the caller's id, unsettled", () =>
    Effect.gen(function*() {
      const { instance, ledger, token } = yield* setup()
      const { call } = instance()
      const forwarded = yield* forwardPaid(call, token)
      const out = answered(
        yield* call(AgentCoreEvents.httpResponse({
          body: {
            jsonrpc: "2.0",
            id: forwarded.body.id,
            result: { isError: true, content: [{ type: "text", text: "no" }] }
          }
        }))
      )
      assert.strictEqual(JSON.parse(out.text!).id, "client-7")
      assert.strictEqual(ledger.settlements.length, 0)
    }))

  it.effect("free methods get a sealed id restored on the way back; a caller's reserved id is refused", () =>
    Effect.gen(function*() {
      const { instance, ledger } = yield* setup()
      const { call } = instance()
      const forwarded = AgentCoreEvents.forwardedHttp(
        yield* call(AgentCoreEvents.httpRequest({ method: "tools/list", id: 5 }))
      )!
      // A small numeric id stays a number (some JSON-RPC servers take no other), tagged.
      assert.isNumber(forwarded.body.id)
      assert.notStrictEqual(forwarded.body.id, 5)
      const out = answered(
        yield* call(
          AgentCoreEvents.httpResponse({ body: { jsonrpc: "2.0", id: forwarded.body.id, result: { tools: [] } } })
        )
      )
      assert.deepStrictEqual(JSON.parse(out.text!), { jsonrpc: "2.0", id: 5, result: { tools: [] } })
      const reserved = answered(yield* call(AgentCoreEvents.httpRequest({ method: "tools/list", id: "x402:f.x.y" })))
      assert.include(reserved.text!, "reserved id")
      // An unknown method is never forwarded.
      assert.include(answered(yield* call(AgentCoreEvents.httpRequest({ method: "Tools/Call" }))).text!, "-32601")
      assert.strictEqual(ledger.settlements.length, 0)
    }))

  it.effect("an event that is not base64 is refused, never forwarded", () =>
    Effect.gen(function*() {
      const { instance } = yield* setup()
      const { call } = instance()
      const out = yield* call({
        interceptorInputVersion: "1.0",
        http: { gatewayRequest: { path: "/mcp", httpMethod: "POST", body: "{not base64}" } }
      })
      assert.isUndefined(AgentCoreEvents.forwardedHttp(out))
      assert.isDefined(AgentCoreEvents.answeredHttp(out))
    }))
})

describe("interceptor: streamed answers (isStreamingResponse)", () => {
  it.effect("one RESPONSE call per event with an id: requests pass, the result settles once, replays and reorderings never again", () =>
    Effect.gen(function*() {
      const { instance, ledger, token } = yield* setup()
      const { call } = instance()
      const forwarded = yield* forwardPaid(call, token)
      const id = forwarded.body.id
      const events = [
        { jsonrpc: "2.0", id: "srv-1", method: "sampling/createMessage", params: {} },
        result(id),
        result(id)
      ]
      const outs: Array<string> = []
      for (const event of [...events, events[1], events[0]]) {
        outs.push(answered(yield* call(AgentCoreEvents.httpResponse({ body: event, streaming: true }))).text!)
      }
      assert.strictEqual(ledger.settlements.length, 1)
      assert.strictEqual(JSON.parse(outs[0]).method, "sampling/createMessage")
      for (const text of outs.slice(1, 4)) {
        const body: Json = JSON.parse(text)
        assert.strictEqual(body.id, "client-7")
        // The receipt travels in the result event itself (only the first call may set headers).
        assert.isDefined(body.result._meta.x402)
      }
    }))

  it.effect("a settlement refused mid-stream replaces the result event; a replay of it is still withheld", () =>
    Effect.gen(function*() {
      const { instance, ledger, store, token } = yield* setup({ credits: 3 })
      const { call } = instance()
      // Verified for 2 on a balance of 3; the result event asks for 5, which the backend refuses.
      const forwarded = yield* forwardPaid(call, token)
      const event = AgentCoreEvents.httpResponse({
        body: result(forwarded.body.id, PAID, { creditsToCharge: 5 }),
        streaming: true
      })
      for (let i = 0; i < 2; i++) {
        const text = answered(yield* call(event)).text!
        assert.notInclude(text, PAID)
        assert.strictEqual(JSON.parse(text).id, "client-7")
      }
      assert.strictEqual(ledger.settlements.length, 0)
      const entry = Option.getOrThrow(yield* store.get(ledgerKeyOf(forwarded.body.id)))
      assert.strictEqual(entry.state, "rejected")
    }))
})

describe("interceptor: MCP targets without request headers in RESPONSE (passRequestHeaders: false)", () => {
  it.effect("REQUEST (with headers) seals the call's id; RESPONSE (no headers) settles it through the ledger", () =>
    Effect.gen(function*() {
      const seeded = TestFacilitator.seeded({ planId: "plan-1", credits: 20 })
      const logs = captureLogs()
      const handler = interceptor({
        planId: "plan-1",
        requestSealKey: SEAL,
        passRequestHeaders: false,
        layer: TestFacilitator.layer(seeded.ledger),
        services: Layer.merge(logs.layer, SettlementLedger.layerMemory())
      })
      const ctx = AgentCoreEvents.context()
      const forwarded = forwardedOf(
        yield* Effect.promise(() => handler(AgentCoreEvents.request({ token: seeded.token, tool: "report" }), ctx))
      )
      const id = (forwarded.body as Json).id
      assert.match(id, /^x402:p\./)
      const out = yield* Effect.promise(() =>
        handler(
          AgentCoreEvents.response({ tool: "report", withoutHeaders: true, responseBody: result(id) }),
          ctx
        )
      )
      const body: Json = responseOf(out).body
      assert.strictEqual(body.id, "req-1")
      assert.include(JSON.stringify(body), PAID)
      assert.strictEqual(seeded.ledger.settlements.length, 1)
      // The same output without the sealed id (the target dropped it) is withheld, as before.
      const bare = yield* Effect.promise(() =>
        handler(AgentCoreEvents.response({ tool: "report", withoutHeaders: true, result: result("req-1").result }), ctx)
      )
      assert.notInclude(JSON.stringify(responseOf(bare).body), PAID)
      assert.strictEqual(seeded.ledger.settlements.length, 1)
    }))

  it.effect("without a shared ledger and seal key it says so, once per cold start", () =>
    Effect.gen(function*() {
      const seeded = TestFacilitator.seeded({ planId: "plan-1", credits: 20 })
      const logs = captureLogs()
      const saved = { key: process.env.X402_REQUEST_SEAL_KEY, api: process.env.NVM_API_KEY }
      delete process.env.X402_REQUEST_SEAL_KEY
      delete process.env.NVM_API_KEY
      const handler = interceptor({
        planId: "plan-1",
        passRequestHeaders: false,
        layer: TestFacilitator.layer(seeded.ledger),
        services: logs.layer
      })
      if (saved.key !== undefined) process.env.X402_REQUEST_SEAL_KEY = saved.key
      if (saved.api !== undefined) process.env.NVM_API_KEY = saved.api
      for (let i = 0; i < 3; i++) {
        yield* Effect.promise(() =>
          handler(AgentCoreEvents.request({ method: "tools/list" }), AgentCoreEvents.context())
        )
      }
      const warnings = logs.lines.filter((line) => line.includes("no shared SettlementLedger"))
      assert.strictEqual(warnings.length, 1)
      assert.include(warnings[0], "no shared seal key")
    }))
})
