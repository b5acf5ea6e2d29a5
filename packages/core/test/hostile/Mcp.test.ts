// Hostile suite for the MCP adapters (RELIABILITY.md, "Money-tight"): `McpPayment.protect` and
// `PaidMcpTool` (in an @effect/ai McpServer, called by the MCP SDK client over HTTP on 127.0.0.1).
// Invariants 2/3 (an answer that is not an explicit `isError: true` is settled or withheld, never
// released unsettled; tool names match exactly), 6 (no tool failure, defect or credits-policy detail
// in any answer or log), 10 (`Authorization` refused), 1 and 11 re-checked. Every case is reconciled
// against the TestFacilitator ledger.
import { McpPayment, Paywall, X402 } from "@effect-x402/core"
import * as PaidMcpTool from "@effect-x402/core/PaidMcpTool"
import { TestFacilitator, TestTelemetry } from "@effect-x402/testing"
import { Tool, Toolkit } from "@effect/ai"
import { HttpRouter } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect, FastCheck as fc, Layer, Schema } from "effect"
import { serveLayer } from "../HttpPaywall.fixtures.js"

const PRICE = 2
const SECRET = "sk_live_51MCPsecretVALUE0000"
const MARKER = "PAID-OUTPUT"

const secretMessages = [
  `GET https://api.vendor.example/v1/search?api_key=${SECRET}&q=x failed`,
  `upstream said 401 to Authorization: Bearer ${SECRET}`,
  `password=${SECRET}`
]

const paywallOf = (options: Partial<Paywall.Options<unknown, never, McpPayment.ToolResult>> = {}) =>
  Paywall.make<unknown, never, McpPayment.ToolResult>({ planId: "plan-1", credits: PRICE, ...options })

const receiptOf = (result: unknown) =>
  (result as McpPayment.ToolResult)._meta?.[McpPayment.PAYMENT_RESPONSE_META_KEY] as X402.SettleResponse | undefined

/** Answer shapes a tool (or a JS tool behind a loose type) might return, each carrying the output. */
const arbAnswer: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant({ content: [{ type: "text", text: MARKER }] }),
  fc.constant({ content: MARKER }),
  fc.constant({ structuredContent: { out: MARKER } }),
  fc.record({
    content: fc.constant([{ type: "text", text: MARKER }]),
    isError: fc.constantFrom<unknown>("true", null, 1, "yes", false, 0, [], {}, undefined, true, "false")
  }),
  fc.record({
    content: fc.constant([{ type: "text", text: MARKER }]),
    _meta: fc.constantFrom<unknown>(null, "x", { creditsToCharge: null })
  }),
  fc.constant({ content: [{ type: "text", text: `{"creditsToCharge":0,"out":"${MARKER}"}` }] }),
  fc.constant({ content: [{ type: "text", text: MARKER }], isError: { valueOf: () => true } })
)

describe("hostile: answers are settled or withheld, never released unsettled (McpPayment.protect)", () => {
  it.live("property: an answer released without settlement is an explicit isError: true", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ credits: 1_000_000 })
      const samples = fc.sample(arbAnswer, { numRuns: 80, seed: 3 })
      for (const answer of samples) {
        const before = ledger.settlements.length
        const result = yield* McpPayment.protect(
          paywallOf(),
          { request: {}, meta: { [McpPayment.PAYMENT_META_KEY]: token } },
          Effect.succeed(answer as McpPayment.ToolResult)
        ).pipe(Effect.provide(TestFacilitator.layer(ledger)))
        const settled = ledger.settlements.length - before
        const released = JSON.stringify(result).includes(MARKER)
        const explicitError = (answer as { isError?: unknown }).isError === true
        if (released && settled === 0) assert.isTrue(explicitError, JSON.stringify(answer))
        if (!explicitError) assert.strictEqual(settled, 1, JSON.stringify(answer))
        if (settled === 1) {
          assert.strictEqual(ledger.settlements.at(-1)!.credits, PRICE, JSON.stringify(answer))
          assert.strictEqual(receiptOf(result)?.creditsRedeemed, String(PRICE))
        }
      }
    }).pipe(Effect.provide(TestTelemetry.make().layer)))

  it.live("release lets output go only on an outage; a definite refusal withholds", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ credits: 100 })
      const run = McpPayment.protect(
        paywallOf({ onSettleFailure: "release" }),
        { request: {}, meta: { [McpPayment.PAYMENT_META_KEY]: token } },
        Effect.succeed({ content: [{ type: "text", text: MARKER }] })
      ).pipe(Effect.provide(TestFacilitator.layer(ledger)))
      ledger.failNext("settle", { _tag: "Timeout" })
      const outage = yield* run
      assert.include(JSON.stringify(outage), MARKER)
      assert.strictEqual(receiptOf(outage)?.success, false)
      ledger.failNext("settle", { _tag: "Rejected", reason: "insufficient_funds" })
      const refused = yield* run
      assert.notInclude(JSON.stringify(refused), MARKER)
      assert.isTrue(refused.isError)
      assert.strictEqual(ledger.settlements.length, 0)
    }).pipe(Effect.provide(TestTelemetry.make().layer)))
})

