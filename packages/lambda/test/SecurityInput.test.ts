// Hostile input (issue 6): header injection, very long and very many headers, oversized bodies,
// non-UTF-8 bytes, abusive creditsToCharge, JSON-RPC ids of every type, prototype-polluting `_meta`.
// Each gets a clear answer, no charge, no crash; the servers keep serving.
import { McpPayment, Nevermined, PaymentContext, X402 } from "@effect-x402/core"
import { AgentCore } from "@effect-x402/lambda"
import { httpHandler } from "@effect-x402/lambda/HttpHandler"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { AgentCoreEvents, FakeNevermined, LocalGateway, TestFacilitator } from "@effect-x402/testing"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer, Logger } from "effect"
import * as Net from "node:net"
import { type Json } from "./helpers.js"

const PLAN = "plan-1"
const context = AgentCoreEvents.context()
const quiet = Logger.replace(Logger.defaultLogger, Logger.none) as Layer.Layer<never>
const content = [{ type: "text", text: "the paid output" }]
const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype).sort().join(",")

const assertPrototypesClean = () => {
  assert.strictEqual(Object.getOwnPropertyNames(Object.prototype).sort().join(","), PROTOTYPE_KEYS)
  assert.isUndefined(({} as Json).polluted)
}

const setup = (credits = 100) => {
  const seeded = TestFacilitator.seeded({ planId: PLAN, credits })
  return { ...seeded, layer: TestFacilitator.layer(seeded.ledger) }
}

const responseOf = (output: AgentCore.InterceptorOutput) => output.mcp.transformedGatewayResponse!
const bodyOf = (output: AgentCore.InterceptorOutput): Json => responseOf(output).body
const errorOf = (output: AgentCore.InterceptorOutput): Json => JSON.parse(bodyOf(output).result.content[0].text)
const settledCount = (ledger: TestFacilitator.Ledger) => ledger.calls.filter((c) => c.operation === "settle").length

/** Sends raw bytes to a server and reads what it answers until it closes the connection. */
const raw = (url: string, request: string | Buffer) =>
  Effect.async<string>((resume) => {
    const socket = Net.connect(Number(new URL(url).port), "127.0.0.1")
    let answer = ""
    socket.on("data", (chunk) => (answer += chunk.toString("latin1")))
    let failure = ""
    // A server that refuses a request may reset the connection while it is still being written:
    // what it answered before that still counts.
    socket.on("error", (error) => (failure = `socket error: ${error.message}`))
    socket.on("close", () => resume(Effect.succeed(answer.length > 0 ? answer : failure)))
    // Written, not ended: a half-closed connection reads as a client that left, and the server would
    // rightly stop working on it. `connection: close` makes the server close it after answering.
    socket.write(request)
    return Effect.sync(() => socket.destroy())
  })

const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)

