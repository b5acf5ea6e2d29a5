import type { Facilitator } from "@effect-x402/core"
import { McpPayment, PaymentContext, PaymentError, Paywall, X402 } from "@effect-x402/core"
import { TestFacilitator, TestTelemetry } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { Effect, Option, Redacted, Runtime } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

const setup = (credits = 10) => {
  const { ledger, subscriber, token } = TestFacilitator.seeded({ credits })
  return { ledger, subscriber, token, layer: TestFacilitator.layer(ledger) }
}

const paywallOf = (options: Partial<Paywall.Options<unknown, never, McpPayment.ToolResult>> = {}) =>
  Paywall.make<unknown, never, McpPayment.ToolResult>({
    planId: "plan-1",
    credits: 2,
    endpoint: "mcp://tool/search",
    ...options
  })

const ok = (text: string, extra: Partial<McpPayment.ToolResult> = {}): McpPayment.ToolResult => ({
  content: [{ type: "text", text }],
  ...extra
})

const receiptOf = (result: McpPayment.ToolResult) =>
  result._meta?.[McpPayment.PAYMENT_RESPONSE_META_KEY] as X402.SettleResponse | undefined

const value = (token: Option.Option<Redacted.Redacted<string>>) => Option.getOrNull(Option.map(token, Redacted.value))

describe("McpPayment tokens", () => {
  it("reads the payment from _meta: a token string, or a PaymentPayload object as base64 JSON", () => {
    assert.strictEqual(value(McpPayment.tokenFromMeta({ "x402/payment": " tok " })), "tok")
    const payload = { x402Version: 2, accepted: { planId: "plan-1" } }
    assert.strictEqual(
      value(McpPayment.tokenFromMeta({ "x402/payment": payload })),
      X402.encodeBase64(JSON.stringify(payload))
    )
    for (const bad of [undefined, null, 42, [], [payload], "", { "x402/payment": 1 }, { "x402/payment": [payload] }]) {
      assert.isTrue(Option.isNone(McpPayment.tokenFromMeta(bad)))
    }
    assert.isTrue(Option.isNone(McpPayment.tokenFromMeta(Object.create({ "x402/payment": "inherited" }))))
    const huge = { "x402/payment": { pad: "x".repeat(X402.MAX_HEADER_LENGTH) } }
    assert.isTrue(Option.isNone(McpPayment.tokenFromMeta(huge)))
  })

  it("in band or in the headers; both disagreeing is no token (fail closed), both agreeing is the one", () => {
    assert.isNull(value(McpPayment.tokenOf({ meta: { "x402/payment": "a" }, headers: { "payment-signature": "b" } })))
    assert.strictEqual(
      value(McpPayment.tokenOf({ meta: { "x402/payment": "a" }, headers: { "payment-signature": "a" } })),
      "a"
    )
    const payload = { x402Version: 2, accepted: { planId: "plan-1" } }
    const spaced = X402.encodeBase64(JSON.stringify(payload, null, 2))
    assert.strictEqual(
      value(McpPayment.tokenOf({ meta: { "x402/payment": payload }, headers: { "payment-signature": spaced } })),
      X402.encodeBase64(JSON.stringify(payload))
    )
    // A malformed in-band payment is refused even beside a good header token.
    assert.isNull(value(McpPayment.tokenOf({ meta: { "x402/payment": 42 }, headers: { "payment-signature": "b" } })))
    // Payment metadata alone (a payment-identifier) is not a payment: the header's token pays.
    const identifier = { extensions: { "payment-identifier": { info: { id: "k" } } } }
    assert.strictEqual(
      value(McpPayment.tokenOf({ meta: { "x402/payment": identifier }, headers: { "payment-signature": "b" } })),
      "b"
    )
    assert.strictEqual(value(McpPayment.tokenOf({ meta: { "x402/payment": "a" } })), "a")
    assert.strictEqual(value(McpPayment.tokenOf({ meta: {}, headers: { "Payment-Signature": "b" } })), "b")
    assert.strictEqual(value(McpPayment.tokenOf({ headers: { "x-pay": "c" } }, ["x-pay"])), "c")
  })
})

