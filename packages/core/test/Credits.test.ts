import { Credits } from "@effect-x402/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Option } from "effect"

const reasonOf = (value: unknown) =>
  Either.match(Credits.validate(value), { onLeft: (e) => e.reason, onRight: () => "ok" as const })

describe("Credits.validate", () => {
  it.prop("accepts every non-negative safe integer, as a number or a decimal string", [
    fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })
  ], ([n]) => {
    assert.deepStrictEqual(Credits.validate(n), Either.right(n))
    assert.deepStrictEqual(Credits.validate(String(n)), Either.right(n))
    assert.deepStrictEqual(Credits.validate(BigInt(n)), Either.right(n))
  })

  it.prop("refuses every negative amount", [fc.integer({ max: -1 })], ([n]) => {
    assert.strictEqual(reasonOf(n), "Negative")
    assert.strictEqual(reasonOf(String(n)), "Negative")
  })

  it.prop("refuses every fraction", [fc.double({ noNaN: true, noDefaultInfinity: true, min: 0, max: 1e15 })], ([x]) => {
    fc.pre(!Number.isInteger(x))
    assert.strictEqual(reasonOf(x), "NotInteger")
  })

  it.prop("a string is accepted exactly when it is a decimal safe integer", [fc.string()], ([s]) => {
    const valid = /^[0-9]+$/.test(s) && Number.isSafeInteger(Number(s))
    assert.strictEqual(Either.isRight(Credits.validate(s)), valid)
  })

  it("refuses what is not an amount, with a reason", () => {
    assert.strictEqual(reasonOf(Number.NaN), "NotAnAmount")
    assert.strictEqual(reasonOf(Infinity), "TooLarge")
    assert.strictEqual(reasonOf(Number("1e309")), "TooLarge")
    assert.strictEqual(reasonOf(2 ** 53), "TooLarge")
    assert.strictEqual(reasonOf("9007199254740993"), "TooLarge")
    assert.strictEqual(reasonOf("12345678901234567890"), "TooLarge")
    assert.strictEqual(reasonOf(-0.5), "Negative")
    assert.strictEqual(reasonOf(1.5), "NotInteger")
    assert.strictEqual(reasonOf("1.5"), "NotAnAmount")
    assert.strictEqual(reasonOf("1e3"), "NotAnAmount")
    assert.strictEqual(reasonOf(" 1"), "NotAnAmount")
    assert.strictEqual(reasonOf(""), "NotAnAmount")
    assert.strictEqual(reasonOf(null), "NotAnAmount")
    assert.strictEqual(reasonOf(undefined), "NotAnAmount")
    assert.strictEqual(reasonOf(true), "NotAnAmount")
    assert.strictEqual(reasonOf({ valueOf: () => 3 }), "NotAnAmount")
    assert.strictEqual(reasonOf([1]), "NotAnAmount")
    assert.strictEqual(reasonOf(-1n), "Negative")
  })

  it("validateSync throws a RangeError for a bad fixed price", () => {
    assert.strictEqual(Credits.validateSync(3), 3)
    assert.throws(() => Credits.validateSync(-1), RangeError)
  })
})

describe("Credits.resolve", () => {
  it.effect("a fixed amount", () => Effect.map(Credits.resolve(4, {}), (n) => assert.strictEqual(n, 4)))

  it.effect("a function of the request, sync, Promise or Effect", () =>
    Effect.gen(function*() {
      const detailed = (req: { detailed: boolean }) => req.detailed ? 10 : 1
      assert.strictEqual(yield* Credits.resolve(detailed, { detailed: true }), 10)
      assert.strictEqual(yield* Credits.resolve(detailed, { detailed: false }), 1)
      assert.strictEqual(yield* Credits.resolve(() => Promise.resolve("7"), {}), 7)
      assert.strictEqual(yield* Credits.resolve(() => Effect.succeed(3), {}), 3)
    }))

  it.effect("a policy that throws, rejects, fails or answers garbage is an InvalidCredits", () =>
    Effect.gen(function*() {
      const reasons = yield* Effect.forEach([
        () => {
          throw new Error("boom")
        },
        () => Promise.reject(new Error("nope")),
        () => Effect.fail("bad"),
        () => -3,
        () => "lots"
      ], (policy) => Effect.flip(Credits.resolve(policy, {})).pipe(Effect.map((e) => e.reason)))
      assert.deepStrictEqual(reasons, ["PolicyFailed", "PolicyFailed", "PolicyFailed", "Negative", "NotAnAmount"])
    }))
})

describe("Credits.findCharge (docs/protocol.md §5 order)", () => {
  const textItem = (json: unknown) => ({ type: "text", text: JSON.stringify(json) })

  it("result._meta.creditsToCharge wins over everything", () => {
    const found = Credits.findCharge({
      result: { _meta: { creditsToCharge: 5 }, content: [textItem({ creditsToCharge: 6 })] },
      headers: { "X-Credits-To-Charge": "7" },
      body: { creditsToCharge: 8 }
    })
    assert.deepStrictEqual(found, Option.some(5))
  })

  it("then the X-Credits-To-Charge header, in any case", () => {
    const found = Credits.findCharge({
      result: { content: [textItem({ creditsToCharge: 6 })] },
      headers: { "x-CREDITS-to-charge": "7" }
    })
    assert.deepStrictEqual(found, Option.some("7"))
  })

  it("then the first JSON text item with creditsToCharge, then the body's top level", () => {
    const result = {
      content: [{ type: "text", text: "plain" }, textItem({ other: 1 }), textItem({ creditsToCharge: 6 })]
    }
    assert.deepStrictEqual(Credits.findCharge({ result }), Option.some(6))
    assert.deepStrictEqual(Credits.findCharge({ result: {}, body: { creditsToCharge: 8 } }), Option.some(8))
    assert.deepStrictEqual(Credits.findCharge({ result: {} }), Option.none())
  })

  it("null is absent, and inherited properties never count", () => {
    assert.deepStrictEqual(Credits.findCharge({ result: { _meta: { creditsToCharge: null } } }), Option.none())
    const hostile = JSON.parse("{\"__proto__\":{\"creditsToCharge\":99}}")
    assert.deepStrictEqual(Credits.findCharge({ result: { _meta: hostile }, body: hostile }), Option.none())
    assert.deepStrictEqual(
      Credits.findCharge({ result: Object.create({ _meta: { creditsToCharge: 3 } }) }),
      Option.none()
    )
  })

  it("settleAmount validates the override and falls back to the default", () => {
    assert.deepStrictEqual(Credits.settleAmount({ result: {} }, 2), Either.right(2))
    assert.deepStrictEqual(Credits.settleAmount({ result: { _meta: { creditsToCharge: "5" } } }, 2), Either.right(5))
    for (const bad of [-1, 1.5, "abc", Number("1e309"), {}]) {
      const amount = Credits.settleAmount({ result: { _meta: { creditsToCharge: bad } } }, 2)
      assert.isTrue(Either.isLeft(amount), `refuses ${String(bad)}`)
    }
  })
})