const rawPost = (url: string, headers: string, body: string | Buffer) =>
  Buffer.concat([
    Buffer.from(
      `POST ${new URL(url).pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n${headers}` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`,
      "latin1"
    ),
    typeof body === "string" ? Buffer.from(body) : body
  ])

describe("over real HTTP: the local gateway in front of requiresPayment, live layer against FakeNevermined", () => {
  it.scopedLive("header injection, huge and many headers, non-UTF-8 and oversized bodies: refused or answered, never charged, still serving", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      fake.ledger.addPlan({ planId: PLAN })
      fake.ledger.fund(fake.subscriber, PLAN, 100)
      const token = fake.ledger.mintToken({ planId: PLAN, subscriber: fake.subscriber })
      let headerMode: "plain" | "crlf" = "plain"
      const handler = requiresPayment({
        planId: PLAN,
        services: quiet,
        layer: Nevermined.layer({ apiKey: fake.apiKey, backendUrl: fake.url }).pipe(
          Layer.provide(FetchHttpClient.layer)
        )
      })(() =>
        headerMode === "crlf"
          ? AgentCore.respond({
            statusCode: 200,
            headers: { "x-ok": "yes", "x-bad": "a\r\nx-injected: 1", "x-nul": "a\u0000b", "bad name": "v" },
            body: { jsonrpc: "2.0", id: 1, result: { content } }
          })
          : { content }
      )
      yield* Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose()))
      const gateway = yield* LocalGateway.make({ handler })
      const call = JSON.stringify(AgentCoreEvents.toolCall("Target___tool", {}, 1))
      const balance = () => fake.ledger.balance(fake.subscriber, PLAN)

      // Node's parser refuses these before any of our code runs: 400 or 431, nothing verified.
      const refused: ReadonlyArray<readonly [string, string, number]> = [
        ["NUL in the token header", `payment-signature: ${token}\u0000x\r\n`, 400],
        ["a bare CR in the token header", `payment-signature: ${token}\rx-injected: 1\r\n`, 400],
        ["a 100 KB header", `x-long: ${"a".repeat(100_000)}\r\npayment-signature: ${token}\r\n`, 431],
        [
          "3,000 headers",
          `${Array.from({ length: 3_000 }, (_, i) => `x-h${i}: v\r\n`).join("")}payment-signature: ${token}\r\n`,
          431
        ]
      ]
      for (const [what, headers, status] of refused) {
        const answer = yield* raw(gateway.url, rawPost(gateway.url, headers, call))
        assert.strictEqual(statusOf(answer), status, `${what}: ${answer.slice(0, 200)}`)
      }
      assert.strictEqual(fake.calls("verify"), 0)

      // Bytes that are not UTF-8: a JSON-RPC parse error.
      const bytes = Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x80, 0x7b])
      const garbled = yield* raw(gateway.url, rawPost(gateway.url, `payment-signature: ${token}\r\n`, bytes))
      assert.strictEqual(statusOf(garbled), 400)
      assert.include(garbled, "-32700")

      // A 12 MB body (twice Lambda's payload limit), even paid for: refused with 413 before any
      // Lambda runs, like the real gateway; nothing verified, nothing charged.
      const big = JSON.stringify(AgentCoreEvents.toolCall("Target___tool", { blob: "x".repeat(12_000_000) }, 1))
      const refusedBig = yield* Effect.promise(() =>
        fetch(gateway.url, {
          method: "POST",
          headers: { "content-type": "application/json", "payment-signature": token },
          body: big
        }).then(async (r) => ({ status: r.status, json: await r.json() }))
      )
      assert.strictEqual(refusedBig.status, 413)
      assert.match(refusedBig.json.error.message, /Request too large/)
      assert.strictEqual(fake.calls("verify"), 0)
      assert.strictEqual(balance(), 100)

      // A handler's header that HTTP cannot carry is dropped: the output the caller paid for arrives.
      headerMode = "crlf"
      const paid = yield* Effect.promise(() =>
        fetch(gateway.url, {
          method: "POST",
          headers: { "content-type": "application/json", "payment-signature": token },
          body: call
        }).then(async (r) => ({
          status: r.status,
          injected: r.headers.get("x-injected"),
          ok: r.headers.get("x-ok"),
          json: await r.json()
        }))
      )
      assert.strictEqual(paid.status, 200)
      assert.deepStrictEqual(paid.json.result.content, content)
      assert.isNull(paid.injected)
      assert.strictEqual(paid.ok, "yes")
      assert.strictEqual(balance(), 99, "charged once, and the output arrived")

      // Still serving.
      headerMode = "plain"
      const after = yield* raw(gateway.url, rawPost(gateway.url, `payment-signature: ${token}\r\n`, call))
      assert.strictEqual(statusOf(after), 200)
      assert.strictEqual(balance(), 98)
      assert.strictEqual(fake.ledger.settlements.length, 2)
    }))
})

describe("Lambda events with hostile headers", () => {
  const hostileHeaders = (token: string | undefined) => ({
    "x-crlf": "a\r\nx-injected: 1",
    "x-nul": "a\u0000b",
    "x-surrogate": "\ud800",
    "x-long": "v".repeat(1_000_000),
    "bad name\r\n": "v",
    ...Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`x-many-${i}`, String(i)])),
    ...(token !== undefined ? { "payment-signature": token } : {})
  })

  it.effect("requiresPayment: a valid token pays once among them; a token with CR/LF is refused, nothing charged", () =>
    Effect.gen(function*() {
      const { layer, ledger, token } = setup()
      const handler = requiresPayment({ planId: PLAN, layer, services: quiet })(() => ({ content }))
      const event = (t: string | undefined) => ({
        mcp: { gatewayRequest: { headers: hostileHeaders(t), body: AgentCoreEvents.toolCall("Target___tool") } }
      })
      const paid = yield* Effect.promise(() => handler(event(token), context))
      assert.deepStrictEqual(bodyOf(paid).result.content, content)
      for (const bad of [`${token}\r\nx-injected: 1`, `${token}\u0000`, "\ud800", "x".repeat(1_000_000)]) {
        const refused = yield* Effect.promise(() => handler(event(bad), context))
        assert.strictEqual(errorOf(refused).code, 402)
      }
      assert.strictEqual(ledger.settlements.length, 1)
    }))

  it.effect("interceptor: forwards none of the headers HTTP cannot carry, and never the token", () =>
    Effect.gen(function*() {
      const { layer, token } = setup()
      const handler = interceptor({ planId: PLAN, layer, services: quiet })
      const output = yield* Effect.promise(() =>
        handler({
          mcp: { gatewayRequest: { headers: hostileHeaders(token), body: AgentCoreEvents.toolCall("Target___tool") } }
        }, context)
      )
      const headers = output.mcp.transformedGatewayRequest!.headers!
      const names = Object.keys(headers)
      assert.isString(headers["x-nvm-agent-request-id"])
      assert.isUndefined(headers["payment-signature"])
      for (const name of ["x-crlf", "x-nul", "x-surrogate", "bad name\r\n"]) assert.notInclude(names, name)
      assert.strictEqual(headers["x-long"].length, 1_000_000)
      for (const [name, value] of Object.entries(headers)) {
        assert.match(name, /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/)
        assert.isFalse(value.includes("\r") || value.includes("\n") || value.includes("\u0000"))
      }
    }))

  it.effect("httpHandler: the same; a handler's CR/LF header never reaches the result", () =>
    Effect.gen(function*() {
      const { layer, ledger, token } = setup()
      const handler = httpHandler({ planId: PLAN, layer, services: quiet })(() => ({
        statusCode: 200,
        headers: { "x-bad": "a\r\nset-cookie: evil=1", "x-ok": "1" },
        body: "ok"
      }))
      const event = (t: string | undefined) => ({ ...AgentCoreEvents.apiGatewayV2(), headers: hostileHeaders(t) })
      const paid = yield* Effect.promise(() => handler(event(token), context))
      assert.strictEqual(paid.statusCode, 200)
      assert.isUndefined(paid.headers?.["x-bad"])
      assert.strictEqual(paid.headers?.["x-ok"], "1")
      const refused = yield* Effect.promise(() => handler(event(`${token}\r\nx: 1`), context))
      assert.strictEqual(refused.statusCode, 402)
      assert.strictEqual(ledger.settlements.length, 1)
    }))

  it.effect("oversized and non-UTF-8 event bodies: answered, never a crash, charged only when paid", () =>
    Effect.gen(function*() {
      const { layer, ledger, token } = setup()
      const decorator = requiresPayment({ planId: PLAN, layer, services: quiet })(() => ({ content }))
      const http = httpHandler({ planId: PLAN, layer, services: quiet })((event) => ({
        statusCode: 200,
        body: `${event.body?.length ?? 0}`
      }))
      const huge = "x".repeat(8_000_000)
      const event = (t?: string) => AgentCoreEvents.request({ ...(t ? { token: t } : {}), arguments: { huge } })
      assert.strictEqual(errorOf(yield* Effect.promise(() => decorator(event(), context))).code, 402)
      const text = {
        mcp: { gatewayRequest: { ...event(token).mcp.gatewayRequest, body: `{"method":"tools/call",${huge}` } }
      }
      assert.strictEqual(responseOf(yield* Effect.promise(() => decorator(text, context))).statusCode, 400)
      assert.deepStrictEqual(
        bodyOf(yield* Effect.promise(() => decorator(event(token), context))).result.content,
        content
      )
      const invalidUtf8 = Buffer.from([0xff, 0xfe, 0xc3, 0x28]).toString("base64")
      for (const body of [huge, invalidUtf8, "\ud800\udfff\ud800"]) {
        const unpaid = yield* Effect.promise(() =>
          http(AgentCoreEvents.apiGatewayV2({ body, isBase64Encoded: body === invalidUtf8 }), context)
        )
        assert.strictEqual(unpaid.statusCode, 402)
      }
      const paid = yield* Effect.promise(() =>
        http(AgentCoreEvents.apiGatewayV2({ token, body: invalidUtf8, isBase64Encoded: true }), context)
      )
      assert.strictEqual(paid.statusCode, 200)
      assert.strictEqual(ledger.settlements.length, 2)
    }))
})

describe("creditsToCharge abuse", () => {
  // Each is refused (docs/protocol.md §5): the output is withheld, nothing is settled. JSON text keeps 1e309 as
  // Infinity; the rest are JS values a handler might return.
  const invalid: ReadonlyArray<unknown> = [
    -1,
    -0.5,
    0.5,
    1.5,
    Number("1e309"),
    Number.NaN,
    Number.MAX_SAFE_INTEGER + 2,
    "-1",
    "1.5",
    "1e3",
    "1e309",
    "0x10",
    " 3",
    "",
    "abc",
    "99999999999999999999",
    true,
    [1],
    { amount: 1 }
  ]

  it.effect("requiresPayment: a JSON text item cannot set the price unless the paywall opts in", () =>
    Effect.gen(function*() {
      const { layer, ledger, token } = setup()
      let echoed = ""
      // a tool that echoes what the caller sent: the caller must not choose what it pays
      const handler = requiresPayment({ planId: PLAN, credits: 5, layer, services: quiet })(() => ({
        content: [{ type: "text", text: echoed }, ...content]
      }))
      for (const text of [`{"creditsToCharge":0}`, `{"creditsToCharge":-1}`, `{"creditsToCharge":"0"}`]) {
        echoed = text
        const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), context))
        assert.include(JSON.stringify(output), "the paid output")
      }
      assert.deepStrictEqual(ledger.settlements.map((s) => s.credits), [5, 5, 5])
    }))

  it.effect("requiresPayment: in _meta or an opted-in JSON text item, every invalid amount withholds the output and charges nothing", () =>
    Effect.gen(function*() {
      const { layer, ledger, token } = setup()
      let answer: unknown = {}
      const handler = requiresPayment({ planId: PLAN, layer, services: quiet, chargeFromContent: true })(() => answer)
      const answers = [
        ...invalid.map((amount) => ({ content, _meta: { creditsToCharge: amount } })),
        ...["-1", "1.5", "1e309", "\"1e3\"", "true", "[1]"].map((text) => ({
          content: [{ type: "text", text: `{"creditsToCharge":${text}}` }, ...content]
        }))
      ]
      for (const a of answers) {
        answer = a
        const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), context))
        const error = errorOf(output)
        assert.strictEqual(error.code, 500, JSON.stringify(a))
        assert.strictEqual(error.message, "The server could not price this call; nothing was charged")
        assert.notInclude(JSON.stringify(output), "the paid output")
      }
      assert.strictEqual(settledCount(ledger), 0)
      answer = { content, _meta: { creditsToCharge: "7" } }
      yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), context))
      assert.deepStrictEqual(ledger.settlements.map((s) => s.credits), [7])
    }))

  it.effect("interceptor: in X-Credits-To-Charge or _meta, every invalid amount withholds the target's output", () =>
    Effect.gen(function*() {
      const { layer, ledger, token } = setup()
      const handler = interceptor({ planId: PLAN, layer, services: quiet })
      for (const amount of invalid) {
        const forwarded = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), context))
        const agentRequestId = forwarded.mcp.transformedGatewayRequest!.headers!["x-nvm-agent-request-id"]
        for (
          const options of [
            { result: { content, _meta: { creditsToCharge: amount } } },
            ...(typeof amount === "string" ? [{ responseHeaders: { "X-Credits-To-Charge": amount } }] : [])
          ]
        ) {
          const output = yield* Effect.promise(() =>
            handler(AgentCoreEvents.response({ token, agentRequestId, ...options }), context)
          )
          assert.strictEqual(errorOf(output).code, 500, JSON.stringify(options))
          assert.notInclude(JSON.stringify(output), "the paid output")
        }
      }
      assert.strictEqual(settledCount(ledger), 0)
    }))

  it.effect("httpHandler: in X-Credits-To-Charge or PaymentContext.chargeCredits, every invalid amount is a 500, nothing charged", () =>
    Effect.gen(function*() {
      const { layer, ledger, token } = setup()
      let amount: unknown = 1
      const byHeader = httpHandler({ planId: PLAN, layer, services: quiet })(() => ({
        statusCode: 200,
        headers: { "x-credits-to-charge": String(amount) },
        body: "the paid output"
      }))
      const byContext = httpHandler({ planId: PLAN, layer, services: quiet })(() =>
        Effect.as(PaymentContext.chargeCredits(amount as number), { statusCode: 200, body: "the paid output" })
      )
      for (const value of invalid) {
        amount = value
        for (
          const handler of typeof value === "string" || typeof value === "number"
            ? [byHeader, byContext]
            : [byContext]
        ) {
          const result = yield* Effect.promise(() => handler(AgentCoreEvents.apiGatewayV2({ token }), context))
          assert.strictEqual(result.statusCode, 500, String(value))
          assert.notInclude(result.body ?? "", "the paid output")
        }
      }
      assert.strictEqual(settledCount(ledger), 0)
    }))

  it.effect("a credits policy answering an invalid amount: 500 before verify, the facilitator never called", () =>
    Effect.gen(function*() {
      const { layer, ledger, token } = setup()
      for (const amount of invalid) {
        const handler = requiresPayment({ planId: PLAN, layer, services: quiet, credits: () => amount as number })(
          () => ({ content })
        )
        const output = yield* Effect.promise(() => handler(AgentCoreEvents.request({ token }), context))
        assert.strictEqual(errorOf(output).code, 500)
        yield* Effect.promise(() => handler.runtime.dispose())
      }
      assert.deepStrictEqual(ledger.calls, [])
    }))
})

describe("JSON-RPC ids of every type", () => {
  const valid: ReadonlyArray<AgentCore.JsonRpcId> = [
    "",
    "id",
    "é\u{1F600}",
    "x".repeat(10_000),
    0,
    -1,
    1.5,
    1e308,
    2 ** 60,
    null
  ]
  const invalid: ReadonlyArray<unknown> = [
    true,
    false,
    {},
    [],
    [1],
    { __proto__: null, id: 1 },
    JSON.parse(`{"__proto__":1}`)
  ]

  it.effect("a valid id is echoed with its type in every answer; an invalid one is a 400 with id null; no charge", () =>
    Effect.gen(function*() {
      const { layer, ledger, token } = setup()
      let fail = false
      const decorator = requiresPayment({ planId: PLAN, layer, services: quiet })(() => {
        if (fail) throw new Error("broken")
        return { content }
      })
      const gatewayInterceptor = interceptor({ planId: PLAN, layer, services: quiet })
      for (const id of valid) {
        const unpaid = yield* Effect.promise(() => decorator(AgentCoreEvents.request({ id }), context))
        const paid = yield* Effect.promise(() => decorator(AgentCoreEvents.request({ id, token }), context))
        fail = true
        const broken = yield* Effect.promise(() => decorator(AgentCoreEvents.request({ id, token }), context))
        fail = false
        const refused = yield* Effect.promise(() => gatewayInterceptor(AgentCoreEvents.request({ id }), context))
        for (const output of [unpaid, paid, broken, refused]) {
          // Through JSON, as the gateway sends it.
          assert.strictEqual(JSON.parse(JSON.stringify(bodyOf(output))).id, JSON.parse(JSON.stringify(id)))
        }
      }
      const settled = ledger.settlements.length
      assert.strictEqual(settled, valid.length)
      for (const id of invalid) {
        for (const handler of [decorator, gatewayInterceptor]) {
          const output = yield* Effect.promise(() =>
            handler({
              mcp: {
                gatewayRequest: {
                  headers: { "payment-signature": token },
                  body: { jsonrpc: "2.0", id, method: "tools/call", params: { name: "t" } }
                }
              }
            }, context)
          )
          assert.strictEqual(responseOf(output).statusCode, 400)
          assert.strictEqual(bodyOf(output).error.code, -32600)
          assert.isNull(bodyOf(output).id)
        }
      }
      assert.strictEqual(ledger.settlements.length, settled)
      assert.strictEqual(ledger.calls.filter((c) => c.operation === "verify").length, valid.length * 2)
    }))
})

describe("_meta merging cannot pollute prototypes", () => {
  const hostileMeta = () =>
    JSON.parse(
      `{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"prototype":{"polluted":true},` +
        `"x402":"forged","x402/payment-response":"forged","creditsToCharge":1,"trace":"kept"}`
    )

  it.effect("requiresPayment and the interceptor: the receipt replaces a forged one, own keys only, Object.prototype untouched", () =>
    Effect.gen(function*() {
      const { layer, ledger, token } = setup()
      const decorator = requiresPayment({ planId: PLAN, layer, services: quiet })(() => ({
        content,
        _meta: hostileMeta()
      }))
      const gatewayInterceptor = interceptor({ planId: PLAN, layer, services: quiet })
      const direct = yield* Effect.promise(() => decorator(AgentCoreEvents.request({ token }), context))
      const forwarded = yield* Effect.promise(() => gatewayInterceptor(AgentCoreEvents.request({ token }), context))
      const agentRequestId = forwarded.mcp.transformedGatewayRequest!.headers!["x-nvm-agent-request-id"]
      const responseEvent = JSON.parse(
        JSON.stringify(
          AgentCoreEvents.response({ token, agentRequestId, result: { content, _meta: { trace: "kept" } } })
        )
          .replace(`"_meta":{`, `"_meta":{"__proto__":{"polluted":true},"x402":"forged",`)
      )
      const intercepted = yield* Effect.promise(() => gatewayInterceptor(responseEvent, context))
      for (const output of [direct, intercepted]) {
        const meta = bodyOf(output).result._meta
        assert.strictEqual(Object.getPrototypeOf(meta), Object.prototype)
        assert.isUndefined(meta.polluted)
        assert.strictEqual(meta.trace, "kept")
        assert.isTrue(meta.x402.success, "the forged receipt was replaced")
        assert.strictEqual(
          meta.x402.transaction,
          ledger.settlements.find((s) => s.transaction === meta.x402.transaction)?.transaction
        )
      }
      assert.strictEqual(ledger.settlements.length, 2)
      assertPrototypesClean()
    }))

  it("McpPayment.withReceipt and AgentCore.enrich: own keys only, Object.prototype untouched", () => {
    const settlement: X402.SettleResponse = { success: true, transaction: "0xabc", network: "eip155:84532" }
    const result = McpPayment.withReceipt({ content, _meta: hostileMeta() } as McpPayment.ToolResult, settlement)
    assert.strictEqual(Object.getPrototypeOf(result._meta), Object.prototype)
    assert.isUndefined((result._meta as Json).polluted)
    assert.notStrictEqual(result._meta![McpPayment.PAYMENT_RESPONSE_META_KEY], "forged")
    const answer = Either.getOrThrow(AgentCore.normalize({ content, _meta: hostileMeta() }, 1))
    const enriched = AgentCore.enrich(answer, settlement).body as Json
    assert.strictEqual(Object.getPrototypeOf(enriched.result._meta), Object.prototype)
    assert.deepStrictEqual(enriched.result._meta.x402, X402.metaOf(settlement))
    assert.isUndefined(enriched.result._meta.polluted)
    // Serialised and read back, as the client sees it, still nothing inherited.
    const read = JSON.parse(JSON.stringify(enriched))
    assert.isUndefined(read.result._meta.polluted)
    assertPrototypesClean()
  })
})