describe("McpPayment results", () => {
  const paymentRequired = X402.paymentRequired({ planIds: ["plan-1"], network: "eip155:84532", endpoint: "mcp://t" })

  it("payment required: isError, the PaymentRequired as structuredContent and as the JSON of content[0]", () => {
    const result = McpPayment.paymentRequiredResult(paymentRequired, "Payment required for tool: search")
    assert.isTrue(result.isError)
    assert.deepStrictEqual(result.structuredContent, { ...paymentRequired, error: "Payment required for tool: search" })
    assert.deepStrictEqual(JSON.parse(result.content[0].text), result.structuredContent)
  })

  it("receipts merge into an existing _meta", () => {
    const settlement: X402.SettleResponse = { success: true, transaction: "0x1", network: "n", creditsRedeemed: "1" }
    const result = McpPayment.withReceipt(ok("x", { _meta: { creditsToCharge: 1 } }), settlement)
    assert.deepStrictEqual(result._meta, {
      creditsToCharge: 1,
      "x402/payment-response": settlement,
      // For the Python SDK's clients.
      x402: X402.metaOf(settlement)
    })
  })

  it("each failure maps to a result a client can act on", () => {
    const facilitatorDown = new PaymentError.FacilitatorError({
      operation: "verify",
      kind: "Timeout",
      requestSent: true
    })
    const codeOf = (result: McpPayment.PaymentResult) => JSON.parse(result.content[0].text).code
    const invalid = McpPayment.failureResult(
      new PaymentError.VerifyFailed({
        reason: "Invalid",
        paymentRequired,
        verification: { isValid: false, invalidReason: "insufficient_funds" }
      })
    )
    assert.strictEqual(invalid.structuredContent?.error, "Verification failed: insufficient_funds")
    const down = McpPayment.failureResult(
      new PaymentError.VerifyFailed({ reason: "Unavailable", paymentRequired, cause: facilitatorDown })
    )
    assert.strictEqual(codeOf(down), 502)
    assert.isUndefined(down.structuredContent)
    const unknown = McpPayment.failureResult(
      new PaymentError.SettleFailed({ reason: "Indeterminate", paymentRequired, credits: 1 })
    )
    assert.strictEqual(codeOf(unknown), 502)
    assert.strictEqual(receiptOf(unknown)?.success, false)
    const amount = McpPayment.failureResult(
      new PaymentError.SettleFailed({ reason: "InvalidAmount", paymentRequired, credits: 0 })
    )
    assert.strictEqual(codeOf(amount), 500)
  })
})

