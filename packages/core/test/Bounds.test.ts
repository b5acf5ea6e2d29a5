import { Bounds } from "@effect-x402/core"
import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"

// The depth of a JSON value as the bound counts it: objects and arrays one level each.
const depthOf = (value: unknown): number => {
  if (typeof value !== "object" || value === null) return 0
  const children = Array.isArray(value) ? value : Object.values(value)
  return 1 + children.reduce((max: number, child) => Math.max(max, depthOf(child)), 0)
}

const nested = (depth: number, wrap: (inner: unknown) => unknown): unknown => {
  let value: unknown = "leaf"
  for (let i = 0; i < depth; i++) value = wrap(value)
  return value
}

describe("Bounds.jsonDepthExceeds", () => {
  it("says a value is too deep exactly when its depth is over the limit", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 10 }), (value, limit) => {
        assert.strictEqual(Bounds.jsonDepthExceeds(value, limit), depthOf(value) > limit)
      }),
      { numRuns: 1000 }
    )
  })

  it("allows MAX_JSON_DEPTH levels and refuses one more, in objects and in arrays", () => {
    const max = Bounds.MAX_JSON_DEPTH
    for (const wrap of [(inner: unknown) => ({ a: inner }), (inner: unknown) => [1, inner]]) {
      assert.isFalse(Bounds.jsonDepthExceeds(nested(max, wrap)))
      assert.isTrue(Bounds.jsonDepthExceeds(nested(max + 1, wrap)))
    }
    // The deep branch after many shallow siblings is still found.
    const wide = { rows: Array.from({ length: 1000 }, (_, id) => ({ id })), last: nested(max, (inner) => ({ inner })) }
    assert.isTrue(Bounds.jsonDepthExceeds(wide))
  })

  it("measures a hostile depth without overflowing the stack, whatever the limit", () => {
    const hostile = JSON.parse("[".repeat(100_000) + "]".repeat(100_000))
    assert.isTrue(Bounds.jsonDepthExceeds(hostile))
    assert.isTrue(Bounds.jsonDepthExceeds(hostile, 50_000))
    assert.isFalse(Bounds.jsonDepthExceeds(hostile, 100_000))
  })

  it("counts own properties only: what a prototype carries is not the value's", () => {
    const proto = { deep: nested(Bounds.MAX_JSON_DEPTH + 5, (inner) => ({ inner })) }
    const value = Object.create(proto) as Record<string, unknown>
    value.shallow = { a: 1 }
    assert.isFalse(Bounds.jsonDepthExceeds(value))
    value.own = proto.deep
    assert.isTrue(Bounds.jsonDepthExceeds(value))
  })
})

describe("Bounds.jsonTextDepthExceeds", () => {
  it("answers as jsonDepthExceeds on the parsed text, for any JSON and limit", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 10 }), (value, limit) => {
        const text = JSON.stringify(value)
        assert.strictEqual(Bounds.jsonTextDepthExceeds(text, limit), Bounds.jsonDepthExceeds(JSON.parse(text), limit))
      }),
      { numRuns: 1000 }
    )
  })

  it("does not count brackets inside strings, escaped quotes and backslashes included", () => {
    const max = Bounds.MAX_JSON_DEPTH
    const inString = JSON.stringify({ a: "[".repeat(200), b: "\\\"{{{{\\", c: "\\\\" })
    assert.isFalse(Bounds.jsonTextDepthExceeds(inString))
    const deepAfterStrings = `{"s":"\\\\","t":"\\"[",${"[".repeat(max)}${"]".repeat(max)}}`
    assert.isTrue(Bounds.jsonTextDepthExceeds(deepAfterStrings))
    assert.isFalse(Bounds.jsonTextDepthExceeds(`{"s":"\\\\","t":"\\"[",${"[".repeat(max - 1)}${"]".repeat(max - 1)}}`))
  })

  it("refuses hostile text the parser cannot read: unclosed or too deep for JSON.parse", () => {
    assert.isTrue(Bounds.jsonTextDepthExceeds("[".repeat(100_000)))
    assert.isTrue(Bounds.jsonTextDepthExceeds(`{"a":${"[".repeat(65)}`))
    assert.isFalse(Bounds.jsonTextDepthExceeds(`{"a":"${"[".repeat(100)}`))
  })
})