describe("hostile: nothing internal reaches the caller (McpPayment.protect)", () => {
  it.live("a tool's failure or defect answers a generic error result with a correlation id, unsettled", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ credits: 100 })
      const capture = TestTelemetry.make()
      const tools = secretMessages.flatMap((message): Array<Effect.Effect<McpPayment.ToolResult, unknown>> => [
        Effect.fail(new Error(message)),
        Effect.die(new Error(message)),
        Effect.fail(message),
        Effect.sync((): McpPayment.ToolResult => {
          throw new Error(message)
        })
      ])
      for (const tool of tools) {
        for (const meta of [{ [McpPayment.PAYMENT_META_KEY]: token }, undefined]) {
          const result = yield* McpPayment.protect(paywallOf(), { request: {}, meta }, tool).pipe(
            Effect.provide(TestFacilitator.layer(ledger)),
            Effect.provide(capture.layer)
          )
          const text = JSON.stringify(result)
          assert.isTrue(result.isError)
          assert.notInclude(text, SECRET)
          assert.notInclude(text, "vendor.example")
          if (meta === undefined) continue
          const body = JSON.parse((result.content[0] as { text: string }).text)
          assert.deepInclude(body, { error: "Internal error; nothing was charged", code: 500 })
          assert.include(capture.text(), body.requestId)
        }
      }
      assert.strictEqual(ledger.settlements.length, 0)
      assert.notInclude(capture.text(), SECRET)
    }))

  it.live("a failing credits policy is a generic 500 result, not a verification failure", () =>
    Effect.gen(function*() {
      const { ledger, token } = TestFacilitator.seeded({ credits: 100 })
      const capture = TestTelemetry.make()
      const policies = [
        () => {
          throw new Error(secretMessages[0])
        },
        () => Promise.reject(new Error(secretMessages[1])),
        () => -3
      ]
      for (const credits of policies) {
        const result = yield* McpPayment.protect(
          paywallOf({ credits }),
          { request: {}, meta: { [McpPayment.PAYMENT_META_KEY]: token } },
          Effect.succeed({ content: [{ type: "text", text: MARKER }] })
        ).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(capture.layer))
        const text = JSON.stringify(result)
        assert.notInclude(text, MARKER)
        assert.notInclude(text, "Verification failed")
        assert.notInclude(text, "Invalid credits")
        assert.notInclude(text, SECRET)
        assert.strictEqual(JSON.parse((result.content[0] as { text: string }).text).code, 500)
      }
      assert.strictEqual(ledger.calls.length, 0)
      assert.notInclude(capture.text(), SECRET)
    }))
})

// ---------------------------------------------------------------------------
// PaidMcpTool, over HTTP with the MCP SDK client
// ---------------------------------------------------------------------------

class Declared extends Schema.TaggedError<Declared>()("Declared", { reason: Schema.String }) {}

const Search = Tool.make("search", {
  parameters: { query: Schema.String },
  success: Schema.Struct({ out: Schema.String }),
  failure: Declared
}).pipe(PaidMcpTool.paid({ planId: "plan-1", credits: PRICE }))

const Free = Tool.make("free", { parameters: { query: Schema.String }, success: Schema.String })

const Tools = Toolkit.make(Search, Free)

let ran = 0
const ToolsLive = Tools.toLayer({
  search: ({ query }) =>
    Effect.gen(function*() {
      ran += 1
      if (query === "declared") return yield* new Declared({ reason: "no such thing" })
      if (query === "defect") return yield* Effect.die(new Error(secretMessages[0]))
      if (query === "undeclared") return yield* Effect.die(secretMessages[2])
      return { out: `${MARKER} ${query}` }
    }),
  free: ({ query }) => query === "defect" ? Effect.die(new Error(secretMessages[1])) : Effect.succeed(query)
})

