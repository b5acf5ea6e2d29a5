// The LocalGateway in front of an HTTP target (an AgentCore Runtime agent, a passthrough target),
// over real HTTP: the `http` event flavour (base64 bodies, `gatewayRequest: null` in RESPONSE) and
// streamed answers (an SSE answer becomes one RESPONSE call per event with an id, only the first of
// which may change the status and headers); then the official MCP SDK client through it with the
// interceptor, paying on FakeNevermined, the backend's ledger reconciled with the receipts.
import { Nevermined, Subscriber, X402 } from "@effect-x402/core"
import type { AgentCore } from "@effect-x402/lambda"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { FakeNevermined, LocalGateway } from "@effect-x402/testing"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect, Layer, Logger, Redacted } from "effect"
import * as Http from "node:http"

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any

const PLAN = "plan-http"
const AGENT = "agent-http"

const TOOLS = [
  { name: "forecast", description: "The weather (paid)", inputSchema: { type: "object", properties: {} } },
  { name: "outlook", description: "A long outlook, streamed (paid)", inputSchema: { type: "object", properties: {} } }
]

interface Seen {
  readonly method: string
  readonly headers: Http.IncomingHttpHeaders
  readonly body: Json
}

/**
 * An MCP server over HTTP that knows nothing of payments: `initialize` (with a session id),
 * notifications (202), `tools/list`, and two tools; `outlook` answers as an SSE stream (progress
 * notifications, then the result) when the client accepts it.
 */
const httpTarget = (options: { readonly idOverride?: unknown } = {}) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: Http.Server; readonly seen: Array<Seen> }>((resume) => {
      const seen: Array<Seen> = []
      const server = Http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (chunk: Buffer) => chunks.push(chunk))
        req.on("end", () => {
          const body: Json = JSON.parse(Buffer.concat(chunks).toString("utf8"))
          seen.push({ method: body.method, headers: req.headers, body })
          const json = (value: unknown, headers: Record<string, string> = {}) => {
            res.writeHead(200, { "content-type": "application/json", ...headers })
            res.end(JSON.stringify(value))
          }
          const id = options.idOverride !== undefined ? options.idOverride : body.id
          if (body.id === undefined) return void res.writeHead(202).end()
          switch (body.method) {
            case "initialize":
              return json({
                jsonrpc: "2.0",
                id,
                result: {
                  protocolVersion: body.params.protocolVersion,
                  capabilities: { tools: {} },
                  serverInfo: { name: "runtime-agent", version: "1.0.0" }
                }
              }, { "mcp-session-id": "session-1" })
            case "tools/list":
              return json({ jsonrpc: "2.0", id, result: { tools: TOOLS } })
            case "tools/call": {
              const name = body.params.name
              const text = name === "outlook" ? "rain all week" : "sunny"
              const result = { jsonrpc: "2.0", id, result: { content: [{ type: "text", text }] } }
              const token = body.params._meta?.progressToken
              if (name !== "outlook" || !(req.headers.accept ?? "").includes("text/event-stream")) return json(result)
              res.writeHead(200, { "content-type": "text/event-stream", "x-target": "streamed" })
              for (let day = 1; day <= 3; day++) {
                const progress = {
                  jsonrpc: "2.0",
                  method: "notifications/progress",
                  params: { progressToken: token, progress: day, total: 3 }
                }
                res.write(`event: message\ndata: ${JSON.stringify(progress)}\n\n`)
              }
              return void res.end(`event: message\ndata: ${JSON.stringify(result)}\n\n`)
            }
            default:
              return json({ jsonrpc: "2.0", id, error: { code: -32601, message: "Method not found" } })
          }
        })
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, seen })))
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(
    Effect.map(({ seen, server }) => {
      const address = server.address()
      return { url: `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}/mcp`, seen }
    })
  )

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
      body: JSON.stringify(body)
    })
    return { status: response.status, headers: response.headers, text: await response.text() }
  })

const decode = (text: string | null | undefined): Json =>
  text === null || text === undefined ? null : Buffer.from(text, "base64").toString("utf8")

