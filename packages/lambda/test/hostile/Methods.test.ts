// Hostile suite, invariant 3 (RELIABILITY.md, "Money-tight"): the paid handler runs only when paid.
// Method names an attacker bends (case, whitespace, zero-width and look-alike characters, prefixes,
// suffixes, arbitrary text) never run `requiresPayment`'s handler nor reach the interceptor's target
// unpaid, unless the operator declared that exact method free; an undeclared tool is refused before
// any verify. Every case runs directly with `AgentCoreEvents` and through `LocalGateway` over real
// HTTP, and is reconciled against the `TestFacilitator` ledger: output released implies a settlement
// or a method declared free.
import { Adapter } from "@effect-x402/core"
import type { AgentCore } from "@effect-x402/lambda"
import { AgentCore as AgentCoreModule } from "@effect-x402/lambda"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { AgentCoreEvents, LocalGateway, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import type { Layer } from "effect"
import { Effect, FastCheck as fc, Logger } from "effect"
import { bodyOf, forwardedOf, type Json, receiptOf, responseOf } from "../helpers.js"

const PLAN = "plan-1"
const PRICE = 3
const MARKER = "PAID-OUTPUT-7f3a"
const quiet = Logger.replace(Logger.defaultLogger, Logger.none) as Layer.Layer<never>
const ctx = AgentCoreEvents.context()

const TOOLS = {
  forecast: { description: "The weather", inputSchema: { type: "object" as const } },
  report: {
    description: "A report, 1 credit per day",
    inputSchema: { type: "object" as const, properties: { days: { type: "integer" } } },
    credits: (event: AgentCore.InterceptorInput) => Number(AgentCoreModule.toolCallOf(event)?.arguments.days ?? 1)
  }
}

/** Names an attacker sends instead of `tools/call`, and methods nobody declared. */
const HOSTILE_METHODS: ReadonlyArray<string> = [
  "Tools/Call",
  "TOOLS/CALL",
  "tools/Call",
  "tools/call ",
  " tools/call",
  "tools/call\n",
  "tools/call\t",
  "tools/call\u200b",
  "\u200btools/call",
  "tools\u200b/call",
  "tools/call\u00a0",
  "tools/call\ufeff",
  "tools/call\u2060",
  "tools/call\u0000",
  "ｔｏｏｌｓ/call",
  "tооls/call", // Cyrillic о
  "tools//call",
  "tools/call/",
  "tools/call/x",
  "/tools/call",
  "tools\\/call",
  "tools.call",
  "tools/calls",
  "x/anything",
  "resources/read",
  "prompts/get",
  "completion/complete",
  "sampling/createMessage",
  "Tools/List",
  "tools/list ",
  "Initialize",
  "PING",
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  ""
]

/** A `tools/call`-shaped body with any method name. */
const bodyWith = (method: string, id: string | number = 1, tool = "forecast") => ({
  jsonrpc: "2.0",
  id,
  method,
  params: { name: tool, arguments: { days: 2 } }
})

const decorator = (ledger: TestFacilitator.Ledger, extra: { readonly freeMethods?: ReadonlyArray<string> } = {}) => {
  const runs: Array<string> = []
  const handler = requiresPayment({
    planId: PLAN,
    credits: PRICE,
    tools: TOOLS,
    layer: TestFacilitator.layer(ledger),
    services: quiet,
    ...extra
  })((event) => {
    // A handler that ignores the method, as many do: whatever reaches it hands out paid output.
    runs.push(String(Adapter.own(event.mcp.gatewayRequest.body, "method")))
    return { content: [{ type: "text", text: MARKER }] }
  })
  return { handler, runs }
}

const interceptorOf = (ledger: TestFacilitator.Ledger, extra: { readonly freeMethods?: ReadonlyArray<string> } = {}) =>
  interceptor({ planId: PLAN, credits: PRICE, layer: TestFacilitator.layer(ledger), services: quiet, ...extra })

const invoke = (
  handler: (event: unknown, context: typeof ctx) => Promise<AgentCore.InterceptorOutput>,
  event: unknown
) => Effect.promise(() => handler(event, ctx))

const requestEvent = (method: string, token?: string, id: string | number = 1, tool = "forecast") =>
  AgentCoreEvents.request({ body: bodyWith(method, id, tool), ...(token !== undefined ? { token } : {}) })

const errorCodeOf = (output: AgentCore.InterceptorOutput): number | undefined => bodyOf(output)?.error?.code

describe("hostile: requiresPayment runs its handler only when paid (direct events)", () => {
  it.effect("every bent method name, with or without a token: -32601, nothing run, nothing verified", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 1_000 })
      const { handler, runs } = decorator(ledger)
      for (const method of HOSTILE_METHODS) {
        for (const caller of [undefined, token]) {
          const output = yield* invoke(handler, requestEvent(method, caller))
          const label = JSON.stringify(method)
          assert.notInclude(JSON.stringify(output), MARKER, label)
          assert.strictEqual(errorCodeOf(output), -32601, label)
          assert.strictEqual(responseOf(output).statusCode, 200, label)
        }
      }
      assert.deepStrictEqual(runs, [])
      assert.deepStrictEqual(ledger.calls, [], "the facilitator was called for a method nobody pays for")
    }))

  it.effect("initialize, ping, tools/list and notifications are answered by the library, never the handler", () =>
    Effect.gen(function*() {
      const { ledger } = TestFacilitator.seeded({ planId: PLAN, credits: 10 })
      const { handler, runs } = decorator(ledger)
      const init = yield* invoke(
        handler,
        AgentCoreEvents.request({
          body: { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-06-18" } }
        })
      )
      assert.strictEqual(bodyOf(init).result.protocolVersion, "2025-06-18")
      assert.deepStrictEqual(bodyOf(init).result.capabilities, { tools: { listChanged: false } })
      assert.deepStrictEqual(bodyOf(yield* invoke(handler, requestEvent("ping"))).result, {})
      const listed = bodyOf(yield* invoke(handler, requestEvent("tools/list"))).result.tools
      assert.deepStrictEqual(listed, [
        {
          name: "forecast",
          description: "The weather",
          inputSchema: { type: "object" },
          _meta: { "x402/price": { planIds: [PLAN], credits: PRICE } }
        },
        {
          name: "report",
          description: "A report, 1 credit per day",
          inputSchema: { type: "object", properties: { days: { type: "integer" } } },
          _meta: { "x402/price": { planIds: [PLAN], dynamic: true } }
        }
      ])
      const note = yield* invoke(
        handler,
        AgentCoreEvents.request({ body: { jsonrpc: "2.0", method: "notifications/initialized" } })
      )
      assert.strictEqual(responseOf(note).statusCode, 202)
      assert.isNull(responseOf(note).body)
      // A "notification" with an id is a request nobody declared.
      assert.strictEqual(errorCodeOf(yield* invoke(handler, requestEvent("notifications/initialized"))), -32601)
      assert.deepStrictEqual(runs, [])
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it.effect("a tools/call of an undeclared tool is refused (-32602) before any verify; declared tools are charged", () =>
    Effect.gen(function*() {
      const { ledger, subscriber, token } = TestFacilitator.seeded({ planId: PLAN, credits: 100 })
      const { handler, runs } = decorator(ledger)
      const undeclared = ["Forecast", "forecast ", "forecast\u200b", "FORECAST", "Target___Forecast", "other", "___"]
      for (const tool of undeclared) {
        const output = yield* invoke(handler, requestEvent("tools/call", token, 1, tool))
        assert.strictEqual(errorCodeOf(output), -32602, JSON.stringify(tool))
        assert.notInclude(JSON.stringify(output), MARKER)
      }
      for (const params of [undefined, {}, { name: 7 }, { name: "" }, { name: ["forecast"] }]) {
        const output = yield* invoke(
          handler,
          AgentCoreEvents.request({ token, body: { jsonrpc: "2.0", id: 2, method: "tools/call", params } })
        )
        assert.strictEqual(errorCodeOf(output), -32602, JSON.stringify(params))
      }
      assert.deepStrictEqual(runs, [])
      assert.deepStrictEqual(ledger.calls, [], "an undeclared tool reached the facilitator")

      // The declared ones: with and without the gateway's target prefix, at their own prices.
      for (const tool of ["forecast", "Target___forecast"]) {
        const paid = yield* invoke(handler, requestEvent("tools/call", token, 3, tool))
        assert.include(JSON.stringify(paid), MARKER)
        assert.strictEqual(receiptOf(paid).creditsRedeemed, String(PRICE))
      }
      const report = yield* invoke(handler, requestEvent("tools/call", token, 4, "report"))
      assert.strictEqual(receiptOf(report).creditsRedeemed, "2", "the dynamic per-tool price")
      assert.deepStrictEqual(ledger.settlements.map((s) => s.credits), [PRICE, PRICE, 2])
      assert.strictEqual(ledger.balance(subscriber, PLAN), 100 - 2 * PRICE - 2)
      assert.deepStrictEqual(runs, ["tools/call", "tools/call", "tools/call"])
    }))

  it.effect("an unpaid tools/call of a declared tool: the payment-required answer, the handler not run", () =>
    Effect.gen(function*() {
      const { ledger } = TestFacilitator.seeded({ planId: PLAN, credits: 10 })
      const { handler, runs } = decorator(ledger)
      const output = yield* invoke(handler, requestEvent("tools/call"))
      assert.strictEqual(JSON.parse(bodyOf(output).result.content[0].text).code, 402)
      assert.deepStrictEqual(runs, [])
    }))

  it.effect("a declared free method runs unpaid by its exact name only", () =>
    Effect.gen(function*() {
      const { ledger } = TestFacilitator.seeded({ planId: PLAN, credits: 10 })
      const { handler, runs } = decorator(ledger, { freeMethods: ["resources/list", "custom/*"] })
      assert.include(JSON.stringify(yield* invoke(handler, requestEvent("resources/list"))), MARKER)
      assert.include(JSON.stringify(yield* invoke(handler, requestEvent("custom/anything"))), MARKER)
      for (
        const method of ["Resources/List", "resources/list ", "resources/list\u200b", "Custom/x", "custom", "custom/"]
      ) {
        const output = yield* invoke(handler, requestEvent(method))
        if (method === "custom/") {
          // The family's bare prefix is in the family: declared free by the operator.
          assert.include(JSON.stringify(output), MARKER)
          continue
        }
        assert.strictEqual(errorCodeOf(output), -32601, JSON.stringify(method))
      }
      assert.deepStrictEqual(runs, ["resources/list", "custom/anything", "custom/"])
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it("refuses a wrong declaration at cold start", () => {
    const { ledger } = TestFacilitator.seeded({ planId: PLAN, credits: 1 })
    const layer = TestFacilitator.layer(ledger)
    assert.throws(() => requiresPayment({ planId: PLAN, layer, freeMethods: [""] }), RangeError)
    assert.throws(
      () => requiresPayment({ planId: PLAN, layer, tools: { t: { inputSchema: { type: "string" } as never } } }),
      RangeError
    )
    assert.throws(() =>
      requiresPayment({ planId: PLAN, layer, tools: { t: { inputSchema: { type: "object" }, credits: -1 } } })
    )
  })
})

describe("hostile: the interceptor forwards only billable (paid) or free methods (direct events)", () => {
  it.effect("REQUEST: every bent method name is answered -32601 and never forwarded; the free set is forwarded", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 1_000 })
      const handler = interceptorOf(ledger)
      for (const method of HOSTILE_METHODS) {
        for (const caller of [undefined, token]) {
          const output = yield* invoke(handler, requestEvent(method, caller))
          assert.isUndefined(output.mcp.transformedGatewayRequest, `${JSON.stringify(method)} was forwarded`)
          assert.strictEqual(errorCodeOf(output), -32601, JSON.stringify(method))
        }
      }
      assert.deepStrictEqual(ledger.calls, [])
      for (const method of AgentCoreModule.DEFAULT_FREE_METHODS.filter((m) => !m.endsWith("/*"))) {
        forwardedOf(yield* invoke(handler, requestEvent(method)))
      }
      forwardedOf(
        yield* invoke(handler, AgentCoreEvents.request({ body: { jsonrpc: "2.0", method: "notifications/x" } }))
      )
      // Content-returning methods only when the operator says so.
      const open = interceptorOf(ledger, { freeMethods: [...AgentCoreModule.DEFAULT_FREE_METHODS, "resources/read"] })
      forwardedOf(yield* invoke(open, requestEvent("resources/read")))
      assert.strictEqual(errorCodeOf(yield* invoke(open, requestEvent("Resources/Read"))), -32601)
      assert.deepStrictEqual(ledger.calls, [])
    }))

  it.effect("RESPONSE: a target's answer to a bent method is withheld (-32601), never released free", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 1_000 })
      const handler = interceptorOf(ledger)
      for (const method of HOSTILE_METHODS) {
        for (const caller of [undefined, token]) {
          const output = yield* invoke(
            handler,
            AgentCoreEvents.response({
              body: bodyWith(method),
              ...(caller !== undefined ? { token: caller } : {}),
              result: { content: [{ type: "text", text: MARKER }] }
            })
          )
          assert.notInclude(JSON.stringify(output), MARKER, JSON.stringify(method))
          assert.strictEqual(errorCodeOf(output), -32601, JSON.stringify(method))
        }
      }
      assert.deepStrictEqual(ledger.calls, [])
      assert.deepStrictEqual(ledger.settlements, [])
    }))
})