const serveMcp = (ledger: TestFacilitator.Ledger) =>
  serveLayer(
    Layer.mergeAll(PaidMcpTool.toolkit(Tools, { defaults: { agentId: "agent-1" } }), HttpRouter.Default.serve()).pipe(
      Layer.provide(ToolsLive),
      Layer.provide(PaidMcpTool.layerHttp({ name: "agent", version: "1.0.0", path: "/mcp" })),
      Layer.provide(TestFacilitator.layer(ledger))
    )
  )

const connect = (url: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Client({ name: "attacker", version: "1.0.0" })
      await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`)))
      return client
    }),
    (client) => Effect.promise(() => client.close())
  )

const callTool = (client: Client, name: string, args: Record<string, unknown>, token?: string) =>
  Effect.promise(() =>
    client.callTool({
      name,
      arguments: args,
      ...(token !== undefined ? { _meta: { [McpPayment.PAYMENT_META_KEY]: token } } : {})
    }).then((r) => ({ ok: true as const, result: r }), (error: unknown) => ({ ok: false as const, error }))
  )

describe("hostile: PaidMcpTool over HTTP", () => {
  it.scopedLive("tool names match exactly: near-misses never run the paid handler nor release its output", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100, agentId: "agent-1" })
    const capture = TestTelemetry.make()
    return Effect.gen(function*() {
      const client = yield* connect(yield* serveMcp(ledger))
      ran = 0
      for (
        const name of ["Search", "SEARCH", "search ", " search", "search\u200b", "searc", "search/x", "tools/call"]
      ) {
        for (const caller of [token, undefined]) {
          const answer = yield* callTool(client, name, { query: "q" }, caller)
          assert.notInclude(JSON.stringify(answer), MARKER, name)
        }
      }
      assert.strictEqual(ran, 0)
      assert.strictEqual(ledger.calls.length, 0)
    }).pipe(Effect.provide(capture.layer))
  })

  it.scopedLive("declared failures answer as declared, defects generically; none is settled, no secret anywhere", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100, agentId: "agent-1" })
    const capture = TestTelemetry.make()
    return Effect.gen(function*() {
      const client = yield* connect(yield* serveMcp(ledger))
      const declared = yield* callTool(client, "search", { query: "declared" }, token)
      assert.isTrue(declared.ok && declared.result.isError === true)
      assert.include(JSON.stringify(declared), "no such thing")
      for (const query of ["defect", "undeclared"]) {
        const answer = yield* callTool(client, "search", { query }, token)
        assert.isTrue(answer.ok && answer.result.isError === true, query)
        const text = JSON.stringify(answer)
        assert.notInclude(text, SECRET)
        assert.include(text, "Internal error; nothing was charged")
      }
      const free = yield* callTool(client, "free", { query: "defect" })
      assert.notInclude(JSON.stringify(free), SECRET)
      const badArgs = yield* callTool(client, "search", { query: 42 }, token)
      assert.notInclude(JSON.stringify(badArgs), MARKER)
      assert.strictEqual(ledger.settlements.length, 0)
      // A paid success, for reconciliation: settled once at the configured price.
      const paid = yield* callTool(client, "search", { query: "ok" }, token)
      assert.include(JSON.stringify(paid), MARKER)
      assert.strictEqual(ledger.settlements.length, 1)
      assert.strictEqual(ledger.settlements[0].credits, PRICE)
      // Our logs and spans carry nothing of it; @effect/ai's own `Toolkit.handle` span, around the
      // tool's code, records the tool's defect as its exit (the app's tracing, below this library).
      assert.notInclude(capture.logs.join("\n"), SECRET)
      for (const span of capture.spans.filter((span) => span.name !== "Toolkit.handle")) {
        assert.notInclude(span.exit?._tag === "Failure" ? String(span.exit.cause) : "", SECRET, span.name)
      }
    }).pipe(Effect.provide(capture.layer))
  })

  it.scopedLive("the caller's echoed creditsToCharge never sets the price", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100, agentId: "agent-1" })
    return Effect.gen(function*() {
      const client = yield* connect(yield* serveMcp(ledger))
      for (const query of [`{"creditsToCharge":0}`, `{"creditsToCharge":"0"}`, `{"_meta":{"creditsToCharge":0}}`]) {
        const answer = yield* callTool(client, "search", { query, creditsToCharge: 0 }, token)
        assert.isTrue(answer.ok)
      }
      assert.strictEqual(ledger.settlements.length, 3)
      assert.isTrue(ledger.settlements.every((s) => s.credits === PRICE))
    }).pipe(Effect.provide(TestTelemetry.make().layer))
  })

  it.scopedLive("release lets output go on an outage only; a refusal withholds (PaidMcpTool)", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100, agentId: "agent-1" })
    const Released = Tool.make("released", { success: Schema.String }).pipe(
      PaidMcpTool.paid({ planId: "plan-1", credits: PRICE, onSettleFailure: "release" })
    )
    const ReleasedTools = Toolkit.make(Released)
    return Effect.gen(function*() {
      const url = yield* serveLayer(
        Layer.mergeAll(
          PaidMcpTool.toolkit(ReleasedTools, { defaults: { agentId: "agent-1" } }),
          HttpRouter.Default.serve()
        )
          .pipe(
            Layer.provide(ReleasedTools.toLayer({ released: () => Effect.succeed(MARKER) })),
            Layer.provide(PaidMcpTool.layerHttp({ name: "agent", version: "1.0.0", path: "/mcp" })),
            Layer.provide(TestFacilitator.layer(ledger))
          )
      )
      const client = yield* connect(url)
      ledger.failNext("settle", { _tag: "Unreachable" })
      const outage = yield* callTool(client, "released", {}, token)
      assert.include(JSON.stringify(outage), MARKER)
      ledger.failNext("settle", { _tag: "Rejected", reason: "insufficient_funds" })
      const refused = yield* callTool(client, "released", {}, token)
      assert.notInclude(JSON.stringify(refused), MARKER)
      assert.isTrue(refused.ok && refused.result.isError === true)
      assert.strictEqual(ledger.settlements.length, 0)
    }).pipe(Effect.provide(TestTelemetry.make().layer))
  })

  it("Authorization is refused as a token header, in any case", () => {
    for (const name of ["Authorization", "authorization", " AUTHORIZATION"]) {
      assert.throws(() => PaidMcpTool.paid({ planId: "plan-1", tokenHeaders: [name] }), RangeError)
    }
  })
})

// The in-band token place (docs/mcp.md): what an attacker puts in `params._meta["x402/payment"]`.
const META = McpPayment.PAYMENT_META_KEY
const MALFORMED: ReadonlyArray<unknown> = [
  42,
  true,
  null,
  ["tok"],
  "",
  "   ",
  "x".repeat(X402.MAX_HEADER_LENGTH + 1),
  { x402Version: 2, payload: { pad: "x".repeat(X402.MAX_HEADER_LENGTH) } }
]

describe("hostile: in-band tokens (McpPayment.protect)", () => {
  it.live("malformed, oversize or disagreeing tokens: the payment-required result, nothing verified, nothing run", () => {
    const { ledger, subscriber, token } = TestFacilitator.seeded({ credits: 100 })
    const other = ledger.mintToken({ planId: "plan-1", subscriber })
    let runs = 0
    const tool = Effect.sync(() => {
      runs++
      return { content: [{ type: "text", text: MARKER }] }
    })
    return Effect.gen(function*() {
      const calls: Array<McpPayment.Call<unknown>> = [
        ...MALFORMED.flatMap((payment) => [
          { request: {}, meta: { [META]: payment } },
          { request: {}, meta: { [META]: payment }, headers: { "payment-signature": token } }
        ]),
        { request: {}, meta: { [META]: other }, headers: { "payment-signature": token } }
      ]
      for (const call of calls) {
        const result = yield* McpPayment.protect(paywallOf(), call, tool)
        assert.isTrue(result.isError)
        const required = result.structuredContent as X402.PaymentRequired & { readonly error: string }
        assert.strictEqual(required.x402Version, 2)
        assert.match(required.error, /Invalid payment|Ambiguous payment/)
        assert.notInclude(JSON.stringify(result), MARKER)
        assert.notInclude(JSON.stringify(result), token)
      }
      assert.strictEqual(runs, 0)
      assert.deepStrictEqual(ledger.calls, [])
      // The same token in both places is one payment: run and settled once.
      const both = yield* McpPayment.protect(
        paywallOf(),
        { request: {}, meta: { [META]: token }, headers: { "payment-signature": token } },
        tool
      )
      assert.strictEqual(receiptOf(both)?.success, true)
      assert.strictEqual(ledger.settlements.length, 1)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)))
  })
})

/** One raw JSON-RPC POST to the MCP endpoint; the answer's JSON-RPC messages (JSON or SSE). */
const rawRpc = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(`${url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
      body: JSON.stringify(body)
    })
    return response.text()
  })

