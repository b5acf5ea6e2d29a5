import { FakeNevermined } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { run } from "../main.js"

const { Fault } = FakeNevermined

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any

/**
 * Runs the demo in-process, on the local fake whatever the environment says, keeping its lines (and
 * what it would print on stderr: the agent's warnings and the failure line).
 */
const demo = (
  options: { readonly flavour: "decorator" | "interceptor" | "http-target"; readonly json: boolean } & {
    readonly onFakeBackend?: (fake: FakeNevermined.FakeNevermined.Service) => void
  }
) =>
  Effect.promise(async () => {
    const lines: Array<string> = []
    const errors: Array<string> = []
    const code = await run({
      ...options,
      live: false,
      write: (line) => lines.push(line),
      errors: (line) => errors.push(line)
    })
    return { code, lines, errors }
  })

const STEPS = [
  "backend",
  "gateway",
  "tools",
  "402",
  "delegation",
  "token",
  "paid",
  "receipt",
  "balance",
  "report",
  "research",
  "spend",
  "refused",
  "audit",
  "ok"
]

/** Sets environment variables for the scope of a test (the agent's Lambda runtime reads them). */
const withEnv = (vars: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]))
      Object.assign(process.env, vars)
      return saved
    }),
    (saved) =>
      Effect.sync(() => {
        for (const [name, value] of Object.entries(saved)) {
          if (value === undefined) delete process.env[name]
          else process.env[name] = value
        }
      })
  )