// ---------------------------------------------------------------------------
// Through LocalGateway over real HTTP
// ---------------------------------------------------------------------------

interface Seen {
  readonly status: number
  readonly text: string
}

const post = (url: string, body: unknown, token?: string) =>
  Effect.promise(async (): Promise<Seen> => {
    const response = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...(token !== undefined ? { "payment-signature": token } : {})
      },
      body: JSON.stringify(body)
    })
    return { status: response.status, text: await response.text() }
  })

/** An MCP target that answers every method it is sent with paid output, as a lenient server might. */
const lenientTarget = (hits: Array<string>): LocalGateway.Target => (request) => {
  const body: Json = request.body
  hits.push(String(body?.method))
  return {
    statusCode: 200,
    headers: { "Content-Type": "application/json" },
    body: { jsonrpc: "2.0", id: body?.id ?? null, result: { content: [{ type: "text", text: MARKER }] } }
  }
}

describe("hostile: bent methods through LocalGateway over HTTP", () => {
  it.scopedLive("requiresPayment: no bent method releases output; the ledger shows one settlement per paid call", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 1_000 })
      const { handler, runs } = decorator(ledger)
      const gateway = yield* LocalGateway.make({ handler })
      let released = 0
      for (const method of HOSTILE_METHODS.filter((m) => m.length > 0)) {
        for (const caller of [undefined, token]) {
          const seen = yield* post(gateway.url, bodyWith(method), caller)
          if (seen.text.includes(MARKER)) released++
          assert.notInclude(seen.text, MARKER, JSON.stringify(method))
        }
      }
      const paid = yield* post(gateway.url, bodyWith("tools/call"), token)
      if (paid.text.includes(MARKER)) released++
      assert.deepStrictEqual(runs, ["tools/call"])
      // Reconciled: every output that went out was settled.
      assert.strictEqual(ledger.settlements.length, released)
      assert.strictEqual(released, 1)
    }))

  it.scopedLive("interceptor: no bent method reaches the target; only the paid call and free methods do", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 1_000 })
      const hits: Array<string> = []
      const gateway = yield* LocalGateway.make({ interceptor: interceptorOf(ledger), target: lenientTarget(hits) })
      let released = 0
      for (const method of HOSTILE_METHODS.filter((m) => m.length > 0)) {
        for (const caller of [undefined, token]) {
          const seen = yield* post(gateway.url, bodyWith(method), caller)
          if (seen.text.includes(MARKER)) released++
        }
      }
      assert.deepStrictEqual(hits, [], "a bent method reached the target")
      assert.strictEqual(released, 0)
      yield* post(gateway.url, bodyWith("tools/list"))
      const paid = yield* post(gateway.url, bodyWith("tools/call"), token)
      assert.include(paid.text, MARKER)
      assert.deepStrictEqual(hits, ["tools/list", "tools/call"])
      assert.strictEqual(ledger.settlements.length, 1)
    }))
})

