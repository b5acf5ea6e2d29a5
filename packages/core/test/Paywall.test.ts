import { Facilitator, Paywall, X402 } from "@effect-x402/core"
import * as CallSpan from "@effect-x402/core/CallSpan"
import { TestFacilitator, TestTelemetry } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber, Layer, Option, Redacted, TestClock } from "effect"

const ENDPOINT = "https://agent.example/mcp"

const setup = (options: { credits?: number } = {}) => {
  const { ledger, subscriber, token } = TestFacilitator.seeded({ credits: options.credits ?? 10, agentId: "agent-1" })
  return { ledger, subscriber, token, layer: TestFacilitator.layer(ledger) }
}

const paywallOf = (options: Partial<Paywall.Options<{ detailed?: boolean }>> = {}) =>
  Paywall.make<{ detailed?: boolean }>({ planId: "plan-1", agentId: "agent-1", endpoint: ENDPOINT, ...options })

describe("Paywall.make", () => {
  it("refuses configurations that can never work", () => {
    assert.throws(() => Paywall.make({}), /planId \(or planIds\) is missing or empty/)
    assert.throws(() => Paywall.make({ planIds: [] }), /planId \(or planIds\) is missing or empty/)
    assert.throws(() => Paywall.make({ planId: "" }), /planId \(or planIds\) is missing or empty/)
    assert.throws(() => Paywall.make({ planId: "p", credits: -1 }), RangeError)
    assert.throws(() => Paywall.make({ planId: "p", credits: 0.5 }), RangeError)
    assert.throws(() => Paywall.make({ planId: "p", onSettleFailure: "maybe" as "release" }), /onSettleFailure/)
  })

  it("merges planId and planIds without duplicates", () => {
    assert.deepStrictEqual(Paywall.make({ planId: "a", planIds: ["b", "a"] }).planIds, ["b", "a"])
  })
})

