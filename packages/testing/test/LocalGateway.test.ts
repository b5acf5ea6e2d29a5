import { X402 } from "@effect-x402/core"
import { Adapter } from "@effect-x402/core"
import { AgentCore } from "@effect-x402/lambda"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { LocalGateway, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: Json
}

/** A raw POST with fetch, as an MCP client sends it: the gateway is tested on the wire. */
// A header of a forwarded request, whatever the case of its name.
const headerOf = (headers: unknown, name: string): unknown =>
  Adapter.isRecord(headers)
    ? Object.entries(headers).find(([key]) => key.toLowerCase() === name)?.[1]
    : undefined

const post = (
  url: string,
  body: unknown,
  options: { readonly headers?: Record<string, string>; readonly raw?: boolean; readonly method?: string } = {}
) =>
  Effect.promise(async (): Promise<Answer> => {
    const response = await fetch(url, {
      method: options.method ?? "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...options.headers
      },
      ...(options.method === "GET" ? {} : { body: options.raw === true ? String(body) : JSON.stringify(body) })
    })
    const text = await response.text()
    let json: Json = undefined
    try {
      json = JSON.parse(text)
    } catch {
      // not JSON
    }
    return { status: response.status, headers: response.headers, text, json }
  })

const call = (tool: string, args: Record<string, unknown> = {}, id: AgentCore.JsonRpcId = 1) => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params: { name: tool, arguments: args }
})

const answer = (body: unknown, statusCode = 200, headers: Record<string, string> = {}) =>
  AgentCore.respond({ statusCode, headers: { "Content-Type": "application/json", ...headers }, body })

/** A decorator Lambda that records its events and answers with `reply`. */
const recording = (reply: (event: AgentCore.InterceptorInput) => unknown = () => answer({ ok: true })) => {
  const events: Array<AgentCore.InterceptorInput> = []
  const handler: LocalGateway.LambdaHandler = async (event) => {
    events.push(event)
    return reply(event)
  }
  return { events, handler }
}

