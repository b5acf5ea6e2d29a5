// Hostile suite for `HttpPaywall` (RELIABILITY.md, "Money-tight"), over real HTTP on 127.0.0.1:
// invariant 9 (a streamed answer that fails after settlement is visibly failed, never a clean end),
// invariant 6 (nothing internal reaches the caller: the app's failures and defects, a credits-policy
// bug), invariant 10 (`Authorization` refused as a token header), and invariants 2, 1 and 11
// re-checked. Each case is reconciled against the TestFacilitator ledger; logs are captured with
// TestTelemetry and searched for secrets.
import { HttpPaywall, PaymentContext } from "@effect-x402/core"
import { TestFacilitator, TestTelemetry } from "@effect-x402/testing"
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpRouter,
  HttpServerResponse
} from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Layer, Schema, Stream } from "effect"
import { post, serve, serveLayer } from "../HttpPaywall.fixtures.js"

const PRICE = 3
const SECRET = "sk_live_51HOSTILEsecretVALUE"

/** Messages a failing app might carry: a URL with a key in its query, a bearer value, key=value. */
const secretMessages = [
  `GET https://api.vendor.example/v1/search?api_key=${SECRET}&q=x failed: 500`,
  `upstream refused Authorization: Bearer ${SECRET}`,
  `db connect failed: password=${SECRET} host=db.internal`,
  `token=${SECRET}`,
  `{"apiKey":"${SECRET}"}`
]

const paid = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
  options: Partial<HttpPaywall.Options> = {}
) =>
  HttpRouter.empty.pipe(
    HttpRouter.post("/paid", app.pipe(HttpPaywall.middleware({ planId: "plan-1", credits: PRICE, ...options })))
  )

const encoder = new TextEncoder()

/** Reads a body with plain fetch, to the end or to the error: what a user's client sees. */
const read = (url: string, token: string) =>
  Effect.promise(async () => {
    const response = await fetch(url, { method: "POST", headers: { "payment-signature": token } })
    const decoder = new TextDecoder()
    let text = ""
    let failed: unknown = undefined
    try {
      const reader = response.body!.getReader()
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        text += decoder.decode(value, { stream: true })
      }
    } catch (error) {
      failed = error
    }
    return { status: response.status, headers: response.headers, text, failed }
  })

const failingStream = (message: string) =>
  Stream.make("part 1\n", "part 2\n").pipe(
    Stream.map((s) => encoder.encode(s)),
    Stream.concat(Stream.fail(new Error(message)))
  )

describe("hostile: no silent truncation (HttpPaywall, invariant 9)", () => {
  it.scopedLive("a streamed body that fails after settlement is an error for a fetch client, never a clean end", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100 })
    const capture = TestTelemetry.make()
    return Effect.gen(function*() {
      const url = yield* serve(paid(HttpServerResponse.stream(failingStream(secretMessages[0]), {
        contentType: "text/plain"
      })))
      const seen = yield* read(`${url}/paid`, token)
      assert.strictEqual(seen.status, 200)
      assert.isDefined(seen.failed, `the body ended cleanly: ${seen.text}`)
      // Charged when the headers went out: the receipt is in them and the ledger agrees.
      assert.isNotNull(seen.headers.get("payment-response"))
      assert.strictEqual(ledger.settlements.length, 1)
      assert.strictEqual(ledger.settlements[0].credits, PRICE)
      assert.notInclude(seen.text, SECRET)
      const logs = capture.text()
      assert.include(logs, "failed while streaming")
      assert.notInclude(logs, SECRET)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(capture.layer))
  })

  it.scopedLive("an event stream gets an error event, then the read fails", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100 })
    const capture = TestTelemetry.make()
    return Effect.gen(function*() {
      const events = Stream.make("data: {\"n\":1}\n\n").pipe(
        Stream.map((s) => encoder.encode(s)),
        Stream.concat(Stream.die(new Error(secretMessages[1])))
      )
      const url = yield* serve(paid(HttpServerResponse.stream(events, { contentType: "text/event-stream" })))
      const seen = yield* read(`${url}/paid`, token)
      assert.isDefined(seen.failed)
      assert.include(seen.text, "event: error")
      assert.notInclude(seen.text, SECRET)
      assert.strictEqual(ledger.settlements.length, 1)
      const requestId = /"requestId":"([^"]+)"/.exec(seen.text)?.[1]
      assert.isString(requestId)
      assert.include(capture.text(), requestId!)
      assert.notInclude(capture.text(), SECRET)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(capture.layer))
  })

  it.scopedLive("a stream that completes ends cleanly, settled once (control)", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100 })
    return Effect.gen(function*() {
      const body = Stream.make("part 1\n", "part 2\n").pipe(Stream.map((s) => encoder.encode(s)))
      const url = yield* serve(paid(HttpServerResponse.stream(body, { contentType: "text/plain" })))
      const seen = yield* read(`${url}/paid`, token)
      assert.isUndefined(seen.failed)
      assert.strictEqual(seen.text, "part 1\npart 2\n")
      assert.strictEqual(ledger.settlements.length, 1)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(TestTelemetry.make().layer))
  })
})