describe("Paywall.verify", () => {
  it.effect("no token: PaymentRequired with the requirements, and the facilitator is not called", () => {
    const { layer, ledger } = setup()
    return Effect.gen(function*() {
      for (const token of [undefined, null, "", "   "]) {
        const error = yield* Effect.flip(Paywall.verify(paywallOf(), { request: {}, token }))
        assert.strictEqual(error._tag, "PaymentRequired")
        if (error._tag !== "PaymentRequired") continue
        assert.strictEqual(error.message, "Payment required to access this resource")
        assert.strictEqual(error.paymentRequired.resource.url, ENDPOINT)
        assert.deepStrictEqual(error.paymentRequired.accepts[0], {
          scheme: "nvm:erc4337",
          network: "eip155:84532",
          planId: "plan-1",
          extra: { version: "1", agentId: "agent-1" }
        })
      }
      assert.strictEqual(ledger.calls.length, 0)
    }).pipe(Effect.provide(layer))
  })

  it.effect("the message and resource URL can come from the call", () => {
    const { layer } = setup()
    return Effect.gen(function*() {
      const error = yield* Effect.flip(Paywall.verify(paywallOf({ endpoint: undefined }), {
        request: {},
        token: undefined,
        resourceUrl: "arn:aws:lambda:us-east-1:1:function:f",
        paymentRequiredMessage: "Payment required for tool: weather"
      }))
      assert.strictEqual(error.message, "Payment required for tool: weather")
      assert.strictEqual(error.paymentRequired.resource.url, "arn:aws:lambda:us-east-1:1:function:f")
    }).pipe(Effect.provide(layer))
  })

  it.effect("advertises each plan's network: a fiat plan's provider, else the default; an explicit one wins", () => {
    const { layer, ledger } = setup()
    ledger.addPlan({ planId: "fiat-plan", fiatPaymentProvider: "stripe" })
    return Effect.gen(function*() {
      const pr = yield* Paywall.requirements(paywallOf({ planIds: ["fiat-plan"] }))
      assert.deepStrictEqual(pr.accepts.map((a) => [a.planId, a.network]), [
        ["fiat-plan", "stripe"],
        ["plan-1", "eip155:84532"]
      ])
      const fixed = yield* Paywall.requirements(paywallOf({ network: "eip155:8453" }))
      assert.strictEqual(fixed.accepts[0].network, "eip155:8453")
    }).pipe(Effect.provide(layer))
  })

  it.effect("a valid token: verified with the credits and the agent request id", () => {
    const { layer, ledger, token, subscriber } = setup()
    return Effect.gen(function*() {
      const verified = yield* Paywall.verify(paywallOf({ credits: 3 }), { request: {}, token })
      assert.strictEqual(verified.credits, 3)
      assert.strictEqual(verified.verification.payer, subscriber)
      assert.isString(verified.agentRequestId)
      assert.strictEqual(ledger.calls[0].maxAmount, 3)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 10, "verify burns nothing")
    }).pipe(Effect.provide(layer))
  })

  it.effect("dynamic credits are a function of the request", () => {
    const { layer, ledger, token } = setup()
    const paywall = paywallOf({ credits: (req) => req.detailed ? 5 : 1 })
    return Effect.gen(function*() {
      yield* Paywall.verify(paywall, { request: { detailed: true }, token })
      yield* Paywall.verify(paywall, { request: {}, token })
      assert.deepStrictEqual(ledger.calls.map((c) => c.maxAmount), [5, 1])
    }).pipe(Effect.provide(layer))
  })

  it.effect("an invalid token: VerifyFailed Invalid with the facilitator's reason", () => {
    const { layer } = setup()
    return Effect.gen(function*() {
      const error = yield* Effect.flip(Paywall.verify(paywallOf(), { request: {}, token: "forged" }))
      assert.strictEqual(error._tag, "VerifyFailed")
      if (error._tag !== "VerifyFailed") return
      assert.strictEqual(error.reason, "Invalid")
      assert.strictEqual(error.message, "Verification failed: invalid_payload")
    }).pipe(Effect.provide(layer))
  })

  it.effect("insufficient balance: VerifyFailed Invalid, insufficient_funds", () => {
    const { layer, token } = setup({ credits: 1 })
    return Effect.gen(function*() {
      const error = yield* Effect.flip(Paywall.verify(paywallOf({ credits: 2 }), { request: {}, token }))
      assert.strictEqual(error.message, "Verification failed: insufficient_funds")
    }).pipe(Effect.provide(layer))
  })

  it.effect("a facilitator that cannot answer: VerifyFailed Unavailable, with the transport error as cause", () => {
    const { layer, ledger, token } = setup()
    ledger.failNext("verify", { _tag: "Timeout" })
    return Effect.gen(function*() {
      const error = yield* Effect.flip(Paywall.verify(paywallOf(), { request: {}, token }))
      assert.strictEqual(error._tag, "VerifyFailed")
      if (error._tag !== "VerifyFailed") return
      assert.strictEqual(error.reason, "Unavailable")
      assert.strictEqual(error.cause?._tag, "FacilitatorError")
    }).pipe(Effect.provide(layer))
  })

  it.effect("a credits policy that fails: VerifyFailed InvalidAmount, facilitator not called", () => {
    const { layer, ledger, token } = setup()
    return Effect.gen(function*() {
      const error = yield* Effect.flip(Paywall.verify(paywallOf({ credits: () => -1 }), { request: {}, token }))
      assert.strictEqual(error._tag, "VerifyFailed")
      if (error._tag === "VerifyFailed") assert.strictEqual(error.reason, "InvalidAmount")
      assert.strictEqual(ledger.calls.length, 0)
    }).pipe(Effect.provide(layer))
  })
})