describe("LocalGateway: the decorator flavour", () => {
  it.scopedLive("turns a POST into a gateway event (headers passed) and the output back into HTTP", () =>
    Effect.gen(function*() {
      const lambda = recording(() =>
        answer(
          { jsonrpc: "2.0", id: 7, result: { content: [{ type: "text", text: "hi" }] } },
          200,
          { "payment-response": "cmVjZWlwdA==", "Content-Length": "999" }
        )
      )
      const gateway = yield* LocalGateway.make({ handler: lambda.handler })
      assert.match(gateway.url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/)
      const body = call("Target___forecast", { city: "Lisbon" }, 7)
      const http = yield* post(gateway.url, body, { headers: { "payment-signature": "tok-123", "X-Custom": "v" } })

      assert.strictEqual(http.status, 200)
      assert.strictEqual(http.headers.get("content-type"), "application/json")
      assert.strictEqual(http.headers.get("payment-response"), "cmVjZWlwdA==")
      assert.deepStrictEqual(http.json, { jsonrpc: "2.0", id: 7, result: { content: [{ type: "text", text: "hi" }] } })

      assert.strictEqual(lambda.events.length, 1)
      const event: Json = lambda.events[0]
      assert.strictEqual(event.interceptorInputVersion, "1.0")
      assert.strictEqual(event.mcp.gatewayRequest.path, "/mcp")
      assert.strictEqual(event.mcp.gatewayRequest.httpMethod, "POST")
      assert.deepStrictEqual(event.mcp.gatewayRequest.body, body)
      assert.deepStrictEqual(JSON.parse(event.mcp.rawGatewayRequest.body), body)
      assert.strictEqual(event.mcp.gatewayRequest.headers["payment-signature"], "tok-123")
      assert.strictEqual(event.mcp.gatewayRequest.headers["x-custom"], "v")
      assert.strictEqual(event.mcp.gatewayRequest.headers["accept"], "application/json, text/event-stream")
      assert.isUndefined(event.mcp.gatewayResponse)
      assert.strictEqual(AgentCore.tokenOf(event.mcp.gatewayRequest.headers, ["payment-signature"]), "tok-123")
      assert.strictEqual(gateway.invocations.length, 1)
      assert.strictEqual(gateway.invocations[0]._tag === "Lambda" && gateway.invocations[0].phase, "REQUEST")
    }))

  it.scopedLive("each invocation gets a Lambda context of its own", () =>
    Effect.gen(function*() {
      const contexts: Array<string> = []
      const gateway = yield* LocalGateway.make({
        functionName: "weather-agent",
        handler: async (_event, context) => {
          contexts.push(`${context.functionName} ${context.invokedFunctionArn} ${context.awsRequestId}`)
          return answer({ jsonrpc: "2.0", id: 1, result: {} })
        }
      })
      yield* post(gateway.url, call("a"))
      yield* post(gateway.url, call("b"))
      assert.strictEqual(contexts.length, 2)
      assert.match(contexts[0], /^weather-agent arn:aws:lambda:us-east-1:\d+:function:weather-agent /)
      assert.notStrictEqual(contexts[0].split(" ")[2], contexts[1].split(" ")[2])
    }))

  it.scopedLive("passRequestHeaders: false leaves the headers out of the event", () =>
    Effect.gen(function*() {
      const lambda = recording()
      const gateway = yield* LocalGateway.make({ handler: lambda.handler, passRequestHeaders: false })
      yield* post(gateway.url, call("x"), { headers: { "payment-signature": "tok" } })
      assert.isFalse("headers" in lambda.events[0].mcp.gatewayRequest)
    }))

  it.scopedLive("a raw-text body and a missing body are sent as they are", () =>
    Effect.gen(function*() {
      const gateway = yield* LocalGateway.make({
        handler: async (event) =>
          AgentCore.respond({
            statusCode: 200,
            headers: {},
            body: (event.mcp.gatewayRequest.body as Json).method === "tools/list" ? "{\"raw\":true}" : null
          })
      })
      const raw = yield* post(gateway.url, { jsonrpc: "2.0", id: 1, method: "tools/list" })
      assert.deepStrictEqual(raw.json, { raw: true })
      assert.strictEqual(raw.headers.get("content-type"), "application/json")
      const empty = yield* post(gateway.url, call("x"))
      assert.strictEqual(empty.status, 200)
      assert.strictEqual(empty.text, "")
    }))

  it.scopedLive("a forwarded request has nowhere to go in this flavour: a 502 JSON-RPC error", () =>
    Effect.gen(function*() {
      const gateway = yield* LocalGateway.make({ handler: async (event) => AgentCore.forward({ body: event }) })
      const http = yield* post(gateway.url, call("x", {}, "abc"))
      assert.strictEqual(http.status, 502)
      assert.strictEqual(http.json.id, "abc")
      assert.strictEqual(http.json.error.code, -32603)
      assert.include(http.json.error.message, "no target")
    }))
})