describe("LocalGateway: an HTTP target", () => {
  it.scopedLive("REQUEST gets the http event (base64 body); the target is called over HTTP; RESPONSE has gatewayRequest null", () =>
    Effect.gen(function*() {
      const target = yield* httpTarget()
      const events: Array<Json> = []
      const lambda: LocalGateway.LambdaHandler = (event) => {
        events.push(event)
        const http = (event as unknown as Json).http
        return http.gatewayResponse === undefined
          ? {
            interceptorOutputVersion: "1.0",
            http: { transformedGatewayRequest: { headers: { "x-seen": "1" }, body: null } }
          }
          : {
            interceptorOutputVersion: "1.0",
            http: { transformedGatewayResponse: { statusCode: 200, headers: { "x-out": "1" }, body: null } }
          }
      }
      const gateway = yield* LocalGateway.make({ interceptor: lambda, httpTarget: target.url })
      assert.strictEqual(gateway.mode, "http")
      const answer = yield* post(gateway.url, { jsonrpc: "2.0", id: 1, method: "tools/list" }, {
        "payment-signature": "tok"
      })
      assert.strictEqual(answer.status, 200)
      assert.strictEqual(answer.headers.get("x-out"), "1")
      assert.deepStrictEqual(JSON.parse(answer.text).result.tools.map((t: Json) => t.name), ["forecast", "outlook"])
      const [request, response] = events
      assert.strictEqual(request.http.gatewayRequest.httpMethod, "POST")
      assert.deepStrictEqual(JSON.parse(decode(request.http.gatewayRequest.body)), {
        jsonrpc: "2.0",
        id: 1,
        method: "tools/list"
      })
      assert.strictEqual(request.http.gatewayRequest.headers["payment-signature"], "tok")
      assert.strictEqual(response.http.gatewayRequest, null)
      assert.strictEqual(response.http.gatewayResponse.statusCode, 200)
      assert.include(decode(response.http.gatewayResponse.body), "forecast")
      assert.isUndefined(response.http.gatewayResponse.isStreamingResponse)
      // The target got the transformed request: the REQUEST phase's headers, the original body.
      assert.strictEqual(target.seen[0].headers["x-seen"], "1")
      assert.strictEqual(target.seen[0].body.id, 1)
    }))

  it.scopedLive("an SSE answer: one RESPONSE call per event with an id (isStreamingResponse); only the first sets status and headers", () =>
    Effect.gen(function*() {
      const target = yield* httpTarget()
      const responses: Array<Json> = []
      const lambda: LocalGateway.LambdaHandler = (event) => {
        const http = (event as unknown as Json).http
        if (http.gatewayResponse === undefined) {
          return { interceptorOutputVersion: "1.0", http: { transformedGatewayRequest: { body: null } } }
        }
        responses.push(http.gatewayResponse)
        const n = responses.length
        const message = JSON.parse(decode(http.gatewayResponse.body))
        return {
          interceptorOutputVersion: "1.0",
          http: {
            transformedGatewayResponse: {
              statusCode: 200 + n,
              headers: { "x-call": String(n) },
              body: Buffer.from(JSON.stringify({ ...message, seenBy: n })).toString("base64")
            }
          }
        }
      }
      const gateway = yield* LocalGateway.make({ interceptor: lambda, httpTarget: target.url })
      const answer = yield* post(gateway.url, {
        jsonrpc: "2.0",
        id: 9,
        method: "tools/call",
        params: { name: "outlook", arguments: {}, _meta: { progressToken: "p" } }
      })
      // Three progress notifications (no id: not intercepted) and the result (intercepted once).
      assert.strictEqual(responses.length, 1)
      assert.isTrue(responses[0].isStreamingResponse)
      assert.strictEqual(answer.status, 201)
      assert.strictEqual(answer.headers.get("x-call"), "1")
      assert.include(answer.headers.get("content-type") ?? "", "text/event-stream")
      const data = answer.text.split("\n").filter((line) => line.startsWith("data: ")).map((line) =>
        JSON.parse(line.slice(6))
      )
      assert.deepStrictEqual(data.map((m: Json) => m.method ?? "result"), [
        "notifications/progress",
        "notifications/progress",
        "notifications/progress",
        "result"
      ])
      assert.strictEqual(data[3].seenBy, 1)
    }))
})

/** An MCP SDK client that sends `headers` on every request. */
const connect = (url: string, headers: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Client({ name: "http-target-test", version: "1.0.0" })
      await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }))
      return client
    }),
    (client) => Effect.promise(() => client.close())
  )