describe("Paywall.protect", () => {
  it.effect("verify → work → settle, exactly once, with the verified agentRequestId", () => {
    const { layer, ledger, token, subscriber } = setup()
    return Effect.gen(function*() {
      let seen: Paywall.Verified | undefined
      const outcome = yield* Paywall.protect(paywallOf({ credits: 2 }), { request: {}, token }, (verified) => {
        seen = verified
        return Effect.succeed("answer")
      })
      assert.strictEqual(outcome._tag, "Settled")
      if (outcome._tag !== "Settled") return
      assert.strictEqual(outcome.value, "answer")
      assert.strictEqual(outcome.settlement.creditsRedeemed, "2")
      assert.strictEqual(outcome.settlement.remainingBalance, "8")
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 8)
      assert.deepStrictEqual(ledger.calls.map((c) => c.operation), ["verify", "settle"])
      assert.strictEqual(ledger.calls[1].agentRequestId, seen?.agentRequestId)
      assert.strictEqual(ledger.settlements.length, 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("the work does not run without a valid payment", () => {
    const { layer, ledger } = setup()
    return Effect.gen(function*() {
      let ran = false
      const work = () => Effect.sync(() => (ran = true))
      yield* Effect.flip(Paywall.protect(paywallOf(), { request: {}, token: undefined }, work))
      yield* Effect.flip(Paywall.protect(paywallOf(), { request: {}, token: "forged" }, work))
      assert.isFalse(ran)
      assert.isFalse(ledger.calls.some((c) => c.operation === "settle"))
    }).pipe(Effect.provide(layer))
  })

  it.effect("work that fails or dies is never settled", () => {
    const { layer, ledger, token, subscriber } = setup()
    return Effect.gen(function*() {
      const failed = yield* Effect.exit(
        Paywall.protect(paywallOf(), { request: {}, token }, () => Effect.fail("handler error" as const))
      )
      assert.deepStrictEqual(failed, Exit.fail("handler error"))
      const died = yield* Effect.exit(Paywall.protect(paywallOf(), { request: {}, token }, () => Effect.die("boom")))
      assert.isTrue(Exit.isFailure(died))
      assert.strictEqual(ledger.settlements.length, 0)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 10)
    }).pipe(Effect.provide(layer))
  })

  it.effect("an isError answer is returned uncharged", () => {
    const { layer, ledger, token } = setup()
    return Effect.gen(function*() {
      const outcome = yield* Paywall.protect(
        paywallOf(),
        { request: {}, token },
        () => Effect.succeed({ isError: true }),
        { isError: (a) => a.isError }
      )
      assert.strictEqual(outcome._tag, "NotCharged")
      assert.strictEqual(ledger.settlements.length, 0)
    }).pipe(Effect.provide(layer))
  })

  it.effect("the answer may override the amount to settle", () => {
    const { layer, ledger, token, subscriber } = setup()
    return Effect.gen(function*() {
      const outcome = yield* Paywall.protect(
        paywallOf({ credits: 1 }),
        { request: {}, token },
        () => Effect.succeed({ _meta: { creditsToCharge: 5 } }),
        { chargeOf: (result) => ({ result }) }
      )
      assert.strictEqual(outcome._tag, "Settled")
      assert.strictEqual(ledger.calls[0].maxAmount, 1, "verified with the configured credits")
      assert.strictEqual(ledger.calls[1].maxAmount, 5, "settled with the override")
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 5)
    }).pipe(Effect.provide(layer))
  })

  it.effect("an invalid override is a SettleFailed InvalidAmount and nothing is charged", () => {
    const { layer, ledger, token } = setup()
    return Effect.gen(function*() {
      for (const bad of [-1, 2.5, "many", Number("1e309")]) {
        const error = yield* Effect.flip(Paywall.protect(
          paywallOf(),
          { request: {}, token },
          () => Effect.succeed({ _meta: { creditsToCharge: bad } }),
          { chargeOf: (result) => ({ result }) }
        ))
        assert.strictEqual(error._tag, "SettleFailed")
        if (error._tag === "SettleFailed") assert.strictEqual(error.reason, "InvalidAmount")
      }
      assert.strictEqual(ledger.settlements.length, 0)
      assert.isFalse(ledger.calls.some((c) => c.operation === "settle"))
    }).pipe(Effect.provide(layer))
  })

  it.effect("settlement refused: withheld, under either policy; an unknown outcome is released under release", () => {
    const { layer, ledger, token } = setup()
    return Effect.gen(function*() {
      ledger.failNext("settle", { _tag: "Rejected", reason: "insufficient_funds" })
      const error = yield* Effect.flip(Paywall.protect(paywallOf(), { request: {}, token }, () => Effect.succeed(1)))
      assert(error._tag === "SettleFailed")
      assert.strictEqual(error.reason, "Rejected")
      assert.strictEqual(error.settlement?.success, false)
      assert.strictEqual(error.message, "Settlement rejected: insufficient_funds")

      // A definite refusal (no funds) is never released: `release` is for outages, not refusals.
      ledger.failNext("settle", { _tag: "Rejected" })
      const refused = yield* Effect.flip(
        Paywall.protect(paywallOf({ onSettleFailure: "release" }), { request: {}, token }, () => Effect.succeed(1))
      )
      assert(refused._tag === "SettleFailed")
      assert.strictEqual(refused.reason, "Rejected")

      ledger.failNext("settle", { _tag: "Timeout" })
      const released = yield* Paywall.protect(
        paywallOf({ onSettleFailure: "release" }),
        { request: {}, token },
        () => Effect.succeed("output")
      )
      assert(released._tag === "Released")
      assert.strictEqual(released.value, "output")
      assert.strictEqual(released.error.reason, "Indeterminate")
    }).pipe(Effect.provide(layer))
  })

  it.effect("a call's deadline cuts verify and settle off: unsent past it, indeterminate in flight", () => {
    const { layer, token } = setup()
    return Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const late = yield* Effect.flip(
        Paywall.protect(paywallOf(), { request: {}, token, deadline: now - 1 }, () => Effect.succeed(1))
      )
      assert(late._tag === "VerifyFailed")
      assert.strictEqual(late.reason, "Unavailable")

      // A settle that never answers is cut at the deadline: the library's own "unknown" answer.
      const slow = Layer.succeed(Facilitator.Facilitator, {
        verify: () => Effect.succeed({ isValid: true }),
        settle: () => Effect.never,
        networkFor: () => Effect.succeed("eip155:84532")
      })
      const fiber = yield* Effect.fork(
        Paywall.protect(paywallOf(), { request: {}, token, deadline: now + 2_000 }, () => Effect.succeed(1)).pipe(
          Effect.provide(slow),
          Effect.flip
        )
      )
      yield* TestClock.adjust("2 seconds")
      const cut = yield* Fiber.join(fiber)
      assert(cut._tag === "SettleFailed")
      assert.strictEqual(cut.reason, "Indeterminate")
    }).pipe(Effect.provide(layer))
  })

  it.effect("each transport failure of settle maps to what is known of the outcome", () => {
    const { layer, ledger, token } = setup()
    const cases: Array<[TestFacilitator.Fault, string]> = [
      [{ _tag: "Timeout" }, "Indeterminate"],
      [{ _tag: "ConnectionDropped" }, "Indeterminate"],
      [{ _tag: "Indeterminate", applied: true }, "Indeterminate"],
      [{ _tag: "HttpStatus", status: 503 }, "Indeterminate"],
      [{ _tag: "Malformed" }, "Indeterminate"],
      [{ _tag: "HttpStatus", status: 400, code: "BCK.X402.0005" }, "Rejected"],
      [{ _tag: "Unreachable" }, "Unavailable"]
    ]
    return Effect.gen(function*() {
      for (const [fault, reason] of cases) {
        ledger.failNext("settle", fault)
        const error = yield* Effect.flip(Paywall.protect(paywallOf(), { request: {}, token }, () => Effect.succeed(1)))
        assert.strictEqual(error._tag === "SettleFailed" ? error.reason : error._tag, reason, fault._tag)
      }
      // one settle call per verified call, never retried by the pipeline
      const verifies = ledger.calls.filter((c) => c.operation === "verify").length
      const settles = ledger.calls.filter((c) => c.operation === "settle").length
      assert.strictEqual(verifies, cases.length)
      assert.strictEqual(settles, cases.length)
    }).pipe(Effect.provide(layer))
  })

  it.live("concurrent calls on one balance never overspend it", () => {
    const { layer, ledger, token, subscriber } = setup({ credits: 5 })
    ledger.latency = Duration.millis(1)
    return Effect.gen(function*() {
      const outcomes = yield* Effect.forEach(
        Array.from({ length: 12 }, () => 0),
        () => Effect.either(Paywall.protect(paywallOf(), { request: {}, token }, () => Effect.succeed("ok"))),
        { concurrency: "unbounded" }
      )
      const settled = outcomes.filter((o) => o._tag === "Right").length
      assert.strictEqual(settled, 5)
      assert.strictEqual(ledger.balance(subscriber, "plan-1"), 0)
      assert.strictEqual(ledger.totalSettled, 5)
    }).pipe(Effect.provide(layer))
  })
})