describe("LocalGateway: what the gateway answers itself", () => {
  it.scopedLive("initialize: the client's protocol version, the tools capability and a session id", () =>
    Effect.gen(function*() {
      const lambda = recording()
      const gateway = yield* LocalGateway.make({ handler: lambda.handler, instructions: "Pay per call" })
      const http = yield* post(gateway.url, {
        jsonrpc: "2.0",
        id: 0,
        method: "initialize",
        params: { protocolVersion: "2025-03-26", capabilities: {}, clientInfo: { name: "t", version: "1" } }
      })
      assert.strictEqual(http.status, 200)
      assert.deepStrictEqual(http.json, {
        jsonrpc: "2.0",
        id: 0,
        result: {
          protocolVersion: "2025-03-26",
          capabilities: { tools: { listChanged: false } },
          serverInfo: { name: "effect-x402-local-gateway", version: "0.1.0" },
          instructions: "Pay per call"
        }
      })
      assert.isString(http.headers.get("mcp-session-id"))

      const unknown = yield* post(gateway.url, {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "1999-01-01" }
      })
      assert.strictEqual(unknown.json.result.protocolVersion, LocalGateway.PROTOCOL_VERSIONS[0])
      assert.strictEqual(lambda.events.length, 0)
    }))

  it.scopedLive("notifications are accepted with 202 and no body; ping is answered; the Lambda never sees them", () =>
    Effect.gen(function*() {
      const lambda = recording()
      const gateway = yield* LocalGateway.make({ handler: lambda.handler })
      const initialized = yield* post(gateway.url, { jsonrpc: "2.0", method: "notifications/initialized" })
      assert.strictEqual(initialized.status, 202)
      assert.strictEqual(initialized.text, "")
      const cancelled = yield* post(gateway.url, {
        jsonrpc: "2.0",
        method: "notifications/cancelled",
        params: { requestId: 1 }
      })
      assert.strictEqual(cancelled.status, 202)
      const clientAnswer = yield* post(gateway.url, { jsonrpc: "2.0", id: 9, result: {} })
      assert.strictEqual(clientAnswer.status, 202)
      const ping = yield* post(gateway.url, { jsonrpc: "2.0", id: 3, method: "ping" })
      assert.deepStrictEqual(ping.json, { jsonrpc: "2.0", id: 3, result: {} })
      assert.strictEqual(lambda.events.length, 0)
    }))

  it.scopedLive("GET and DELETE on the endpoint are 405 (no server stream, no session to end); other paths 404", () =>
    Effect.gen(function*() {
      const gateway = yield* LocalGateway.make({ handler: recording().handler })
      const get = yield* post(gateway.url, undefined, { method: "GET" })
      assert.strictEqual(get.status, 405)
      assert.strictEqual(get.headers.get("allow"), "POST")
      const del = yield* post(gateway.url, undefined, { method: "DELETE" })
      assert.strictEqual(del.status, 405)
      const elsewhere = yield* post(`${gateway.origin}/other`, call("x"))
      assert.strictEqual(elsewhere.status, 404)
    }))
})

describe("LocalGateway: bad input and bad Lambdas get a JSON-RPC error, never a crash", () => {
  it.scopedLive("malformed requests: 400 with the JSON-RPC error code; the gateway keeps serving", () =>
    Effect.gen(function*() {
      const lambda = recording()
      const gateway = yield* LocalGateway.make({ handler: lambda.handler })
      const cases: ReadonlyArray<readonly [string, unknown, boolean, number, AgentCore.JsonRpcId]> = [
        ["not JSON", "{\"jsonrpc\": ", true, -32700, null],
        ["empty", "", true, -32700, null],
        ["a batch", [call("a"), call("b")], false, -32600, null],
        ["a number", 42, false, -32600, null],
        ["null", null, false, -32600, null],
        ["no method", { jsonrpc: "2.0", id: 5 }, false, -32600, 5],
        ["a method that is not a string", { jsonrpc: "2.0", id: "x", method: 12 }, false, -32600, "x"],
        ["wrong version", { jsonrpc: "1.0", id: 6, method: "tools/list" }, false, -32600, 6]
      ]
      for (const [what, body, raw, code, id] of cases) {
        const http = yield* post(gateway.url, body, { raw })
        assert.strictEqual(http.status, 400, what)
        assert.strictEqual(http.json.jsonrpc, "2.0", what)
        assert.strictEqual(http.json.error.code, code, what)
        assert.strictEqual(http.json.id, id, what)
      }
      assert.strictEqual(lambda.events.length, 0)
      const ok = yield* post(gateway.url, call("x"))
      assert.deepStrictEqual(ok.json, { ok: true })
    }))

  it.scopedLive("a Lambda that throws, answers garbage or hangs: 502 / 504 with the request's id", () =>
    Effect.gen(function*() {
      const gateway = yield* LocalGateway.make({
        timeout: "200 millis",
        handler: async (event) => {
          const tool = AgentCore.toolCallOf(event)?.tool
          switch (tool) {
            case "throws":
              throw new Error("boom")
            case "sync":
              return (null as Json).crash
            case "garbage":
              return { statusCode: 200, body: "not an InterceptorOutput" }
            case "badHeaders":
              return {
                interceptorOutputVersion: "1.0",
                mcp: { transformedGatewayResponse: { statusCode: 200, headers: { a: 1 }, body: {} } }
              }
            case "nothing":
              return { interceptorOutputVersion: "1.0", mcp: {} }
            default:
              return new Promise(() => undefined)
          }
        }
      })
      const expect = function*(tool: string, status: number, text: string) {
        const http = yield* post(gateway.url, call(tool, {}, tool))
        assert.strictEqual(http.status, status, tool)
        assert.strictEqual(http.json.id, tool)
        assert.strictEqual(http.json.error.code, -32603, tool)
        assert.include(http.json.error.message, text, tool)
      }
      yield* expect("throws", 502, "The REQUEST Lambda failed")
      // The exception's text stays inside: the caller learns only that the Lambda failed.
      assert.notInclude((yield* post(gateway.url, call("throws", {}, "again"))).text, "boom")
      yield* expect("sync", 502, "The REQUEST Lambda failed")
      yield* expect("garbage", 502, "invalid InterceptorOutput")
      yield* expect("badHeaders", 502, "invalid InterceptorOutput")
      yield* expect("nothing", 502, "no target")
      yield* expect("hangs", 504, "did not answer in time")
      assert.strictEqual(gateway.invocations.length, 7)
    }))
})