describe("hostile: nothing internal reaches the caller (HttpPaywall, invariant 6)", () => {
  const failing = (message: string, how: "fail" | "die" | "throw") =>
    how === "fail"
      ? Effect.fail(new Error(message))
      : how === "die"
      ? Effect.die(new Error(message))
      : Effect.sync(() => {
        throw new Error(message)
      })

  it.scopedLive("an app's failure or defect answers a generic 500 with a correlation id, unsettled", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100 })
    const capture = TestTelemetry.make()
    return Effect.gen(function*() {
      for (const how of ["fail", "die", "throw"] as const) {
        for (const message of secretMessages) {
          const url = yield* serve(paid(failing(message, how)))
          for (const caller of [token, undefined]) {
            const seen = yield* post(`${url}/paid`, caller === undefined ? {} : { token: caller })
            assert.notInclude(seen.text, SECRET, `${how} ${message}`)
            assert.notInclude(seen.text, "vendor.example")
            if (caller === undefined) {
              assert.strictEqual(seen.status, 402)
              continue
            }
            assert.strictEqual(seen.status, 500)
            const body = seen.json as { error: string; message: string; requestId: string }
            assert.strictEqual(body.error, "Internal Server Error")
            assert.strictEqual(body.message, "Internal error; nothing was charged")
            assert.include(capture.text(), body.requestId)
          }
        }
      }
      assert.strictEqual(ledger.settlements.length, 0)
      assert.notInclude(capture.text(), SECRET)
      assert.include(capture.text(), "<redacted>")
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(capture.layer))
  })

  it.scopedLive("a failing credits policy is a 500 (a server bug), not a verification failure; its detail is logged redacted", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100 })
    const capture = TestTelemetry.make()
    return Effect.gen(function*() {
      const policies = [
        () => {
          throw new Error(secretMessages[0])
        },
        () => Promise.reject(new Error(secretMessages[2])),
        () => Effect.fail(new Error(secretMessages[3])),
        () => -1,
        () => "NaN"
      ]
      for (const credits of policies) {
        const url = yield* serve(paid(HttpServerResponse.text("paid output"), { credits }))
        const seen = yield* post(`${url}/paid`, { token })
        assert.strictEqual(seen.status, 500)
        assert.notInclude(seen.text, "paid output")
        assert.notInclude(seen.text, "Verification failed")
        assert.notInclude(seen.text, "Invalid credits")
        assert.notInclude(seen.text, SECRET)
        assert.isString((seen.json as { requestId?: unknown }).requestId)
      }
      assert.strictEqual(ledger.calls.length, 0, "verify was called with no valid amount")
      assert.notInclude(capture.text(), SECRET)
      assert.include(capture.text(), "Invalid credits from credits policy")
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(capture.layer))
  })

  it.scopedLive("an invalid amount asked by the handler withholds the output with a generic 500, unsettled", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100 })
    const capture = TestTelemetry.make()
    return Effect.gen(function*() {
      const app = Effect.gen(function*() {
        const payment = yield* PaymentContext.PaymentContext
        yield* payment.chargeCredits(-5)
        return HttpServerResponse.text("paid output")
      })
      const url = yield* serve(paid(app))
      const seen = yield* post(`${url}/paid`, { token })
      assert.strictEqual(seen.status, 500)
      assert.notInclude(seen.text, "paid output")
      assert.notInclude(seen.text, "Invalid credits")
      assert.strictEqual(seen.paymentResponse?.success, false)
      assert.strictEqual(ledger.settlements.length, 0)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(capture.layer))
  })

  it.scopedLive("a respondable failure keeps its own answer (404), unsettled", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100 })
    return Effect.gen(function*() {
      const url = yield* serve(paid(HttpRouter.empty.pipe(HttpRouter.get("/other", HttpServerResponse.empty()))))
      const seen = yield* post(`${url}/paid`, { token })
      assert.strictEqual(seen.status, 404)
      assert.strictEqual(ledger.settlements.length, 0)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(TestTelemetry.make().layer))
  })

  it.scopedLive("property: no generated failure message reaches the answer or the log unredacted", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100 })
    const capture = TestTelemetry.make()
    const secret = fc.stringMatching(/^[A-Za-z0-9]{16,32}$/)
    const message = fc.tuple(
      secret,
      fc.constantFrom(
        (s: string) => `https://h.example/p?key=${s}`,
        (s: string) => `Bearer ${s}`,
        (s: string) => `api_key=${s}`,
        (s: string) => `password: ${s}`,
        (s: string) => `"token":"${s}"`,
        (s: string) => `x-api-key=${s}`
      ),
      fc.string({ maxLength: 20 })
    ).map(([s, shape, noise]) => ({ secret: s, text: `${noise} ${shape(s)} ${noise}` }))
    return Effect.gen(function*() {
      let current = { secret: "", text: "" }
      const url = yield* serve(paid(Effect.suspend(() => Effect.die(new Error(current.text)))))
      const samples = fc.sample(message, { numRuns: 40, seed: 6 })
      for (const sample of samples) {
        current = sample
        const seen = yield* post(`${url}/paid`, { token })
        assert.strictEqual(seen.status, 500)
        assert.notInclude(seen.text, sample.secret)
      }
      const logs = capture.text()
      for (const sample of samples) assert.notInclude(logs, sample.secret, sample.text)
      assert.strictEqual(ledger.settlements.length, 0)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(capture.layer))
  })
})

