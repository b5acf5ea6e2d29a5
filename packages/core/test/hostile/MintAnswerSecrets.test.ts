// Invariant 6 (nothing internal reaches the caller), the paying side: a backend answer of an odd
// shape may carry a freshly minted access token, and a Schema ParseError quotes the values it
// refuses. Neither the error (message, fields, cause, JSON) nor any log or span may hold it.
import { Subscriber, X402Client } from "@effect-x402/core"
import { FakeNevermined, TestTelemetry } from "@effect-x402/testing"
import { FetchHttpClient, HttpClientRequest } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Layer, Logger, LogLevel } from "effect"
import { AGENT, facilitator, paidAgent, paymentRequired, PLAN, seed, subscriber } from "../Nevermined.fixtures.js"

const { Fault } = FakeNevermined

// A short fake token (no scrub pattern knows its shape) and a v3-style one (base64 JSON).
const SHORT = "nvm_tok_feedface.s3cr3t0k3n"
const V3 = Buffer.from(JSON.stringify({
  x402Version: 2,
  scheme: "nvm:erc4337",
  payload: { authorization: { from: "0xabc", planId: PLAN, nonce: "0x5eed5eed5eed5eed" }, signature: "0x0123" }
})).toString("base64url")

/** Everything a user might print or inspect about an error. */
const renderings = (error: unknown): Array<string> => {
  const record = error as { readonly message?: unknown; readonly cause?: unknown }
  return [
    String(error),
    JSON.stringify(error),
    String(record.message),
    Cause.pretty(Cause.fail(error), { renderErrorCause: true }),
    JSON.stringify(record.cause ?? null),
    String(record.cause ?? "")
  ]
}

const assertNowhere = (texts: ReadonlyArray<string>, secrets: ReadonlyArray<string>) => {
  const everything = texts.join("\n")
  for (const secret of secrets) {
    const at = everything.indexOf(secret)
    const context = at < 0 ? "" : everything.slice(Math.max(0, at - 200), at + secret.length + 40)
    assert.isFalse(at >= 0, `a token leaked: ${context.split(secret).join("<TOKEN>")}`)
  }
}

const oddMintAnswers = (token: string): ReadonlyArray<unknown> => [
  token,
  [token],
  { accessToken: 123, token },
  { accessToken: [token] },
  { accessToken: { value: token } },
  { data: { accessToken: token } },
  { accessToken: `  ${token}  ` },
  { accessToken: "", hint: token },
  { [token]: token }
]

describe("an odd mint answer never shows its token", () => {
  it.scoped("Subscriber.accessToken: every odd shape is MalformedResponse, and the token is nowhere", () => {
    const captured = TestTelemetry.make()
    return Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const live = yield* subscriber(fake)
      const texts: Array<string> = []
      for (const token of [SHORT, V3]) {
        for (const body of oddMintAnswers(token)) {
          fake.faults.next("permissions", Fault.wrongShape(body))
          const error = yield* Effect.flip(live.accessToken({ planId: PLAN, agentId: AGENT }))
          assert.strictEqual(error.kind, "MalformedResponse", JSON.stringify(body).slice(0, 40))
          assert.strictEqual(error.operation, "permissions")
          // Still useful: the detail says where the answer went wrong.
          assert.include(error.detail, "expected shape")
          texts.push(...renderings(error))
          yield* Effect.logError("mint failed", error)
        }
      }
      // A failing backend that echoes the token in its error message.
      fake.faults.next("permissions", Fault.status(400, "BCK.X402.0042", `token ${V3} refused`))
      const echoed = yield* Effect.flip(live.accessToken({ planId: PLAN }))
      assert.strictEqual(echoed.code, "BCK.X402.0042")
      texts.push(...renderings(echoed))
      assertNowhere([...texts, captured.text()], [SHORT, V3])
      assert.isAbove(captured.spans.length, 10)
    }).pipe(Effect.provide(captured.layer), Logger.withMinimumLogLevel(LogLevel.All))
  })

  it.scoped("X402Client: a token that cannot be read is TokenUnavailable, and the token is nowhere", () => {
    const captured = TestTelemetry.make()
    return Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      seed(fake)
      const agent = yield* paidAgent(fake)
      const buyer = yield* subscriber(fake)
      const client = yield* X402Client.make().pipe(
        Effect.provideService(Subscriber.Subscriber, buyer),
        Effect.provide(yield* Layer.build(FetchHttpClient.layer))
      )
      const texts: Array<string> = []
      for (const body of oddMintAnswers(SHORT)) {
        fake.faults.next("permissions", Fault.wrongShape(body))
        const error = yield* Effect.flip(client.execute(HttpClientRequest.post(`${agent.url}/tool`)))
        assert.strictEqual(error._tag === "X402ClientError" && error.reason, "TokenUnavailable")
        texts.push(...renderings(error))
        yield* Effect.logWarning("paid call failed", error)
      }
      assertNowhere([...texts, captured.text()], [SHORT])
      // Nothing was sent to the agent with a token: it only saw the unpaid calls.
      assert.strictEqual(fake.calls("verify"), 0)
    }).pipe(Effect.provide(captured.layer), Logger.withMinimumLogLevel(LogLevel.All))
  })
})

describe("odd verify and settle answers never show the token they carry", () => {
  it.scoped("verify and settle: values of a wrong shape are not quoted back", () => {
    const captured = TestTelemetry.make()
    return Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted, token } = seed(fake)
      const live = yield* facilitator(fake)
      const request = { paymentRequired, token: redacted, maxAmount: 1 }
      const texts: Array<string> = []
      const odd = [SHORT, V3, token]
      const verifyAnswers: ReadonlyArray<unknown> = [
        SHORT,
        [V3],
        { isValid: SHORT },
        { isValid: true, payer: { token: V3 } },
        { isValid: true, agentRequestId: [SHORT] },
        { isValid: false, invalidReason: 7, echo: token }
      ]
      for (const body of verifyAnswers) {
        fake.faults.next("verify", Fault.wrongShape(body))
        const error = yield* Effect.flip(live.verify(request))
        assert.strictEqual(error.kind, "MalformedResponse")
        texts.push(...renderings(error))
        yield* Effect.logError("verify failed", error)
      }
      const settleAnswers: ReadonlyArray<unknown> = [
        { success: SHORT, transaction: V3 },
        { success: true, transaction: { hash: SHORT } },
        { success: true, creditsRedeemed: { v: V3 } },
        [{ success: true, token }]
      ]
      for (const body of settleAnswers) {
        fake.faults.next("settle", Fault.wrongShape(body))
        const error = yield* Effect.flip(live.settle(request))
        assert.strictEqual(error.kind, "MalformedResponse")
        texts.push(...renderings(error))
        yield* Effect.logError("settle failed", error)
      }
      assertNowhere([...texts, captured.text()], odd)
    }).pipe(Effect.provide(captured.layer), Logger.withMinimumLogLevel(LogLevel.All))
  })
})