describe("LocalGateway: the interceptor flavour", () => {
  const targetAnswer = (id: unknown, text: string, headers: Record<string, string> = {}) => ({
    statusCode: 200,
    headers: { "Content-Type": "application/json", ...headers },
    body: { jsonrpc: "2.0", id, result: { content: [{ type: "text", text }] } }
  })

  it.scopedLive("REQUEST → target (with the transformed request) → RESPONSE (with the target's answer)", () =>
    Effect.gen(function*() {
      const events: Array<Json> = []
      const targetRequests: Array<LocalGateway.TargetRequest> = []
      const gateway = yield* LocalGateway.make({
        interceptor: async (event: Json) => {
          events.push(event)
          if (event.mcp.gatewayResponse === undefined) {
            return AgentCore.forward({
              headers: { "x-nvm-agent-request-id": "areq-1", "content-type": "application/json" },
              body: { ...event.mcp.gatewayRequest.body, params: { name: "forecast", arguments: { city: "Oslo" } } }
            })
          }
          return answer({ ...event.mcp.gatewayResponse.body, result: { transformed: true } }, 200, { "x-seen": "yes" })
        },
        target: async (request) => {
          targetRequests.push(request)
          return targetAnswer((request.body as Json).id, "Rain in Oslo", { "x-target": "t" })
        }
      })
      assert.strictEqual(gateway.mode, "interceptor")
      const http = yield* post(gateway.url, call("Weather___forecast", { city: "Lisbon" }, 4), {
        headers: { "payment-signature": "tok-9" }
      })
      assert.strictEqual(http.status, 200)
      assert.strictEqual(http.headers.get("x-seen"), "yes")
      assert.deepStrictEqual(http.json, { jsonrpc: "2.0", id: 4, result: { transformed: true } })

      assert.deepStrictEqual(targetRequests, [{
        headers: { "x-nvm-agent-request-id": "areq-1", "content-type": "application/json" },
        body: { jsonrpc: "2.0", id: 4, method: "tools/call", params: { name: "forecast", arguments: { city: "Oslo" } } }
      }])
      assert.strictEqual(events.length, 2)
      const [request, response] = events
      assert.isUndefined(request.mcp.gatewayResponse)
      // The RESPONSE phase sees the original request (token included) plus what the REQUEST phase set.
      assert.deepStrictEqual(response.mcp.gatewayRequest.body, call("Weather___forecast", { city: "Lisbon" }, 4))
      assert.strictEqual(response.mcp.gatewayRequest.headers["payment-signature"], "tok-9")
      assert.strictEqual(response.mcp.gatewayRequest.headers["x-nvm-agent-request-id"], "areq-1")
      assert.deepStrictEqual(response.mcp.gatewayResponse, targetAnswer(4, "Rain in Oslo", { "x-target": "t" }))
      assert.deepStrictEqual(gateway.invocations.map((i) => i._tag === "Lambda" ? i.phase : "TARGET"), [
        "REQUEST",
        "TARGET",
        "RESPONSE"
      ])
    }))

  it.scopedLive("a response from the REQUEST phase is sent at once: no target, no RESPONSE phase", () =>
    Effect.gen(function*() {
      let targetCalls = 0
      const gateway = yield* LocalGateway.make({
        interceptor: async () => ({
          ...answer({ jsonrpc: "2.0", id: 1, result: { isError: true, content: [] } }),
          mcp: {
            transformedGatewayResponse: { statusCode: 200, body: { denied: true } },
            transformedGatewayRequest: { body: {} }
          }
        }),
        target: () => {
          targetCalls++
          return targetAnswer(1, "never")
        }
      })
      const http = yield* post(gateway.url, call("x"))
      assert.deepStrictEqual(http.json, { denied: true })
      assert.strictEqual(targetCalls, 0)
      assert.strictEqual(gateway.invocations.length, 1)
    }))

  it.scopedLive("a RESPONSE body of null keeps the target's body; a failing target is a 500 the RESPONSE phase sees", () =>
    Effect.gen(function*() {
      const statuses: Array<number> = []
      const gateway = yield* LocalGateway.make({
        interceptor: async (event: Json) => {
          if (event.mcp.gatewayResponse === undefined) return AgentCore.forward({ body: event.mcp.gatewayRequest.body })
          statuses.push(event.mcp.gatewayResponse.statusCode)
          return AgentCore.respond({
            statusCode: event.mcp.gatewayResponse.statusCode,
            headers: { "content-type": "application/json" },
            body: null
          })
        },
        target: (request) => {
          if ((request.body as Json).params.name === "broken") throw new Error("target down")
          return targetAnswer((request.body as Json).id, "fine")
        }
      })
      const fine = yield* post(gateway.url, call("ok", {}, 1))
      assert.strictEqual(fine.json.result.content[0].text, "fine")
      const broken = yield* post(gateway.url, call("broken", {}, 2))
      assert.strictEqual(broken.status, 500)
      assert.strictEqual(broken.json.id, 2)
      // Generic: the target's exception text is not the caller's to read.
      assert.strictEqual(broken.json.error.message, "The target failed")
      assert.notInclude(broken.text, "target down")
      assert.deepStrictEqual(statuses, [200, 500])
    }))

  it.scopedLive("REQUEST only: the target's answer goes back as it is; an output with neither part is a 502", () =>
    Effect.gen(function*() {
      const gateway = yield* LocalGateway.make({
        interceptionPoints: ["REQUEST"],
        interceptor: async (event: Json) =>
          event.mcp.gatewayRequest.body.params.name === "empty"
            ? { interceptorOutputVersion: "1.0", mcp: {} }
            : AgentCore.forward({ body: event.mcp.gatewayRequest.body }),
        target: (request) => targetAnswer((request.body as Json).id, "direct", { "x-target": "t" })
      })
      const http = yield* post(gateway.url, call("x", {}, 3))
      assert.strictEqual(http.json.result.content[0].text, "direct")
      assert.strictEqual(http.headers.get("x-target"), "t")
      const empty = yield* post(gateway.url, call("empty", {}, 4))
      assert.strictEqual(empty.status, 502)
      assert.include(empty.json.error.message, "neither a response nor a request")
    }))
})

