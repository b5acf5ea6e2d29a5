// The public home of what an adapter author needs: one redaction rule (the union of the two copies
// core and lambda had), user callbacks as Effects, and the call span.
import { Adapter, CallSpan, Credits } from "@effect-x402/core"
import { TestTelemetry } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"

describe("Adapter.redact: one rule for every adapter", () => {
  it("takes out URL queries and credentials of any scheme, bearer/basic values and secret-named pairs", () => {
    const text = [
      "GET https://pricing.example/v1?api_key=SECRET01 failed",
      "wss://user:SECRET02@db.example/x?session=SECRET03",
      "Authorization: Bearer SECRET04",
      "basic SECRET05",
      "apiKey=SECRET06 access_token=SECRET07 x402AccessToken: SECRET08 payment-signature=SECRET09",
      "client_secret=SECRET10 password=SECRET11 passwd=SECRET12 signature=SECRET13 credential=SECRET14",
      "sessionId=SECRET15 {\\\"token\\\":\\\"SECRET16\\\"}"
    ].join("\n")
    const out = Adapter.redact(text)
    assert.notMatch(out, /SECRET/)
    // The shape of the message stays readable.
    assert.include(out, "GET https://pricing.example/v1?<redacted> failed")
    assert.include(out, "wss://<redacted>@db.example/x?<redacted>")
    assert.include(out, "basic <redacted>")
    assert.include(out, "Authorization: <redacted>")
  })

  it("keeps text without secrets as it is", () => {
    const text = "the plan plan-1 has 3 credits left; retry later (status 503)"
    assert.strictEqual(Adapter.redact(text), text)
  })

  it("redactCause renders a cause redacted, and a cause that throws while rendering as a placeholder", () => {
    assert.include(Adapter.redactCause(Cause.fail(new Error("GET https://x.example/?key=k9"))), "?<redacted>")
    const hostile = {
      get message(): string {
        throw new Error("no")
      },
      toString(): string {
        throw new Error("no")
      }
    }
    assert.strictEqual(typeof Adapter.redactCause(Cause.die(hostile)), "string")
  })
})

describe("Adapter.fromCallback: a value, a Promise or an Effect as an Effect", () => {
  it.effect("a plain value, a thenable and an Effect all succeed with their value", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* Adapter.fromCallback(() => 1), 1)
      assert.strictEqual(yield* Adapter.fromCallback(() => Promise.resolve(2)), 2)
      // Any thenable, not only a native Promise.
      const thenable: PromiseLike<number> = { then: (resolve) => Promise.resolve(3).then(resolve) }
      assert.strictEqual(yield* Adapter.fromCallback(() => thenable), 3)
      assert.strictEqual(yield* Adapter.fromCallback(() => Effect.succeed(4)), 4)
    }))

  it.effect("a throw and a rejection are failures carrying what was thrown; an Effect's defect stays a defect", () =>
    Effect.gen(function*() {
      const thrown = new Error("thrown")
      assert.strictEqual(
        yield* Effect.flip(Adapter.fromCallback(() => {
          throw thrown
        })),
        thrown
      )
      assert.strictEqual(yield* Effect.flip(Adapter.fromCallback(() => Promise.reject("rejected"))), "rejected")
      const exit = yield* Effect.exit(Adapter.fromCallback(() => Effect.die("defect")))
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
    }))

  it.effect("nothing runs until the Effect does", () =>
    Effect.gen(function*() {
      let calls = 0
      const effect = Adapter.fromCallback(() => ++calls)
      assert.strictEqual(calls, 0)
      yield* effect
      yield* effect
      assert.strictEqual(calls, 2)
    }))

  it.effect("Credits.resolve uses it: a rejecting policy is PolicyFailed with redacted detail", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Credits.resolve(() => Promise.reject(new Error("https://prices.example/?api_key=sk-9 down")), {})
      )
      assert.strictEqual(error.reason, "PolicyFailed")
      assert.notInclude(error.detail, "sk-9")
    }))
})

describe("Adapter.redactedPolicy", () => {
  it.effect("what a policy throws, rejects or dies with carries only redacted text", () =>
    Effect.gen(function*() {
      const policies: ReadonlyArray<Credits.Policy<unknown>> = [
        () => {
          throw new Error("token=abc123")
        },
        () => Promise.reject(new Error("token=abc123")),
        () => Effect.die(new Error("token=abc123"))
      ]
      for (const policy of policies) {
        const error = yield* Effect.flip(Credits.resolve(Adapter.redactedPolicy(policy)!, {}))
        assert.strictEqual(error.reason, "PolicyFailed")
        assert.notInclude(error.detail, "abc123")
      }
      assert.strictEqual(Adapter.redactedPolicy(5), 5)
    }))
})

describe("CallSpan", () => {
  it.effect("wrap opens one span per call and annotate sets attributes on it; nested wraps reuse it", () =>
    Effect.gen(function*() {
      const telemetry = TestTelemetry.make()
      yield* CallSpan.annotate({ "x402.outside": true }).pipe(
        Effect.zipRight(CallSpan.annotate({ "x402.step": "inner" })),
        (inner) => CallSpan.wrap(inner, "inner.call", () => ({ "x402.inner": 1 })),
        (call) => CallSpan.wrap(call, "adapter.call", () => ({ "x402.adapter": "test" })),
        Effect.provide(telemetry.layer)
      )
      assert.deepStrictEqual(telemetry.spans.map((span) => span.name), ["adapter.call"])
      const attributes = telemetry.spans[0].attributes
      assert.strictEqual(attributes.get("x402.adapter"), "test")
      assert.strictEqual(attributes.get("x402.inner"), 1)
      assert.strictEqual(attributes.get("x402.step"), "inner")
    }))

  it.effect("with the default tracer nothing is made and attributes are never computed", () =>
    Effect.gen(function*() {
      let computed = 0
      const out = yield* CallSpan.wrap(Effect.succeed("ok"), "adapter.call", () => {
        computed++
        return {}
      })
      assert.strictEqual(out, "ok")
      assert.strictEqual(computed, 0)
    }))
})
