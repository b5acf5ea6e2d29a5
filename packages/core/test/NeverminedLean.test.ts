// The live layer's lean path (`Nevermined.layerFetchClient`, no tracer: verify and settle call
// `fetch` themselves) against the platform client's behaviour. The fault tests of Nevermined.test.ts
// and hostile/BackendBounds.test.ts run on it by default (`facilitator` in the fixtures).
import type { PaymentError } from "@effect-x402/core"
import { Nevermined } from "@effect-x402/core"
import { FakeNevermined, TestTelemetry } from "@effect-x402/testing"
import { FetchHttpClient, HttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Redacted } from "effect"
import * as Http from "node:http"
import { counting, facilitator, paymentRequired, realSleep, seed, waitUntil } from "./Nevermined.fixtures.js"

const { Fault } = FakeNevermined

describe("Nevermined.layerFetchClient: the lean path", () => {
  it.scopedLive("verify and settle over it: the backend sees the same requests; a Fetch service in context is used", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted, token } = seed(fake)
      const live = yield* facilitator(fake)
      let fetched = 0
      const counted: typeof globalThis.fetch = (input, init) => {
        fetched++
        return globalThis.fetch(input, init)
      }
      const request = { paymentRequired, token: redacted, maxAmount: 1 }
      const verified = yield* live.verify(request).pipe(Effect.provideService(FetchHttpClient.Fetch, counted))
      const settled = yield* live.settle({ ...request, agentRequestId: verified.agentRequestId })
      assert.isTrue(verified.isValid)
      assert.isTrue(settled.success)
      assert.strictEqual(fetched, 1, "the Fetch service in the call's context sent verify")
      assert.deepStrictEqual(fake.requests.map((r) => r.url), ["/api/v1/x402/verify", "/api/v1/x402/settle"])
      for (const sent of fake.requests) {
        assert.strictEqual(sent.method, "POST")
        assert.strictEqual(sent.headers["authorization"], `Bearer ${fake.apiKey}`)
        assert.strictEqual(sent.headers["content-type"], "application/json")
        assert.strictEqual(sent.headers["accept"], "application/json")
        assert.strictEqual(sent.headers["nevermined-version"], "1.1")
        assert.include(sent.body, `"x402AccessToken":"${token}"`)
      }
    }))

  it.scopedLive("with a tracer installed, requests go through the client: its span exists, without a secret", () => {
    const captured = TestTelemetry.make()
    return Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted, token } = seed(fake)
      const live = yield* facilitator(fake)
      yield* live.verify({ paymentRequired, token: redacted, maxAmount: 1 })
      const client = captured.spans.find((span) => span.name === "http.client POST")
      assert.isDefined(client, `spans: ${captured.spans.map((s) => s.name).join(", ")}`)
      assert.strictEqual(client!.attributes.get("url.path"), "/api/v1/x402/verify")
      const text = captured.text()
      assert.notInclude(text, fake.apiKey.split(":")[1])
      assert.notInclude(text, token)
    }).pipe(Effect.provide(captured.layer))
  })

  it.scopedLive("a client wrapped around it is used as given (its request tap sees every request)", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const tapped = counting(Nevermined.layerFetchClient)
      const live = yield* facilitator(fake, {}, tapped.layer)
      const request = { paymentRequired, token: redacted, maxAmount: 1 }
      yield* live.verify(request)
      yield* live.settle(request)
      assert.strictEqual(tapped.count(), 2)
      assert.strictEqual(fake.requests.length, 2)
    }))

  it.scopedLive("transformClient: the transformed client sends every request (no lean path around it)", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const seen: Array<string> = []
      const live = yield* facilitator(fake, {
        transformClient: (client) =>
          HttpClient.tapRequest(client, (request) => Effect.sync(() => seen.push(request.url)))
      })
      const request = { paymentRequired, token: redacted, maxAmount: 1 }
      yield* live.verify(request)
      yield* live.settle(request)
      assert.deepStrictEqual(seen, [`${fake.url}/api/v1/x402/verify`, `${fake.url}/api/v1/x402/settle`])
    }))

  it.scopedLive("a backend that never answers is cut off at the timeout (no fork: the request's own timer), then works again", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      const live = yield* facilitator(fake, { timeouts: { verify: "300 millis", settle: "300 millis" } })
      const request = { paymentRequired, token: redacted, maxAmount: 1 }
      fake.faults.next("verify", Fault.noAnswer())
      const verify = yield* Effect.flip(live.verify(request))
      fake.faults.next("settle", Fault.noAnswer())
      const settle = yield* Effect.flip(live.settle({ ...request, deadline: Date.now() + 200 }))
      assert.deepStrictEqual(
        [verify.kind, verify.requestSent, verify.detail, settle.kind, settle.requestSent, settle.detail],
        ["Timeout", true, "no answer within 300ms", "Timeout", true, "cut off at the call's deadline"]
      )
      fake.faults.clear()
      const again = yield* live.verify(request)
      assert.isTrue(again.isValid)
    }))

  it.scopedLive("failures on the lean path: the same kinds, and no secret the backend echoes", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted, token } = seed(fake)
      const live = yield* facilitator(fake, { retry: { maxAttempts: 1 } })
      const request = { paymentRequired, token: redacted, maxAmount: 1 }
      const failed = (effect: Effect.Effect<unknown, PaymentError.FacilitatorError>) =>
        effect.pipe(Effect.flip, Effect.ensuring(Effect.sync(() => fake.faults.clear())))

      fake.faults.next("verify", Fault.status(400, "BCK.X402.0005", `bad token ${token} for key ${fake.apiKey}`))
      const status = yield* failed(live.verify(request))
      fake.faults.next("verify", Fault.wrongShape({ isValid: token }))
      const shape = yield* failed(live.verify(request))
      fake.faults.next("settle", Fault.dropConnection())
      const dropped = yield* failed(live.settle(request))

      assert.deepStrictEqual(
        [status.kind, shape.kind, dropped.kind],
        ["HttpStatus", "MalformedResponse", "ConnectionDropped"]
      )
      assert.strictEqual(status.code, "BCK.X402.0005")
      assert.isTrue(dropped.requestSent)
      for (const error of [status, shape, dropped]) {
        const text = `${error.message} ${JSON.stringify(error)}`
        assert.notInclude(text, token)
        assert.notInclude(text, fake.apiKey.split(":")[1])
      }
    }))

  // A server on loopback that takes requests and never answers, counting the requests whose
  // connection went away: what the agent's abort looks like from the backend.
  const silentServer = Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly received: () => number; readonly closed: () => number }>(
      (resume) => {
        let received = 0
        let closed = 0
        const server = Http.createServer((req) => {
          received++
          req.socket.on("close", () => closed++)
        })
        server.listen(0, "127.0.0.1", () => {
          const address = server.address() as { readonly port: number }
          resume(Effect.succeed(
            Object.assign(server, {
              url: `http://127.0.0.1:${address.port}`,
              received: () => received,
              closed: () => closed
            })
          ))
        })
      }
    ),
    (server) =>
      Effect.promise(() =>
        new Promise<void>((resolve) => {
          const s = server as unknown as Http.Server
          s.closeAllConnections()
          s.close(() => resolve())
        })
      )
  )

  it.scopedLive("cut off, the request is aborted: the backend sees its connection closed", () =>
    Effect.gen(function*() {
      const server = yield* silentServer
      const client = yield* Layer.build(Nevermined.layerFetchClient)
      const live = yield* Nevermined.make({
        apiKey: "sandbox:eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIweDEyMyJ9.c2lnbmF0dXJlc2lnbmF0dXJl",
        backendUrl: server.url,
        timeouts: { verify: "300 millis" }
      }).pipe(Effect.provide(client))
      const error = yield* Effect.flip(live.verify({ paymentRequired, token: Redacted.make("tok"), maxAmount: 1 }))
      assert.deepStrictEqual([error.kind, error.requestSent], ["Timeout", true])
      assert.strictEqual(server.received(), 1)
      yield* waitUntil(() => server.closed() === 1, "the backend sees the aborted request's connection close")
    }))

  it.scopedLive("interrupted, the request is aborted: the backend sees its connection closed", () =>
    Effect.gen(function*() {
      const server = yield* silentServer
      const client = yield* Layer.build(Nevermined.layerFetchClient)
      const live = yield* Nevermined.make({
        apiKey: "sandbox:eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIweDEyMyJ9.c2lnbmF0dXJlc2lnbmF0dXJl",
        backendUrl: server.url
      }).pipe(Effect.provide(client))
      const fiber = yield* Effect.fork(live.verify({ paymentRequired, token: Redacted.make("tok"), maxAmount: 1 }))
      yield* waitUntil(() => server.received() === 1, "the request reached the backend")
      yield* Fiber.interrupt(fiber)
      yield* waitUntil(() => server.closed() === 1, "the backend sees the aborted request's connection close")
      yield* realSleep(10)
    }))
})