describe("LocalGateway with the paid handlers of @effect-x402/lambda", () => {
  const tools = async (event: AgentCore.InterceptorInput) => {
    const call = AgentCore.toolCallOf(event)
    return { content: [{ type: "text", text: `ran ${call?.tool ?? "nothing"}` }] }
  }

  it.scopedLive("requiresPayment: 402-style answer without a token, the result and a receipt with one", () =>
    Effect.gen(function*() {
      const { ledger, subscriber, token } = TestFacilitator.seeded({ planId: "plan-1", agentId: "agent-1", credits: 5 })
      const handler = requiresPayment({
        planId: "plan-1",
        agentId: "agent-1",
        credits: 2,
        layer: TestFacilitator.layer(ledger)
      })(tools)
      yield* Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose()))
      const gateway = yield* LocalGateway.make({ handler })

      const unpaid = yield* post(gateway.url, call("Agent___forecast"))
      assert.strictEqual(unpaid.status, 200)
      assert.isTrue(unpaid.json.result.isError)
      const required = Either.getOrThrow(
        X402.PaymentRequiredHeader.decodeEither(unpaid.headers.get("payment-required")!)
      )
      assert.strictEqual(required.accepts[0].planId, "plan-1")

      const paid = yield* post(gateway.url, call("Agent___forecast"), { headers: { "payment-signature": token } })
      assert.strictEqual(paid.json.result.content[0].text, "ran forecast")
      const receipt = Either.getOrThrow(X402.ReceiptHeader.decodeEither(paid.headers.get("payment-response")!))
      assert.strictEqual(receipt.creditsRedeemed, "2")
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 3)
    }))

  it.scopedLive("interceptor: the target runs only after verify, without the token; RESPONSE settles", () =>
    Effect.gen(function*() {
      const { ledger, subscriber, token } = TestFacilitator.seeded({ planId: "plan-1", agentId: "agent-1", credits: 5 })
      const handler = interceptor({
        planId: "plan-1",
        agentId: "agent-1",
        credits: 3,
        layer: TestFacilitator.layer(ledger)
      })
      yield* Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose()))
      const seen: Array<LocalGateway.TargetRequest> = []
      const gateway = yield* LocalGateway.make({
        interceptor: handler,
        target: async (request) => {
          seen.push(request)
          return {
            statusCode: 200,
            headers: { "Content-Type": "application/json" },
            body: {
              jsonrpc: "2.0",
              id: (request.body as Json).id,
              result: { content: [{ type: "text", text: "done" }] }
            }
          }
        }
      })

      const unpaid = yield* post(gateway.url, call("Agent___forecast"))
      assert.isTrue(unpaid.json.result.isError)
      assert.isString(unpaid.headers.get("payment-required"))
      assert.strictEqual(seen.length, 0)

      const paid = yield* post(gateway.url, call("Agent___forecast"), { headers: { "payment-signature": token } })
      assert.strictEqual(paid.json.result.content[0].text, "done")
      assert.isTrue(paid.json.result._meta.x402.success)
      assert.strictEqual(seen.length, 1)
      assert.isUndefined(headerOf(seen[0].headers, "payment-signature"))
      assert.isString(headerOf(seen[0].headers, "x-nvm-agent-request-id"))
      // Settled with the id the REQUEST phase verified.
      assert.strictEqual(
        ledger.settlements[0].agentRequestId,
        headerOf(seen[0].headers, "x-nvm-agent-request-id")
      )
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 2)

      const listed = yield* post(gateway.url, { jsonrpc: "2.0", id: 2, method: "tools/list" })
      assert.strictEqual(listed.status, 200)
      assert.strictEqual(ledger.settlements.length, 1)
    }))
})