describe("McpPayment.protect", () => {
  it.effect("settles a successful result once and adds the receipt; the tool reads the payment", () => {
    const { layer, ledger, subscriber, token } = setup()
    return Effect.gen(function*() {
      const tool = Effect.map(PaymentContext.PaymentContext, (payment) => ok(`for ${payment.payer}`))
      const result = yield* McpPayment.protect(paywallOf(), { request: {}, meta: { "x402/payment": token } }, tool)
      assert.strictEqual((result.content[0] as { text: string }).text, `for ${subscriber}`)
      assert.strictEqual(receiptOf(result)?.creditsRedeemed, "2")
      assert.deepStrictEqual(ledger.calls.map((c) => c.operation), ["verify", "settle"])
    }).pipe(Effect.provide(layer))
  })

  it.effect("no payment: the payment-required result names the tool; nothing runs", () => {
    const { layer, ledger } = setup()
    return Effect.gen(function*() {
      let ran = false
      const result = yield* McpPayment.protect(
        paywallOf(),
        { request: {}, toolName: "search" },
        Effect.sync(() => {
          ran = true
          return ok("x")
        })
      )
      assert.isTrue(result.isError)
      assert.strictEqual((result.structuredContent as { error: string }).error, "Payment required for tool: search")
      assert.isFalse(ran)
      assert.strictEqual(ledger.calls.length, 0)
    }).pipe(Effect.provide(layer))
  })

  it.effect("error results and failures are not settled; a failure answers a generic error result", () => {
    const { layer, ledger, subscriber, token } = setup()
    const call = { request: {}, meta: { "x402/payment": token } }
    return Effect.gen(function*() {
      const errorResult = yield* McpPayment.protect(
        paywallOf(),
        call,
        Effect.succeed(ok("bad input", { isError: true }))
      )
      assert.isUndefined(receiptOf(errorResult))
      const failure = yield* McpPayment.protect(paywallOf(), call, Effect.fail("tool failed" as const))
      assert.isTrue(failure.isError)
      assert.notInclude(JSON.stringify(failure), "tool failed")
      assert.strictEqual(JSON.parse((failure.content[0] as { text: string }).text).code, 500)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 10)
      assert.isFalse(ledger.calls.some((c) => c.operation === "settle"))
    }).pipe(Effect.provide(layer), Effect.provide(TestTelemetry.make().layer))
  })

  it.effect("the amount may come from chargeCredits, _meta.creditsToCharge or (opted in) a JSON text item; an invalid one is never charged", () => {
    const { layer, ledger, subscriber, token } = setup(20)
    const call = { request: {}, meta: { "x402/payment": token } }
    return Effect.gen(function*() {
      const charged = yield* McpPayment.protect(
        paywallOf(),
        call,
        Effect.zipRight(PaymentContext.chargeCredits(5), Effect.succeed(ok("x", { _meta: { creditsToCharge: 1 } })))
      )
      assert.strictEqual(receiptOf(charged)?.creditsRedeemed, "5")
      const meta = yield* McpPayment.protect(
        paywallOf(),
        call,
        Effect.succeed(ok("x", { _meta: { creditsToCharge: 3 } }))
      )
      assert.strictEqual(receiptOf(meta)?.creditsRedeemed, "3")
      assert.deepStrictEqual(meta._meta?.creditsToCharge, 3)
      // a tool's text may echo the caller: it sets the price only when the paywall opts in
      const echoed = yield* McpPayment.protect(
        paywallOf(),
        call,
        Effect.succeed(ok(JSON.stringify({ creditsToCharge: "0" })))
      )
      assert.strictEqual(receiptOf(echoed)?.creditsRedeemed, "2")
      const text = yield* McpPayment.protect(
        paywallOf({ chargeFromContent: true }),
        call,
        Effect.succeed(ok(JSON.stringify({ creditsToCharge: "4" })))
      )
      assert.strictEqual(receiptOf(text)?.creditsRedeemed, "4")
      const invalid = yield* McpPayment.protect(
        paywallOf(),
        call,
        Effect.succeed(ok("paid output", { _meta: { creditsToCharge: 1.5 } }))
      )
      assert.isTrue(invalid.isError)
      assert.notInclude(JSON.stringify(invalid), "paid output")
      assert.strictEqual(receiptOf(invalid)?.success, false)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 6)
    }).pipe(Effect.provide(layer))
  })

  it.effect("release policy and onPaymentError", () => {
    const { layer, ledger, token } = setup()
    return Effect.gen(function*() {
      ledger.failNext("settle", { _tag: "Timeout" })
      const released = yield* McpPayment.protect(
        paywallOf({ onSettleFailure: "release" }),
        { request: {}, meta: { "x402/payment": token } },
        Effect.succeed(ok("paid output"))
      )
      assert.isUndefined(released.isError)
      assert.strictEqual(receiptOf(released)?.success, false)
      const replaced = yield* McpPayment.protect(
        paywallOf({ onPaymentError: () => ok("subscribe at https://agent.example", { isError: true }) }),
        { request: {} },
        Effect.succeed(ok("paid output"))
      )
      assert.strictEqual((replaced.content[0] as { text: string }).text, "subscribe at https://agent.example")
    }).pipe(Effect.provide(layer))
  })
})

