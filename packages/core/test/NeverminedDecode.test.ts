// The live layer writes its request bodies and decodes the backend's usual verify and settle
// answers by hand (no Schema run per answer, the PaymentRequired serialised once per value). These properties pin the hand-written decoders to `X402.VerifyResponse` and
// `X402.SettleResponse`: on any JSON value, the decoder either answers exactly what the schema
// decodes (same keys, same order, same values) or declines, and it never accepts what the schema
// refuses. Over the wire, what the hand-written decoder declines is refused by the schema with the
// same `MalformedResponse` as before.
import { X402 } from "@effect-x402/core"
import { FakeNevermined } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Schema } from "effect"
import { decodeSettleResponse, decodeVerifyResponse, encodeBody } from "../src/internal/backend.js"
import { facilitator, paymentRequired, seed } from "./Nevermined.fixtures.js"

const { Fault } = FakeNevermined

// A field's value: mostly of the schema's types, sometimes not.
const loose = fc.oneof(
  { weight: 4, arbitrary: fc.string() },
  { weight: 2, arbitrary: fc.constant(null) },
  { weight: 2, arbitrary: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }
)

// An answer: any subset of the schema's keys (and a few others), in any order, through JSON.
const answerOf = (keys: ReadonlyArray<string>) =>
  fc.tuple(
    fc.dictionary(fc.constantFrom(...keys, "extra", "__proto__", "constructor"), loose),
    fc.oneof(fc.boolean(), loose)
  ).map(([fields, flag]) => ({ fields, flag }))

const check = <A, I>(
  schema: Schema.Schema<A, I>,
  decode: (json: unknown) => A | undefined,
  flagKey: string,
  keys: ReadonlyArray<string>
) => {
  const bySchema = Schema.decodeUnknownEither(schema)
  fc.assert(
    fc.property(answerOf(keys), fc.boolean(), ({ fields, flag }, withFlag) => {
      // Through JSON text, as an answer arrives (`__proto__` becomes an own key, as JSON.parse makes it).
      const text = JSON.stringify(withFlag ? { ...fields, [flagKey]: flag } : fields)
      const json: unknown = JSON.parse(text)
      const expected = bySchema(json)
      const actual = decode(json)
      if (actual === undefined) return true
      assert.isTrue(Either.isRight(expected), `accepted what the schema refuses: ${text}`)
      if (Either.isRight(expected)) {
        assert.deepStrictEqual(actual, expected.right)
        assert.strictEqual(JSON.stringify(actual), JSON.stringify(expected.right), `key order for ${text}`)
        assert.deepStrictEqual(Object.keys(actual as object), Object.keys(expected.right as object))
      }
      return true
    }),
    { numRuns: 3000 }
  )
}

const VERIFY_KEYS = ["isValid", "invalidReason", "payer", "network", "agentRequestId", "urlMatching", "agentRequest"]
const SETTLE_KEYS = [
  "success",
  "errorReason",
  "payer",
  "transaction",
  "network",
  "creditsRedeemed",
  "remainingBalance",
  "orderTx"
]