describe("hooks", () => {
  it.effect("are called in order with what they need", () => {
    const { layer, token } = setup()
    const calls: Array<string> = []
    const paywall = paywallOf({
      credits: 2,
      onBeforeVerify: (pr) => void calls.push(`before:${pr.accepts[0].planId}`),
      onAfterVerify: (v) => Effect.sync(() => void calls.push(`after:${v.isValid}`)),
      onAfterSettle: (credits, s) => Promise.resolve(void calls.push(`settled:${credits}:${s.success}`))
    })
    return Effect.gen(function*() {
      yield* Paywall.protect(paywall, { request: {}, token }, () => Effect.sync(() => void calls.push("work")))
      assert.deepStrictEqual(calls, ["before:plan-1", "after:true", "work", "settled:2:true"])
    }).pipe(Effect.provide(layer))
  })

  it.effect("a hook that throws, rejects or fails is logged and never breaks payment", () => {
    const { layer, ledger, token } = setup()
    const telemetry = TestTelemetry.make()
    const paywall = paywallOf({
      onBeforeVerify: () => {
        throw new Error("hook threw")
      },
      onAfterVerify: () => Promise.reject(new Error("hook rejected")),
      onAfterSettle: () => Effect.fail("hook failed")
    })
    return Effect.gen(function*() {
      const outcome = yield* Paywall.protect(paywall, { request: {}, token }, () => Effect.succeed("ok"))
      assert.strictEqual(outcome._tag, "Settled")
      assert.strictEqual(ledger.settlements.length, 1)
      const warnings = telemetry.logs.filter((l) => l.startsWith("WARN"))
      assert.strictEqual(warnings.length, 3)
      assert.match(warnings[0], /onBeforeVerify/)
    }).pipe(Effect.provide(layer), Effect.provide(telemetry.layer))
  })

  it.effect("onPaymentError may supply a replacement response", () => {
    const { layer } = setup()
    const paywall = Paywall.make<unknown, never, { custom: string }>({
      planId: "plan-1",
      onPaymentError: (error) => error._tag === "PaymentRequired" ? { custom: error.message } : undefined
    })
    return Effect.gen(function*() {
      const error = yield* Effect.flip(Paywall.verify(paywall, { request: {}, token: undefined }))
      const replacement = yield* Paywall.replacementFor(paywall, error)
      assert.deepStrictEqual(replacement, Option.some({ custom: "Payment required to access this resource" }))
      const none = yield* Paywall.replacementFor(paywallOf(), error)
      assert.isTrue(Option.isNone(none))
    }).pipe(Effect.provide(layer))
  })
})