describe("McpPayment in an MCP SDK server, over HTTP", () => {
  // The in-band transport does not depend on @effect/ai: here the official MCP SDK serves the tool,
  // and the tool handler runs McpPayment.protect with the request's `_meta` and headers.
  const serveSdk = (runtime: Runtime.Runtime<Facilitator.Facilitator>) =>
    Effect.acquireRelease(
      Effect.async<{ url: string; close: () => void }>((resume) => {
        const paywall = paywallOf({ endpoint: undefined })
        const http = createServer((req, res) => {
          const mcp = new McpServer({ name: "sdk-agent", version: "1.0.0" })
          mcp.registerTool("search", { description: "paid search" }, (extra) =>
            Runtime.runPromise(runtime)(
              McpPayment.protect(paywall, {
                request: {},
                meta: extra._meta,
                headers: extra.requestInfo?.headers,
                toolName: "search",
                resourceUrl: `http://${req.headers.host}/mcp`
              }, Effect.succeed({ content: [{ type: "text" as const, text: "sdk result" }] }))
            ) as never)
          const transport = new StreamableHTTPServerTransport({})
          res.on("close", () => {
            void transport.close()
            void mcp.close()
          })
          void mcp.connect(transport).then(() => transport.handleRequest(req, res))
        })
        http.listen(0, "127.0.0.1", () => {
          const { port } = http.address() as AddressInfo
          resume(Effect.succeed({ url: `http://127.0.0.1:${port}/mcp`, close: () => http.close() }))
        })
      }),
      (server) => Effect.sync(server.close)
    )

  it.scopedLive("a paid call in band, and without payment", () => {
    const { layer, ledger, subscriber, token } = setup()
    return Effect.gen(function*() {
      const runtime = yield* Effect.runtime<Facilitator.Facilitator>()
      const { url } = yield* serveSdk(runtime)
      const client = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const client = new Client({ name: "test", version: "1.0.0" })
          await client.connect(new StreamableHTTPClientTransport(new URL(url)))
          return client
        }),
        (client) => Effect.promise(() => client.close())
      )
      const unpaid = (yield* Effect.promise(() =>
        client.callTool({ name: "search", arguments: {} })
      )) as McpPayment.ToolResult
      assert.isTrue(unpaid.isError)
      assert.strictEqual((unpaid.structuredContent as X402.PaymentRequired).resource.url, url)
      const paid = (yield* Effect.promise(() =>
        client.callTool({ name: "search", arguments: {}, _meta: { "x402/payment": token } })
      )) as McpPayment.ToolResult
      assert.deepStrictEqual(paid.content, [{ type: "text", text: "sdk result" }])
      assert.strictEqual(receiptOf(paid)?.success, true)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 8)
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("a client that reads only JSON-RPC bodies pays: PaymentRequired in the result, token in _meta, receipt in _meta", () => {
    const ledger = new TestFacilitator.Ledger()
    ledger.fund("0xsub", "plan-1", 10)
    return Effect.gen(function*() {
      const runtime = yield* Effect.runtime<Facilitator.Facilitator>()
      const { url } = yield* serveSdk(runtime)
      const connect = (headers: Record<string, string> = {}) =>
        Effect.acquireRelease(
          Effect.promise(async () => {
            const client = new Client({ name: "body-only", version: "1.0.0" })
            await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }))
            return client
          }),
          (client) => Effect.promise(() => client.close())
        )
      const client = yield* connect()
      const call = (meta?: Record<string, unknown>) =>
        Effect.promise(() =>
          client.callTool({ name: "search", arguments: {}, ...(meta !== undefined ? { _meta: meta } : {}) })
        ) as Effect.Effect<McpPayment.ToolResult>
      const unpaid = yield* call()
      const required = unpaid.structuredContent as X402.PaymentRequired
      assert.strictEqual(required.x402Version, 2)
      assert.deepStrictEqual(JSON.parse((unpaid.content[0] as { text: string }).text), unpaid.structuredContent)
      const token = ledger.mintToken({ planId: required.accepts[0].planId, subscriber: "0xsub" })
      for (let i = 0; i < 2; i++) {
        const paid = yield* call({ [McpPayment.PAYMENT_META_KEY]: token })
        assert.deepStrictEqual(paid.content, [{ type: "text", text: "sdk result" }])
        assert.strictEqual(receiptOf(paid)?.success, true)
        assert.deepStrictEqual(paid._meta?.x402, X402.metaOf(receiptOf(paid)!))
      }
      const forged = yield* call({ [McpPayment.PAYMENT_META_KEY]: "forged" })
      assert.isTrue(forged.isError)
      // A header token and a different _meta token: refused as ambiguous, the facilitator not asked.
      const calls = ledger.calls.length
      const both = yield* connect({ "payment-signature": ledger.mintToken({ planId: "plan-1", subscriber: "0xsub" }) })
      const ambiguous = (yield* Effect.promise(() =>
        both.callTool({ name: "search", arguments: {}, _meta: { [McpPayment.PAYMENT_META_KEY]: token } })
      )) as McpPayment.ToolResult
      assert.isTrue(ambiguous.isError)
      assert.match(String((ambiguous.structuredContent as { error?: unknown }).error), /Ambiguous payment/)
      assert.strictEqual(ledger.calls.length, calls)
      // Reconciled: two paid calls, two settlements; the unpaid, forged and ambiguous ones none.
      assert.strictEqual(ledger.settlements.length, 2)
      assert.strictEqual(ledger.balance("0xsub", "plan-1"), 6)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)))
  })
})