describe("hostile: in-band tokens (PaidMcpTool over HTTP)", () => {
  it.scopedLive("a _meta token on initialize, tools/list or a free tool is never verified nor settled", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100, agentId: "agent-1" })
    return Effect.gen(function*() {
      const url = yield* serveMcp(ledger)
      const initialize = yield* rawRpc(url, {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-06-18",
          capabilities: {},
          clientInfo: { name: "attacker", version: "1.0.0" },
          _meta: { [META]: token }
        }
      })
      assert.include(initialize, "serverInfo")
      const client = yield* connect(url)
      const tools = yield* Effect.promise(() => client.listTools({ _meta: { [META]: token } }))
      assert.includeMembers(tools.tools.map((t) => t.name), ["search", "free"])
      const free = yield* callTool(client, "free", { query: "hello" }, token)
      assert.isTrue(free.ok && free.result.isError !== true)
      assert.isUndefined(free.ok ? free.result._meta?.[McpPayment.PAYMENT_RESPONSE_META_KEY] : undefined)
      assert.deepStrictEqual(ledger.calls, [])
    }).pipe(Effect.provide(TestTelemetry.make().layer))
  })

  it.scopedLive("a paid tool: malformed or disagreeing in-band tokens are refused unverified; the same id replayed with a single-use token is charged once", () => {
    const ledger = new TestFacilitator.Ledger({ singleUseTokens: true })
    ledger.addPlan({ planId: "plan-1", agentId: "agent-1" })
    ledger.fund("0xsub", "plan-1", 100)
    const token = ledger.mintToken({ planId: "plan-1", subscriber: "0xsub" })
    const other = ledger.mintToken({ planId: "plan-1", subscriber: "0xsub" })
    return Effect.gen(function*() {
      const url = yield* serveMcp(ledger)
      ran = 0
      const request = (id: number, payment: unknown) => ({
        jsonrpc: "2.0",
        id,
        method: "tools/call",
        params: { name: "search", arguments: { query: "q" }, _meta: { [META]: payment } }
      })
      let id = 0
      for (const payment of MALFORMED) {
        for (const header of [{}, { "payment-signature": token }]) {
          const answer = yield* rawRpc(url, request(++id, payment), header)
          assert.include(answer, `"id":${id}`)
          assert.include(answer, "isError")
          assert.include(answer, "Invalid payment")
          assert.notInclude(answer, MARKER)
        }
      }
      const ambiguous = yield* rawRpc(url, request(++id, other), { "payment-signature": token })
      assert.include(ambiguous, "Ambiguous payment")
      assert.notInclude(ambiguous, MARKER)
      assert.strictEqual(ran, 0)
      assert.deepStrictEqual(ledger.calls, [])

      // Paid once in band; the identical request (same JSON-RPC id, same single-use token) again.
      const paid = yield* rawRpc(url, request(1_000, token))
      assert.include(paid, MARKER)
      assert.include(paid, McpPayment.PAYMENT_RESPONSE_META_KEY)
      const replay = yield* rawRpc(url, request(1_000, token))
      assert.notInclude(replay, MARKER)
      assert.include(replay, "isError")
      assert.strictEqual(ledger.settlements.length, 1)
      assert.strictEqual(ledger.balance("0xsub", "plan-1"), 100 - PRICE)
    }).pipe(Effect.provide(TestTelemetry.make().layer))
  })

  it.scopedLive("the MCP SDK client (bodies only) pays: PaymentRequired in the result, token in _meta, receipts under both keys", () => {
    const ledger = new TestFacilitator.Ledger()
    ledger.addPlan({ planId: "plan-1", agentId: "agent-1" })
    ledger.fund("0xsub", "plan-1", 10)
    return Effect.gen(function*() {
      const client = yield* connect(yield* serveMcp(ledger))
      ran = 0
      const unpaid = yield* callTool(client, "search", { query: "q" })
      assert.isTrue(unpaid.ok)
      const required = (unpaid.ok ? unpaid.result.structuredContent : undefined) as X402.PaymentRequired
      assert.strictEqual(required.x402Version, 2)
      const token = ledger.mintToken({ planId: required.accepts[0].planId, subscriber: "0xsub" })
      for (const query of ["a", "b"]) {
        const paid = yield* callTool(client, "search", { query }, token)
        assert.isTrue(paid.ok)
        const result = paid.ok ? paid.result : undefined
        assert.include(JSON.stringify(result?.content), MARKER)
        const receipt = receiptOf(result)
        assert.isTrue(receipt?.success)
        assert.deepStrictEqual(result?._meta?.x402, X402.metaOf(receipt!))
      }
      assert.strictEqual(ran, 2)
      assert.strictEqual(ledger.settlements.length, 2)
      assert.strictEqual(ledger.balance("0xsub", "plan-1"), 10 - 2 * PRICE)
    }).pipe(Effect.provide(TestTelemetry.make().layer))
  })
})