describe("secrets", () => {
  it.effect("no token reaches a log line, a span or an error message, on any path", () => {
    const { layer, ledger, token } = setup()
    const telemetry = TestTelemetry.make()
    const paywall = paywallOf({
      onAfterVerify: () => {
        throw new Error("hook failure")
      }
    })
    const run = (t: string) =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(
          Paywall.protect(paywall, { request: {}, token: t }, () => Effect.succeed("ok"))
        )
        return Exit.isFailure(exit) ? String(exit.cause) + JSON.stringify(exit.cause) : "ok"
      })
    return Effect.gen(function*() {
      const messages: Array<string> = []
      messages.push(yield* run(token))
      messages.push(yield* run("forged-secret-token"))
      ledger.failNext("verify", { _tag: "Timeout" })
      messages.push(yield* run(token))
      ledger.failNext("settle", { _tag: "Rejected" })
      messages.push(yield* run(token))
      ledger.failNext("settle", { _tag: "Timeout" })
      messages.push(yield* run(token))
      const everything = [telemetry.text(), ...messages].join("\n")
      assert.isAbove(telemetry.spans.length, 0)
      assert.notInclude(everything, token)
      assert.notInclude(everything, "forged-secret-token")
      assert.include(everything, Paywall.fingerprint(Redacted.make(token)), "the fingerprint is what shows")
    }).pipe(Effect.provide(layer), Effect.provide(telemetry.layer))
  })

  it("fingerprints are short, stable and distinct", () => {
    const a = Paywall.fingerprint(Redacted.make("token-a"))
    assert.strictEqual(a, Paywall.fingerprint(Redacted.make("token-a")))
    assert.notStrictEqual(a, Paywall.fingerprint(Redacted.make("token-b")))
    assert.match(a, /^tok_[0-9a-f]{8}$/)
  })
})