describe("hostile: no identity token to the facilitator (HttpPaywall, invariant 10)", () => {
  it("tokenHeaders with Authorization, in any case or spacing, is refused at construction", () => {
    for (const name of ["Authorization", "authorization", "AUTHORIZATION", " Authorization "]) {
      assert.throws(() => HttpPaywall.middleware({ planId: "plan-1", tokenHeaders: ["x-payment", name] }), RangeError)
      assert.throws(() => HttpPaywall.layerHttpApi({ planId: "plan-1", tokenHeaders: [name] }), RangeError)
    }
    assert.throws(() => HttpPaywall.middleware({ planId: "plan-1", tokenHeaders: [] }), RangeError)
    assert.doesNotThrow(() => HttpPaywall.middleware({ planId: "plan-1", tokenHeaders: ["X-Payment"] }))
  })

  it("tokenFromHeaders never reads Authorization, whatever the names say", () => {
    const headers = { authorization: "Bearer gateway-identity-jwt" }
    assert.isTrue(HttpPaywall.tokenFromHeaders(headers, ["authorization"])._tag === "None")
  })
})

describe("hostile: fail closed on answers, and the caller never sets the price (HttpPaywall, invariants 2 and 1)", () => {
  it.scopedLive("property: every status < 400 the app answers is settled at the configured price", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100_000 })
    return Effect.gen(function*() {
      let status = 200
      let body = ""
      const url = yield* serve(
        paid(
          Effect.suspend(() =>
            Effect.succeed(HttpServerResponse.text(body, { status, contentType: "application/json" }))
          )
        )
      )
      const cases = fc.sample(
        fc.record({
          status: fc.constantFrom(200, 201, 202, 203, 204, 206, 299, 300, 302, 304, 399, 400, 404, 429, 500, 502),
          body: fc.oneof(
            fc.constant(""),
            fc.constant(`{"creditsToCharge":0}`),
            fc.constant(`{"result":{"isError":true,"_meta":{"creditsToCharge":0}}}`),
            fc.constant(`data: {"jsonrpc":"2.0","error":null}\n\n`),
            fc.string()
          )
        }),
        { numRuns: 40, seed: 2 }
      )
      for (const sample of cases) {
        status = sample.status
        body = sample.body
        const before = ledger.settlements.length
        const seen = yield* post(`${url}/paid`, {
          token,
          headers: { "x-credits-to-charge": "0", "content-type": "application/json" },
          body: { creditsToCharge: 0 }
        })
        assert.strictEqual(seen.status, sample.status)
        const settled = ledger.settlements.length - before
        assert.strictEqual(settled, sample.status < 400 ? 1 : 0, JSON.stringify(sample))
        if (settled === 1) assert.strictEqual(ledger.settlements.at(-1)!.credits, PRICE)
      }
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(TestTelemetry.make().layer))
  })
})