// ---------------------------------------------------------------------------
// Properties over generated method names
// ---------------------------------------------------------------------------

const REAL = [
  "tools/call",
  "tools/list",
  "initialize",
  "ping",
  "resources/list",
  "resources/read",
  "prompts/get",
  "notifications/initialized"
]
const ODD_CHARS = [
  " ",
  "\t",
  "\n",
  "\r",
  "\u0000",
  "\u00a0",
  "\u200b",
  "\u200c",
  "\u200d",
  "\u2060",
  "\ufeff",
  "\u202e",
  "/",
  "\\",
  ".",
  "%20"
]
const LOOK_ALIKES: Record<string, ReadonlyArray<string>> = {
  o: ["о", "ο", "０", "ｏ"],
  l: ["ⅼ", "ӏ", "1", "I"],
  c: ["с", "ϲ", "ｃ"],
  a: ["а", "ａ"],
  s: ["ѕ", "ｓ"],
  t: ["ｔ", "т"],
  "/": ["∕", "⁄", "／"]
}

/** Real MCP method names bent by case, whitespace, invisible and look-alike characters, affixes. */
const bentMethod: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...REAL).chain((name) =>
    fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length }).map((upper) =>
      [...name].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join("")
    )
  ),
  fc.tuple(fc.constantFrom(...REAL), fc.constantFrom(...ODD_CHARS), fc.nat(), fc.boolean()).map(
    ([name, odd, at, twice]) => {
      const i = at % (name.length + 1)
      const bent = name.slice(0, i) + odd + name.slice(i)
      return twice ? bent + odd : bent
    }
  ),
  fc.tuple(fc.constantFrom(...REAL.filter((name) => [...name].some((c) => c in LOOK_ALIKES))), fc.nat(), fc.nat()).map(
    ([name, at, pick]) => {
      const positions = [...name].flatMap((c, i) => (LOOK_ALIKES[c] !== undefined ? [i] : []))
      const i = positions[at % positions.length]
      const options = LOOK_ALIKES[name[i]]
      return name.slice(0, i) + options[pick % options.length] + name.slice(i + 1)
    }
  ),
  fc.tuple(fc.string({ maxLength: 6 }), fc.constantFrom(...REAL), fc.string({ maxLength: 6 })).map(
    ([before, name, after]) => before + name + after
  ),
  fc.constantFrom(...REAL),
  fc.string(),
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: "binary" })
)