const paidSetup = (options: { readonly idOverride?: unknown } = {}) =>
  Effect.gen(function*() {
    const fake = yield* FakeNevermined.make()
    fake.ledger.addPlan({ planId: PLAN, agentId: AGENT })
    fake.ledger.fund(fake.subscriber, PLAN, 10)
    const facilitator = Nevermined.layer({ apiKey: fake.apiKey, backendUrl: fake.url }).pipe(
      Layer.provide(FetchHttpClient.layer)
    )
    const handler = interceptor({
      planId: PLAN,
      agentId: AGENT,
      credits: 2,
      endpoint: "http://127.0.0.1/mcp",
      requestSealKey: Redacted.make("test seal key"),
      layer: facilitator,
      services: Logger.remove(Logger.defaultLogger)
    })
    yield* Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose()))
    const target = yield* httpTarget(options)
    const gateway = yield* LocalGateway.make({ interceptor: handler, httpTarget: target.url })
    const subscriber = yield* Subscriber.make({ apiKey: fake.subscriberApiKey, backendUrl: fake.url }).pipe(
      Effect.provide(FetchHttpClient.layer)
    )
    const delegation = yield* subscriber.createDelegation({
      provider: "erc4337",
      spendingLimitCents: 1000,
      durationSecs: 3600,
      currency: "usdc"
    })
    const token = yield* subscriber.accessToken({ planId: PLAN, agentId: AGENT, delegationId: delegation.delegationId })
    return { fake, gateway, target, token }
  })

interface ToolResult {
  readonly isError?: boolean
  readonly content: Array<{ readonly type: string; readonly text?: string }>
  readonly _meta?: { readonly [key: string]: unknown }
}

describe("MCP SDK client → LocalGateway → interceptor → HTTP target (the Runtime flavour)", () => {
  it.scopedLive("handshake and listing pass free; a paid call and a streamed one settle once each; the ledger agrees", () =>
    Effect.gen(function*() {
      const { fake, gateway, target, token } = yield* paidSetup()
      const unpaid = yield* connect(gateway.url)
      const listed = yield* Effect.promise(() => unpaid.listTools())
      assert.deepStrictEqual(listed.tools.map((tool) => tool.name), ["forecast", "outlook"])
      const refused = (yield* Effect.promise(() => unpaid.callTool({ name: "forecast", arguments: {} }))) as ToolResult
      assert.isTrue(refused.isError)
      assert.strictEqual(JSON.parse(refused.content[0].text!).code, 402)
      assert.isFalse(target.seen.some((seen) => seen.method === "tools/call"))

      const paying = yield* connect(gateway.url, { [X402.PAYMENT_SIGNATURE_HEADER]: Redacted.value(token) })
      const paid = (yield* Effect.promise(() => paying.callTool({ name: "forecast", arguments: {} }))) as ToolResult
      assert.deepStrictEqual(paid.content, [{ type: "text", text: "sunny" }])
      assert.isTrue((paid._meta?.x402 as X402.MetaX402).success)

      const progress: Array<number> = []
      const streamed = (yield* Effect.promise(() =>
        paying.callTool({ name: "outlook", arguments: {} }, undefined, {
          onprogress: (p) => progress.push(p.progress)
        })
      )) as ToolResult
      assert.deepStrictEqual(streamed.content, [{ type: "text", text: "rain all week" }])
      assert.deepStrictEqual(progress, [1, 2, 3])
      const meta = streamed._meta?.x402 as X402.MetaX402
      assert.isTrue(meta.success)
      assert.strictEqual(meta.creditsRedeemed, "2")

      // The target never saw the token; the backend settled exactly the two paid calls.
      assert.isFalse(target.seen.some((seen) => JSON.stringify(seen.headers).includes(Redacted.value(token))))
      assert.strictEqual(fake.ledger.settlements.length, 2)
      assert.strictEqual(fake.ledger.settlements.reduce((sum, s) => sum + s.credits, 0), 4)
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), 6)
      const lambdaCalls = gateway.invocations.filter((i) => i._tag === "Lambda")
      const streamedCalls = lambdaCalls.filter((i) =>
        (i.event as unknown as { http?: { gatewayResponse?: { isStreamingResponse?: boolean } | null } }).http
          ?.gatewayResponse?.isStreamingResponse === true
      )
      assert.strictEqual(streamedCalls.length, 1)
    }))

  it.scopedLive("a target that answers under an id of its own: the paid output is withheld, nothing settled", () =>
    Effect.gen(function*() {
      const { fake, gateway, token } = yield* paidSetup({ idOverride: "target-chose-this" })
      const answer = yield* post(gateway.url, {
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: { name: "forecast", arguments: {} }
      }, { [X402.PAYMENT_SIGNATURE_HEADER]: Redacted.value(token) })
      assert.notInclude(answer.text, "sunny")
      assert.include(answer.text, "withheld")
      assert.strictEqual(fake.ledger.settlements.length, 0)
    }))
})

// Keep the type import used: the handler type the gateway takes.
export type _Handler = (event: AgentCore.InterceptorInput) => unknown
