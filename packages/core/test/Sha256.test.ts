import { assert, describe, it } from "@effect/vitest"
import * as fc from "effect/FastCheck"
import { createHash } from "node:crypto"
import { sha256Hex } from "../src/internal/sha256.js"

describe("internal/sha256", () => {
  it("matches node:crypto on known vectors and on generated strings (any length, any UTF-16)", () => {
    assert.strictEqual(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert.strictEqual(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 300 }), (text) => {
        assert.strictEqual(sha256Hex(text), createHash("sha256").update(text, "utf8").digest("hex"))
      }),
      { numRuns: 300 }
    )
  })
})