describe("the backend's answers, decoded by hand", () => {
  it("verify: the same value as X402.VerifyResponse, or declined", () => {
    check(X402.VerifyResponse, decodeVerifyResponse, "isValid", VERIFY_KEYS)
  })

  it("settle: the same value as X402.SettleResponse, or declined", () => {
    check(X402.SettleResponse, decodeSettleResponse, "success", SETTLE_KEYS)
  })

  it("the usual answers are decoded by hand (not declined)", () => {
    assert.deepStrictEqual(
      decodeVerifyResponse({ isValid: true, payer: "0xp", network: "eip155:84532", agentRequestId: "a1" }),
      { isValid: true, payer: "0xp", network: "eip155:84532", agentRequestId: "a1" }
    )
    assert.deepStrictEqual(
      decodeSettleResponse({
        success: true,
        transaction: "0xt",
        network: "n",
        creditsRedeemed: 1,
        remainingBalance: "9"
      }),
      { success: true, transaction: "0xt", network: "n", creditsRedeemed: "1", remainingBalance: "9" }
    )
  })

  it("off-type answers are declined, and the schema's refusal still says where", () => {
    assert.isUndefined(decodeVerifyResponse({ isValid: "yes" }))
    assert.isUndefined(decodeVerifyResponse([]))
    assert.isUndefined(decodeSettleResponse({ success: true, transaction: 7 }))
    assert.isUndefined(decodeSettleResponse({ success: true, creditsRedeemed: {} }))
  })

  it.scopedLive("over the wire: an off-type verify answer is a MalformedResponse naming the field, as before", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted } = seed(fake)
      fake.faults.next("verify", Fault.wrongShape({ isValid: "certainly", payer: 12 }))
      const live = yield* facilitator(fake)
      const error = yield* Effect.flip(live.verify({ paymentRequired, token: redacted, maxAmount: 1 }))
      assert.strictEqual(error.kind, "MalformedResponse")
      assert.strictEqual(error.requestSent, true)
      assert.include(error.detail ?? "", "isValid")
    }))
})

describe("the request bodies, written by hand", () => {
  const paymentRequiredArbitrary = fc.record({
    x402Version: fc.constant(2),
    resource: fc.record({ url: fc.webUrl(), mimeType: fc.string() }),
    accepts: fc.array(fc.record({ planId: fc.string(), network: fc.string(), extra: fc.jsonValue({ maxDepth: 2 }) })),
    extensions: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }))
  }) as unknown as fc.Arbitrary<X402.PaymentRequired>

  it("the bytes of JSON.stringify of the literal, for any token, amount and request id", () => {
    fc.assert(
      fc.property(
        paymentRequiredArbitrary,
        fc.string({ unit: "grapheme-composite" }),
        fc.oneof(fc.nat(), fc.maxSafeNat()),
        fc.option(fc.string({ unit: "binary" }), { nil: undefined }),
        (paymentRequired, token, maxAmount, agentRequestId) => {
          const expected = JSON.stringify({
            paymentRequired,
            x402AccessToken: token,
            maxAmount: String(maxAmount),
            ...(agentRequestId !== undefined ? { agentRequestId } : {})
          })
          // Twice: the second body comes from the remembered PaymentRequired JSON.
          assert.strictEqual(encodeBody(paymentRequired, token, maxAmount, agentRequestId), expected)
          assert.strictEqual(encodeBody(paymentRequired, token, maxAmount, agentRequestId), expected)
        }
      ),
      { numRuns: 1000 }
    )
  })

  it("each PaymentRequired value is sent as itself (remembered by identity, never mixed up)", () => {
    const a = { x402Version: 2, accepts: [{ planId: "a" }] } as unknown as X402.PaymentRequired
    const b = { x402Version: 2, accepts: [{ planId: "b" }] } as unknown as X402.PaymentRequired
    assert.include(encodeBody(a, "t", 1, undefined), `"planId":"a"`)
    assert.include(encodeBody(b, "t", 1, undefined), `"planId":"b"`)
    assert.include(encodeBody(a, "t", 1, undefined), `"planId":"a"`)
  })

  it.scopedLive("over the wire: the backend receives exactly the JSON of the literal", () =>
    Effect.gen(function*() {
      const fake = yield* FakeNevermined.make()
      const { redacted, token } = seed(fake)
      const live = yield* facilitator(fake)
      const request = { paymentRequired, token: redacted, maxAmount: 1 }
      const verified = yield* live.verify(request)
      yield* live.settle({ ...request, agentRequestId: verified.agentRequestId })
      const [verify, settle] = fake.requests
      assert.strictEqual(verify.body, JSON.stringify({ paymentRequired, x402AccessToken: token, maxAmount: "1" }))
      assert.strictEqual(
        settle.body,
        JSON.stringify({
          paymentRequired,
          x402AccessToken: token,
          maxAmount: "1",
          agentRequestId: verified.agentRequestId
        })
      )
    }))
})