describe("LocalGateway: lifecycle", () => {
  it.live("start() serves until close(); the port is free afterwards", () =>
    Effect.gen(function*() {
      const gateway = yield* Effect.promise(() => LocalGateway.start({ handler: recording().handler }))
      const ok = yield* post(gateway.url, call("x"))
      assert.deepStrictEqual(ok.json, { ok: true })
      yield* Effect.promise(() => gateway.close())
      const after = yield* Effect.promise(() =>
        fetch(gateway.url, { method: "POST", body: "{}" }).then(() => "answered", () => "refused")
      )
      assert.strictEqual(after, "refused")
    }))

  it.layer(LocalGateway.layer({ handler: recording().handler }))("as a layer", (it) => {
    it.effect("is provided as the LocalGateway service", () =>
      Effect.gen(function*() {
        const gateway = yield* LocalGateway.LocalGateway
        const ok = yield* post(gateway.url, call("x"))
        assert.deepStrictEqual(ok.json, { ok: true })
      }))
  })

  it.scopedLive("a port already taken is a ServeError, not a crash", () =>
    Effect.gen(function*() {
      const first = yield* LocalGateway.make({ handler: recording().handler })
      const port = Number(new URL(first.url).port)
      const error = yield* Effect.flip(Layer.build(LocalGateway.layer({ handler: recording().handler, port })))
      assert.strictEqual(error._tag, "ServeError")
    }))
})