describe("pnpm demo", () => {
  it.live.each(["decorator", "interceptor", "http-target"] as const)(
    "--json (%s): one JSON object per step, every step ok",
    (flavour) =>
      Effect.gen(function*() {
        const { code, lines } = yield* demo({ flavour, json: true })
        assert.strictEqual(code, 0, lines.join("\n"))
        const steps: Array<Json> = lines.map((line) => JSON.parse(line))
        assert.deepStrictEqual(steps.map((step) => step.step), STEPS)
        assert.isTrue(steps.every((step) => step.ok === true))
        const byName = Object.fromEntries(steps.map((step) => [step.step, step]))
        assert.strictEqual(byName["402"].paymentRequired.accepts[0].planId, "plan-demo")
        assert.deepStrictEqual(byName["balance"], { ...byName["balance"], before: 12, after: 11 })
        assert.strictEqual(byName["report"].receipt.creditsRedeemed, "3")
        assert.strictEqual(byName["research"].receipt.creditsRedeemed, "5")
        assert.strictEqual(byName["refused"].reason, "PaymentRefused")
        assert.deepStrictEqual([byName["audit"].settlements, byName["audit"].credits], [6, 12])
        // The token is shown only as a fingerprint.
        assert.match(byName["token"].token, /^tok_[0-9a-f]{8}$/)
        if (flavour === "interceptor") {
          assert.deepStrictEqual(byName["paid"].gateway, ["REQUEST → target → RESPONSE"])
          assert.deepStrictEqual(byName["402"].gateway, ["REQUEST → 402"])
        } else if (flavour === "http-target") {
          assert.deepStrictEqual(byName["paid"].gateway, ["REQUEST → target → RESPONSE"])
          // As on AWS, the RESPONSE interceptor runs on the REQUEST phase's own answer too, and passes it.
          assert.deepStrictEqual(byName["402"].gateway, ["REQUEST → 402 → RESPONSE"])
          // research is streamed: the RESPONSE interceptor ran for the result event (the one with an
          // id), settled it once (5 credits, the audit above), and the client read it from the stream.
          assert.deepStrictEqual(byName["research"].gateway, [
            "REQUEST → 402 → RESPONSE",
            "REQUEST → target → RESPONSE (streamed)"
          ])
        } else {
          assert.deepStrictEqual(byName["paid"].gateway, ["Lambda"])
        }
      })
  )

  it.live("readable output: one short line per step; no token is ever printed", () =>
    Effect.gen(function*() {
      let backend: FakeNevermined.FakeNevermined.Service | undefined
      const { code, lines } = yield* demo({
        flavour: "decorator",
        json: false,
        onFakeBackend: (fake) => (backend = fake)
      })
      assert.strictEqual(code, 0, lines.join("\n"))
      assert.match(lines[0], /^backend {4}FakeNevermined on http:\/\/127\.0\.0\.1:\d+/)
      assert.isTrue(lines.some((line) => line.startsWith("402        forecast(Lisbon) without payment")))
      assert.isTrue(lines.some((line) => line.startsWith("balance    12 → 11 credits")))
      assert.match(lines[lines.length - 1], /^ok {9}every step behaved \(decorator flavour/)
      const tokens = [...backend!.ledger.tokens.keys()]
      assert.isAbove(tokens.length, 0)
      assert.isFalse(lines.some((line) => tokens.some((token) => line.includes(token))))
      assert.isFalse(lines.some((line) => line.includes(backend!.subscriberApiKey) || line.includes(backend!.apiKey)))
    }))

  it.live("a misbehaving backend fails the demo with the step and the reason (exit code 1)", () =>
    Effect.gen(function*() {
      const { code, errors, lines } = yield* demo({
        flavour: "decorator",
        json: true,
        onFakeBackend: (fake) => fake.faults.always("settle", Fault.status(500, "BCK.X402.0500"))
      })
      assert.strictEqual(code, 1)
      const last: Json = JSON.parse(lines[lines.length - 1])
      assert.strictEqual(last.ok, false)
      assert.include(last.error, "step \"paid\" misbehaved")
      // The agent's own log says why (kept, not printed): the settle outcome was unknown.
      assert.isTrue(errors.some((line) => line.includes("Settlement outcome unknown")))
      assert.isFalse(lines.some((line) => JSON.parse(line).step === "ok"))
    }))

  it.live("--http-target: a settlement refused mid-stream withholds the streamed result; nothing settled for it", () =>
    Effect.gen(function*() {
      let backend: FakeNevermined.FakeNevermined.Service | undefined
      const { code, lines } = yield* demo({
        flavour: "http-target",
        json: true,
        onFakeBackend: (fake) => {
          backend = fake
          // forecast and report settle; research's settle (the streamed call) fails.
          fake.faults.next("settle", Fault.latency(0))
          fake.faults.next("settle", Fault.latency(0))
          fake.faults.next("settle", Fault.status(500, "BCK.X402.0500"))
        }
      })
      assert.strictEqual(code, 1)
      // The step after report (research) failed: the X402Client got the settlement failure, not the result.
      const error: string = JSON.parse(lines[lines.length - 1]).error
      assert.include(error, "SettlementFailed")
      assert.include(error, "after report")
      assert.isFalse(lines.some((line) => JSON.parse(line).step === "research"))
      assert.strictEqual(backend!.ledger.settlements.length, 2)
    }))

  it.live("a backend whose balance disagrees with the receipts fails the demo", () =>
    Effect.gen(function*() {
      const { code, lines } = yield* demo({
        flavour: "interceptor",
        json: true,
        onFakeBackend: (fake) => {
          // The second balance read (after the first paid call) reports a balance nothing was taken from.
          fake.faults.next("balance", Fault.latency(0))
          fake.faults.next(
            "balance",
            Fault.wrongShape({
              planId: "plan-demo",
              holderAddress: fake.subscriber,
              balance: "12",
              isSubscriber: true
            })
          )
        }
      })
      assert.strictEqual(code, 1)
      assert.include(JSON.parse(lines[lines.length - 1]).error, "step \"paid\" misbehaved: balance went 12 → 12")
    }))

  it.scopedLive("with NVM_API_KEY set it runs on the live layers from the environment (here pointed at a fake)", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      fake.ledger.addPlan({ planId: "plan-live", agentId: "agent-live" })
      fake.ledger.fund(fake.subscriber, "plan-live", 20)
      yield* withEnv({
        NVM_API_KEY: fake.apiKey,
        NVM_SUBSCRIBER_API_KEY: fake.subscriberApiKey,
        NVM_BACKEND_URL: fake.url,
        NVM_PLAN_ID: "plan-live",
        NVM_AGENT_ID: "agent-live"
      })
      const lines: Array<string> = []
      const code = yield* Effect.promise(() =>
        run({ flavour: "interceptor", json: true, write: (line) => lines.push(line) })
      )
      assert.strictEqual(code, 0, lines.join("\n"))
      const steps: Array<Json> = lines.map((line) => JSON.parse(line))
      assert.include(steps[0].text, `Nevermined sandbox at ${fake.url}, from NVM_API_KEY`)
      assert.strictEqual(steps.find((step) => step.step === "402").paymentRequired.accepts[0].planId, "plan-live")
      // Live, the demo does not spend the whole balance unless asked to.
      assert.include(steps.find((step) => step.step === "refused").text, "skipped")
      assert.isUndefined(steps.find((step) => step.step === "audit"))
      assert.strictEqual(fake.ledger.balance(fake.subscriber, "plan-live"), 20 - 1 - 3 - 5)
      assert.strictEqual(fake.ledger.settlements.length, 3)
    }))

  it.scopedLive("NVM_API_KEY without NVM_PLAN_ID is reported, not silently replaced by the fake", () =>
    Effect.gen(function*() {
      yield* withEnv({ NVM_API_KEY: "sandbox:a.b.c", NVM_PLAN_ID: "" })
      delete process.env.NVM_PLAN_ID
      const lines: Array<string> = []
      const errors: Array<string> = []
      const code = yield* Effect.promise(() =>
        run({
          flavour: "decorator",
          json: true,
          write: (line) => lines.push(line),
          errors: (line) => errors.push(line)
        })
      )
      assert.strictEqual(code, 1)
      assert.deepStrictEqual(lines.length, 1)
      assert.include(JSON.parse(lines[0]).error, "NVM_PLAN_ID")
      assert.deepStrictEqual(errors.length, 1)
      assert.include(errors[0], "✗ demo failed")
    }))
})