describe("hostile: properties over generated method names", () => {
  const { ledger, token } = TestFacilitator.seeded({ planId: PLAN, credits: 1_000_000 })
  const free = ["resources/list"]
  const { handler, runs } = decorator(ledger, { freeMethods: free })
  const intercept = interceptorOf(ledger)
  const freeForInterceptor = new Set(AgentCoreModule.DEFAULT_FREE_METHODS.filter((m) => !m.endsWith("/*")))
  const forwardsFree = (method: string) => freeForInterceptor.has(method) || method.startsWith("notifications/")

  it.live.prop(
    "requiresPayment: a generated method runs the handler only as the exact billable call, paid, or a declared free one",
    [bentMethod, fc.boolean()],
    ([method, pays]) =>
      Effect.gen(function*() {
        runs.length = 0
        const settlements = ledger.settlements.length
        const output = yield* invoke(handler, requestEvent(method, pays ? token : undefined))
        const text = JSON.stringify(output)
        const billable = method === "tools/call"
        const ran = runs.length === 1
        if (free.includes(method)) {
          assert.isTrue(ran, "a declared free method did not run")
        } else if (billable && pays) {
          // A paid call: the output goes out only with its settlement (or an explicit error).
          assert.strictEqual(ran, true)
        } else {
          assert.isFalse(ran, `${JSON.stringify(method)} ran the handler unpaid`)
          assert.notInclude(text, MARKER)
        }
        if (text.includes(MARKER) && !free.includes(method)) {
          assert.strictEqual(ledger.settlements.length, settlements + 1, "output released without a settlement")
        } else if (!text.includes(MARKER)) {
          assert.strictEqual(ledger.settlements.length, settlements)
        }
      }),
    { fastCheck: { numRuns: 300, seed: 3 } }
  )

  it.live.prop(
    "interceptor: a generated method is forwarded only as the exact billable call (verified) or a free one",
    [bentMethod, fc.boolean()],
    ([method, pays]) =>
      Effect.gen(function*() {
        const output = yield* invoke(intercept, requestEvent(method, pays ? token : undefined))
        const forwarded = output.mcp.transformedGatewayRequest !== undefined
        if (forwardsFree(method)) assert.isTrue(forwarded, `${JSON.stringify(method)} is free but was not forwarded`)
        else if (method !== "tools/call") assert.isFalse(forwarded, `${JSON.stringify(method)} was forwarded`)
        // The RESPONSE phase never releases a paid answer to a method it does not know.
        const answer = yield* invoke(
          intercept,
          AgentCoreEvents.response({ body: bodyWith(method), result: { content: [{ type: "text", text: MARKER }] } })
        )
        if (!forwardsFree(method)) assert.notInclude(JSON.stringify(answer), MARKER, JSON.stringify(method))
      }),
    { fastCheck: { numRuns: 300, seed: 5 } }
  )

  it.scopedLive("through LocalGateway over HTTP: sampled bent methods never release output unsettled", () =>
    Effect.gen(function*() {
      const hits: Array<string> = []
      const { ledger: own, token: paying } = TestFacilitator.seeded({ planId: PLAN, credits: 10_000 })
      const { handler: paid, runs: ran } = decorator(own)
      const decoratorGateway = yield* LocalGateway.make({ handler: paid })
      const interceptorGateway = yield* LocalGateway.make({
        interceptor: interceptorOf(own),
        target: lenientTarget(hits)
      })
      const methods = fc.sample(bentMethod.filter((m) => m !== "tools/call" && m.length > 0), { numRuns: 60, seed: 8 })
      for (const method of methods) {
        for (const gateway of [decoratorGateway, interceptorGateway]) {
          const seen = yield* post(gateway.url, bodyWith(method), paying)
          if (!forwardsFree(method) || gateway === decoratorGateway) {
            assert.notInclude(seen.text, MARKER, JSON.stringify(method))
          }
        }
      }
      assert.deepStrictEqual(ran, [])
      assert.isTrue(
        hits.every(forwardsFree),
        `reached the target: ${JSON.stringify(hits.filter((m) => !forwardsFree(m)))}`
      )
      assert.deepStrictEqual(own.settlements, [])
    }))
})
