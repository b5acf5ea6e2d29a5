// Secrets (issue 6): one run through every error path of the Lambda adapters and the local gateway,
// against the live Nevermined layer and FakeNevermined over real HTTP, with every log line, span,
// error message and response captured; the API key and every token must appear in none of them.
import { Nevermined } from "@effect-x402/core"
import { httpHandler } from "@effect-x402/lambda/HttpHandler"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { AgentCoreEvents, FakeNevermined, LocalGateway, TestTelemetry } from "@effect-x402/testing"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel } from "effect"

const { Fault } = FakeNevermined

const PLAN = "plan-1"

describe("secrets never leak from the Lambda adapters", () => {
  it.scopedLive("every error path: no API key and no token in any log line, span, error message or response", () => {
    const captured = TestTelemetry.make()
    // Everything a caller or an operator could see: each output, body and header, as JSON.
    const seen: Array<string> = []
    const keep = (what: unknown) => seen.push(JSON.stringify(what))
    return Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { faults, ledger } = fake
      ledger.addPlan({ planId: PLAN })
      ledger.addPlan({ planId: "plan-other" })
      ledger.fund(fake.subscriber, PLAN, 1_000)
      const mint = (planId = PLAN) => ledger.mintToken({ planId, subscriber: fake.subscriber })
      const token = mint()
      const foreign = mint("plan-other")
      const revoked = mint()
      ledger.revoke(revoked)
      const poor = ledger.mintToken({ planId: PLAN, subscriber: "0xpoor" })
      const forged = `${token}x`
      const intruder = FakeNevermined.makeApiKey("0xintruder")
      const closed = yield* Effect.scoped(Effect.map(FakeNevermined.make(), (other) => other.url))

      const live = (options: Partial<Nevermined.Options> = {}) =>
        Nevermined.layer({
          apiKey: fake.apiKey,
          backendUrl: fake.url,
          timeouts: { verify: "1 second", settle: "1500 millis" },
          retry: { baseDelay: "5 millis", maxDelay: "20 millis" },
          ...options
        }).pipe(Layer.provide(FetchHttpClient.layer))
      // The handlers' own runtimes report to the same capture, debug lines included.
      const services = Layer.merge(captured.layer, Logger.minimumLogLevel(LogLevel.All))
      const context = AgentCoreEvents.context()
      const dispose = (handler: { readonly runtime: { readonly dispose: () => Promise<void> } }) =>
        Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose()))

      // A paid tool that can be told to fail, to answer isError, or to ask for an invalid amount.
      let mode: "ok" | "throw" | "isError" | "badAmount" = "ok"
      const tool = () => {
        switch (mode) {
          case "throw":
            throw new Error("the tool broke")
          case "isError":
            return { isError: true, content: [{ type: "text", text: "no" }] }
          case "badAmount":
            return { content: [{ type: "text", text: "ok" }], _meta: { creditsToCharge: "-1" } }
          case "ok":
            return { content: [{ type: "text", text: "ok" }] }
        }
      }
      const decorator = requiresPayment({ planId: PLAN, layer: live(), services })(tool)
      const wrongKey = requiresPayment({ planId: PLAN, layer: live({ apiKey: intruder }), services })(tool)
      const unreachable = requiresPayment({ planId: PLAN, layer: live({ backendUrl: closed }), services })(tool)
      const http = httpHandler({ planId: PLAN, layer: live(), services })(() => {
        if (mode === "throw") throw new Error("the handler broke")
        return { statusCode: 200, headers: mode === "badAmount" ? { "x-credits-to-charge": "1.5" } : {}, body: "ok" }
      })
      const gatewayInterceptor = interceptor({ planId: PLAN, layer: live(), services })
      for (const handler of [decorator, wrongKey, unreachable, http, gatewayInterceptor]) yield* dispose(handler)

      const invoke = (handler: (event: never, context: never) => Promise<unknown>, event: unknown) =>
        Effect.promise(() => handler(event as never, context as never)).pipe(Effect.tap(keep))
      const tokens = [token, foreign, revoked, poor, forged]
      const call = (t?: string) => AgentCoreEvents.request(t === undefined ? {} : { token: t })

      // requiresPayment: no token, refused tokens of every kind, then the facilitator failing at verify,
      // each failure echoing the secrets back in its body.
      yield* invoke(decorator, call())
      for (const t of tokens) yield* invoke(decorator, call(t))
      const echo = `token ${token} key ${fake.apiKey}`
      const verifyFaults = [
        Fault.status(400, "BCK.X402.0005", echo),
        Fault.status(500, "BCK.X402.0500", echo),
        Fault.wrongShape({ isValid: token, x402AccessToken: token, key: fake.apiKey }),
        Fault.malformedJson,
        Fault.dropConnection(),
        Fault.noAnswer(),
        Fault.rateLimited(60)
      ]
      for (const fault of verifyFaults) {
        faults.next("verify", fault)
        yield* invoke(decorator, call(token))
        faults.clear()
      }
      faults.always("verify", Fault.status(503, "BCK.X402.0503", echo))
      yield* invoke(decorator, call(token))
      faults.clear()
      yield* invoke(wrongKey, call(token))
      yield* invoke(unreachable, call(token))

      // ... and at settle, then the tool failing, answering isError, asking for an invalid amount.
      const settleFaults = [
        Fault.status(400, "BCK.X402.0059", echo),
        Fault.status(500, "BCK.X402.0500", echo),
        Fault.wrongShape({ success: token, transaction: fake.apiKey }),
        Fault.malformedJson,
        Fault.dropConnection({ applied: true }),
        Fault.noAnswer()
      ]
      for (const fault of settleFaults) {
        faults.next("settle", fault)
        yield* invoke(decorator, call(token))
        faults.clear()
      }
      for (const m of ["throw", "isError", "badAmount"] as const) {
        mode = m
        yield* invoke(decorator, call(token))
      }
      mode = "ok"

      // Malformed events with the token where something else belongs.
      const request = call(token)
      const malformed: ReadonlyArray<unknown> = [
        { mcp: { gatewayRequest: { ...request.mcp.gatewayRequest, headers: [token] } } },
        { mcp: { gatewayRequest: { ...request.mcp.gatewayRequest, headers: token } } },
        { mcp: { gatewayRequest: { ...request.mcp.gatewayRequest, headers: { "payment-signature": [1, token] } } } },
        { mcp: { gatewayRequest: { ...request.mcp.gatewayRequest, body: { method: [token] } } } },
        { mcp: { gatewayRequest: { ...request.mcp.gatewayRequest, body: { method: "tools/call", id: [token] } } } },
        { interceptorInputVersion: [token], mcp: request.mcp },
        { mcp: { gatewayRequest: token } },
        [token]
      ]
      for (const event of malformed) {
        yield* invoke(decorator, event)
        yield* invoke(gatewayInterceptor, event)
      }

      // The interceptor: refused and failing REQUESTs, then RESPONSEs that cannot be settled.
      yield* invoke(gatewayInterceptor, call())
      for (const t of tokens) yield* invoke(gatewayInterceptor, call(t))
      faults.next("verify", Fault.status(500, "BCK.X402.0500", echo))
      yield* invoke(gatewayInterceptor, call(token))
      const forwarded = yield* invoke(gatewayInterceptor, call(token))
      const agentRequestId = (forwarded as { mcp: { transformedGatewayRequest: { headers: Record<string, string> } } })
        .mcp.transformedGatewayRequest.headers["x-nvm-agent-request-id"]
      for (const fault of settleFaults) {
        faults.next("settle", fault)
        yield* invoke(gatewayInterceptor, AgentCoreEvents.response({ token, agentRequestId }))
        faults.clear()
      }
      yield* invoke(gatewayInterceptor, AgentCoreEvents.response({ agentRequestId }))
      yield* invoke(
        gatewayInterceptor,
        AgentCoreEvents.response({ token, responseHeaders: { "X-Credits-To-Charge": "1e309" } })
      )

      // httpHandler: the same paths over API Gateway v2 events.
      const v2 = (t?: string) => AgentCoreEvents.apiGatewayV2(t === undefined ? {} : { token: t })
      yield* invoke(http, v2())
      for (const t of tokens) yield* invoke(http, v2(t))
      for (const fault of verifyFaults.slice(0, 3)) {
        faults.next("verify", fault)
        yield* invoke(http, v2(token))
        faults.clear()
      }
      for (const fault of settleFaults.slice(0, 3)) {
        faults.next("settle", fault)
        yield* invoke(http, v2(token))
        faults.clear()
      }
      for (const m of ["throw", "badAmount"] as const) {
        mode = m
        yield* invoke(http, v2(token))
      }
      mode = "ok"
      yield* invoke(http, { ...v2(token), headers: [token] })
      yield* invoke(http, { ...v2(token), requestContext: { http: { method: [token] } } })

      // The local gateway over real HTTP: its own server spans see the payment-signature header.
      const gateway = yield* LocalGateway.make({ handler: decorator })
      const target = yield* LocalGateway.make({
        interceptor: gatewayInterceptor,
        target: () => ({ body: { jsonrpc: "2.0", id: 1, result: { content: [] } } })
      })
      for (const url of [gateway.url, target.url]) {
        for (const t of [undefined, token, forged]) {
          const response = yield* Effect.promise(() =>
            fetch(url, {
              method: "POST",
              headers: { "content-type": "application/json", ...(t !== undefined ? { "payment-signature": t } : {}) },
              body: JSON.stringify(AgentCoreEvents.toolCall("Target___tool", {}, 1))
            }).then(async (r) => {
              const headers: Array<string> = []
              r.headers.forEach((value, name) => headers.push(`${name}: ${value}`))
              return { status: r.status, headers, body: await r.text() }
            })
          )
          keep(response)
        }
      }

      const secrets = [
        fake.apiKey,
        fake.apiKey.split(":")[1],
        intruder,
        intruder.split(":")[1],
        ...ledger.tokens.keys(),
        revoked,
        poor,
        forged
      ]
      // The run did reach the paths it claims to.
      assert.isAbove(ledger.settlements.length, 2)
      assert.isAbove(captured.spans.length, 100)
      assert.isTrue(captured.spans.some((span) => span.attributes.has("http.request.header.payment-signature")))
      assert.isAbove(captured.logs.length, 40)
      const everything = [captured.text(), ...seen].join("\n")
      for (const secret of secrets) {
        const at = everything.indexOf(secret)
        const context = at < 0 ? "" : everything.slice(Math.max(0, at - 300), at + secret.length + 50)
        assert.isFalse(at >= 0, `a secret leaked here: ${context.split(secret).join("<SECRET>")}`)
      }
      // The failures stay readable: statuses, backend codes and reasons survive.
      for (const readable of ["BCK.X402.0005", "HttpStatus 401", "outcome unknown", "insufficient_funds"]) {
        assert.include(everything, readable)
      }
    }).pipe(Effect.provide(captured.layer), Logger.withMinimumLogLevel(LogLevel.All))
  })
})
