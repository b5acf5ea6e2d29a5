import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { surelySerializable } from "../src/internal/json.js"

class Point {
  constructor(readonly x: number) {}
}

describe("surelySerializable: the cheap answer to whether JSON.stringify succeeds", () => {
  it("whatever it calls sure serialises", () => {
    const anything = fc.anything({
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withObjectString: true,
      withTypedArray: true,
      withSparseArray: true
    })
    let sure = 0
    fc.assert(
      fc.property(anything, (value) => {
        if (!surelySerializable(value)) return
        sure++
        assert.doesNotThrow(() => JSON.stringify(value))
      }),
      { numRuns: 2000 }
    )
    assert.isAbove(sure, 200)
  })

  it("is never sure of what JSON.stringify refuses or turns into something else", () => {
    const cycle: Record<string, unknown> = { a: 1 }
    cycle.self = cycle
    const deep = Array.from({ length: 100 }).reduce<unknown>((inner) => ({ inner }), 1)
    const throwing = {
      toJSON: () => {
        throw new Error("no")
      }
    }
    for (const value of [1n, { n: 1n }, [1n], cycle, deep, throwing, new Point(1), new Date(0)]) {
      assert.isFalse(surelySerializable(value))
    }
    // The usual MCP result is sure.
    assert.isTrue(
      surelySerializable({ jsonrpc: "2.0", id: 1, result: { content: [{ type: "text", text: "{\"a\":1}" }] } })
    )
  })
})