describe("spans", () => {
  it.effect("on its own, verify and settle each open a span with plan, credits, token fingerprint and outcome", () => {
    const { layer, token } = setup()
    const telemetry = TestTelemetry.make()
    return Effect.gen(function*() {
      yield* Paywall.protect(paywallOf({ credits: 3 }), { request: {}, token }, () => Effect.succeed(1))
      const verify = telemetry.spans.find((s) => s.name === "Paywall.verify")
      const settle = telemetry.spans.find((s) => s.name === "Paywall.settle")
      assert.strictEqual(verify?.attributes.get("x402.plan_ids"), "plan-1")
      assert.strictEqual(verify?.attributes.get("x402.credits"), 3)
      assert.strictEqual(verify?.attributes.get("x402.outcome"), "verified")
      assert.strictEqual(verify?.attributes.get("x402.token"), Paywall.fingerprint(Redacted.make(token)))
      assert.strictEqual(settle?.attributes.get("x402.outcome"), "settled")
      assert.strictEqual(settle?.attributes.get("x402.credits"), 3)
      assert.strictEqual(telemetry.spans.length, 2, telemetry.spans.map((s) => s.name).join(", "))
    }).pipe(Effect.provide(layer), Effect.provide(telemetry.layer))
  })

  it.effect("inside a call's span, a paid call is that one span, with every attribute and no secret", () => {
    const { layer, token } = setup()
    const telemetry = TestTelemetry.make()
    return Effect.gen(function*() {
      yield* Paywall.protect(paywallOf({ credits: 2 }), { request: {}, token }, () => Effect.succeed(1)).pipe(
        (effect) => CallSpan.wrap(effect, "Adapter.handle", () => ({ "mcp.tool": "weather" }))
      )
      assert.deepStrictEqual(telemetry.spans.map((s) => s.name), ["Adapter.handle"])
      const span = telemetry.spans[0]
      assert.strictEqual(span.attributes.get("mcp.tool"), "weather")
      assert.strictEqual(span.attributes.get("x402.plan_ids"), "plan-1")
      assert.strictEqual(span.attributes.get("x402.credits"), 2)
      assert.strictEqual(span.attributes.get("x402.outcome"), "settled")
      assert.strictEqual(span.attributes.get("x402.token"), Paywall.fingerprint(Redacted.make(token)))
      assert.notInclude(JSON.stringify([...span.attributes.entries()]), token)
      assert.notInclude(telemetry.text(), token)
    }).pipe(Effect.provide(layer), Effect.provide(telemetry.layer))
  })

  it.effect("inside a call's span, a refused token and an error result say so on that span", () => {
    const { layer, token } = setup()
    const telemetry = TestTelemetry.make()
    return Effect.gen(function*() {
      yield* Effect.flip(
        CallSpan.wrap(Paywall.protect(paywallOf(), { request: {}, token: "forged" }, () => Effect.succeed(1)), "A")
      )
      yield* CallSpan.wrap(
        Paywall.protect(paywallOf(), { request: {}, token }, () => Effect.succeed(1), { isError: () => true }),
        "B"
      )
      const [a, b] = telemetry.spans
      assert.strictEqual(a.name, "A")
      assert.strictEqual(a.attributes.get("x402.outcome"), "invalid")
      assert.strictEqual(b.name, "B")
      assert.strictEqual(b.attributes.get("x402.outcome"), "not_charged")
      assert.strictEqual(telemetry.spans.length, 2)
    }).pipe(Effect.provide(layer), Effect.provide(telemetry.layer))
  })

  it.effect("no tracer installed, or tracing disabled: the pipeline opens no span at all", () => {
    const { layer, token } = setup()
    // The paid work sees the span it runs in: none of ours when nobody listens.
    const work = () => Effect.map(Effect.option(Effect.currentSpan), Option.map((span) => span.name))
    return Effect.gen(function*() {
      const bare = yield* Paywall.protect(paywallOf(), { request: {}, token }, work)
      assert(bare._tag === "Settled")
      assert.isTrue(Option.isNone(bare.value))
      const wrapped = yield* CallSpan.wrap(Paywall.protect(paywallOf(), { request: {}, token }, work), "A")
      assert(wrapped._tag === "Settled")
      assert.isTrue(Option.isNone(wrapped.value))

      const telemetry = TestTelemetry.make()
      const disabled = yield* CallSpan.wrap(Paywall.protect(paywallOf(), { request: {}, token }, work), "A").pipe(
        Effect.provide(Layer.mergeAll(telemetry.layer, Layer.setTracerEnabled(false)))
      )
      assert(disabled._tag === "Settled")
      assert.isTrue(Option.isNone(disabled.value))
      assert.strictEqual(telemetry.spans.length, 0)
      // With a tracer listening, the same work runs inside the call's span.
      const traced = yield* CallSpan.wrap(Paywall.protect(paywallOf(), { request: {}, token }, work), "A").pipe(
        Effect.provide(telemetry.layer)
      )
      assert(traced._tag === "Settled")
      assert.deepStrictEqual(traced.value, Option.some("A"))
    }).pipe(Effect.provide(layer))
  })
})