describe("hostile: release covers outages, never refusals (HttpPaywall, invariant 11)", () => {
  it.scopedLive("release lets output go on a lost settle answer, withholds on a refusal", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100 })
    return Effect.gen(function*() {
      const url = yield* serve(paid(HttpServerResponse.text("paid output"), { onSettleFailure: "release" }))
      ledger.failNext("settle", { _tag: "Indeterminate", applied: false })
      const outage = yield* post(`${url}/paid`, { token })
      assert.strictEqual(outage.text, "paid output")
      assert.strictEqual(outage.paymentResponse?.success, false)
      ledger.failNext("settle", { _tag: "Rejected", reason: "insufficient_funds" })
      const refused = yield* post(`${url}/paid`, { token })
      assert.notInclude(refused.text, "paid output")
      assert.strictEqual(refused.status, 402)
      assert.strictEqual(ledger.settlements.length, 0)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(TestTelemetry.make().layer))
  })
})

// ---------------------------------------------------------------------------
// HttpApi endpoints: `HttpPaywall.Paid`
// ---------------------------------------------------------------------------

class Api extends HttpApi.make("agent").add(
  HttpApiGroup.make("tools")
    .add(HttpApiEndpoint.post("answer", "/answer").addSuccess(Schema.String).middleware(HttpPaywall.Paid))
    .add(HttpApiEndpoint.post("crash", "/crash").addSuccess(Schema.String).middleware(HttpPaywall.Paid))
    .add(HttpApiEndpoint.post("stream", "/stream").addSuccess(Schema.String).middleware(HttpPaywall.Paid))
) {}

const ApiLive = HttpApiBuilder.group(Api, "tools", (handlers) =>
  handlers
    .handle("answer", () => Effect.succeed("paid output"))
    .handle("crash", () => Effect.die(new Error(secretMessages[0])))
    .handleRaw("stream", () =>
      Effect.succeed(HttpServerResponse.stream(failingStream(secretMessages[2]), { contentType: "text/plain" }))))

const serveApi = (options: Partial<HttpPaywall.Options> = {}) =>
  serveLayer(
    HttpApiBuilder.serve().pipe(
      Layer.provide(HttpApiBuilder.api(Api)),
      Layer.provide(ApiLive),
      Layer.provide(HttpPaywall.layerHttpApi({ planId: "plan-1", credits: PRICE, ...options }))
    )
  )

describe("hostile: HttpApi endpoints (HttpPaywall.Paid)", () => {
  it.scopedLive("a failing credits policy is a generic 500 with a requestId, unverified, unsettled", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100 })
    const capture = TestTelemetry.make()
    return Effect.gen(function*() {
      const url = yield* serveApi({
        credits: () => {
          throw new Error(secretMessages[0])
        }
      })
      const seen = yield* post(`${url}/answer`, { token })
      assert.strictEqual(seen.status, 500)
      assert.notInclude(seen.text, "paid output")
      assert.notInclude(seen.text, "Invalid credits")
      assert.notInclude(seen.text, SECRET)
      assert.isString((seen.json as { requestId?: unknown }).requestId)
      assert.strictEqual(ledger.calls.length, 0)
      assert.notInclude(capture.logs.join("\n"), SECRET)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(capture.layer))
  })

  it.scopedLive("a handler's defect reaches no answer and is not settled", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100 })
    return Effect.gen(function*() {
      const url = yield* serveApi()
      const seen = yield* post(`${url}/crash`, { token })
      assert.strictEqual(seen.status, 500)
      assert.notInclude(seen.text, SECRET)
      assert.strictEqual(ledger.settlements.length, 0)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(TestTelemetry.make().layer))
  })

  it.scopedLive("a streamed answer that fails after settlement is an error for a fetch client", () => {
    const { ledger, token } = TestFacilitator.seeded({ credits: 100 })
    const capture = TestTelemetry.make()
    return Effect.gen(function*() {
      const url = yield* serveApi()
      const seen = yield* read(`${url}/stream`, token)
      assert.strictEqual(seen.status, 200)
      assert.isDefined(seen.failed, `the body ended cleanly: ${seen.text}`)
      assert.strictEqual(ledger.settlements.length, 1)
      assert.strictEqual(ledger.settlements[0].credits, PRICE)
      assert.notInclude(capture.logs.join("\n"), SECRET)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)), Effect.provide(capture.layer))
  })
})

describe("property: Authorization is refused as a token header however it is spelled", () => {
  it("generated casings and padding", () =>
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { minLength: 13, maxLength: 13 }),
        fc.constantFrom("", " ", "\t"),
        (upper, pad) => {
          const name = pad + [..."authorization"].map((c, i) => upper[i] ? c.toUpperCase() : c).join("") + pad
          assert.throws(() => HttpPaywall.middleware({ planId: "plan-1", tokenHeaders: [name] }), RangeError)
        }
      ),
      { numRuns: 100, seed: 10 }
    ))
})