describe("requirements", () => {
  it.effect("several plans: a facilitator's batch answer is used in order, else networkFor per plan", () =>
    Effect.gen(function*() {
      const networkOf = (planId: string) => `net-of-${planId}`
      const asked: Array<string> = []
      const base = {
        verify: () => Effect.succeed({ isValid: true }),
        settle: () => Effect.die("not settled here"),
        networkFor: (planId: string) => Effect.sync(() => (asked.push(planId), networkOf(planId)))
      }
      const paywall = paywallOf({ planIds: ["plan-a", "plan-b", "plan-c"] })
      const perPlan = yield* Paywall.requirements(paywall).pipe(
        Effect.provideService(Facilitator.Facilitator, base)
      )
      assert.deepStrictEqual(perPlan.accepts.map((a) => [a.planId, a.network]), [
        ["plan-a", "net-of-plan-a"],
        ["plan-b", "net-of-plan-b"],
        ["plan-c", "net-of-plan-c"],
        ["plan-1", "net-of-plan-1"]
      ])
      assert.strictEqual(asked.length, 4)
      const batched = yield* Paywall.requirements(paywall).pipe(
        Effect.provideService(Facilitator.Facilitator, {
          ...base,
          networksFor: (planIds) => Effect.succeed(planIds.map((id) => `batch-${id}`))
        })
      )
      assert.deepStrictEqual(batched.accepts.map((a) => a.network), [
        "batch-plan-a",
        "batch-plan-b",
        "batch-plan-c",
        "batch-plan-1"
      ])
      assert.strictEqual(asked.length, 4, "networkFor was not asked again")
      // Equal answers give the same (cached) PaymentRequired; another network, another one.
      const again = yield* Paywall.requirements(paywall).pipe(Effect.provideService(Facilitator.Facilitator, base))
      assert.strictEqual(again, perPlan)
    }))

  it.effect("verify takes the networks a warm facilitator knows at once (cachedNetworks), else asks networkFor", () =>
    Effect.gen(function*() {
      const asked: Array<string> = []
      let warm = false
      const facilitator: Facilitator.Facilitator.Service = {
        verify: (request) =>
          Effect.succeed({
            isValid: false,
            invalidReason: request.paymentRequired.accepts.map((a) => a.network).join()
          }),
        settle: () => Effect.die("not settled here"),
        networkFor: (planId) => Effect.sync(() => (asked.push(planId), `asked-${planId}`)),
        cachedNetworks: (planIds) => warm ? planIds.map((id) => `cached-${id}`) : undefined
      }
      const paywall = paywallOf({ planIds: ["plan-a"] })
      const networksOf = Effect.flip(Paywall.verify(paywall, { request: {}, token: "tok" })).pipe(
        Effect.map((error) => error._tag === "VerifyFailed" ? error.verification?.invalidReason : undefined),
        Effect.provideService(Facilitator.Facilitator, facilitator)
      )
      assert.strictEqual(yield* networksOf, "asked-plan-a,asked-plan-1")
      assert.deepStrictEqual(asked, ["plan-a", "plan-1"])
      warm = true
      assert.strictEqual(yield* networksOf, "cached-plan-a,cached-plan-1")
      assert.deepStrictEqual(asked, ["plan-a", "plan-1"], "networkFor was not asked when the cache knew")
    }))
})

describe("requirements header", () => {
  it.effect("the PaymentRequired of an error encodes to a header that decodes back", () => {
    const { layer } = setup()
    return Effect.gen(function*() {
      const error = yield* Effect.flip(Paywall.verify(paywallOf({ planIds: ["plan-2"] }), { request: {}, token: null }))
      const header = X402.PaymentRequiredHeader.encode(error.paymentRequired)
      const decoded = yield* X402.PaymentRequiredHeader.decode(header)
      assert.deepStrictEqual(decoded.accepts.map((a) => a.planId), ["plan-2", "plan-1"])
    }).pipe(Effect.provide(layer))
  })
})
