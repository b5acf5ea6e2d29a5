import { assert, describe, it } from "@effect/vitest"
import { FastCheck, Option, Schema } from "effect"
import { decodeEnvelope, encodeEnvelope } from "../src/internal/envelope.js"

// The idempotent path reads stored rows without Schema (bytes in every Lambda bundle): these pin the
// hand reader to the Schema it replaced, on rows it wrote and on anything a store could hand back.
const Envelope = Schema.parseJson(Schema.Struct({ credits: Schema.NonNegativeInt, value: Schema.String }))
const viaSchema = Schema.decodeUnknownOption(Envelope)

const number = FastCheck.oneof(
  FastCheck.integer(),
  FastCheck.double(),
  FastCheck.constantFrom(0, -0, -1, 1.5, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, 1e300)
)
const value = FastCheck.oneof(FastCheck.string({ unit: "binary" }), number, FastCheck.constant(null))
const rows = FastCheck.oneof(
  // What the adapters write.
  FastCheck.record({ credits: FastCheck.nat(), value: FastCheck.string({ unit: "binary" }) }).map(encodeEnvelope),
  // Anything shaped like it, with keys missing, extra or of the wrong type.
  FastCheck.record({ credits: value, value, extra: value }, { requiredKeys: [] }).map((row) => JSON.stringify(row)),
  FastCheck.json(),
  FastCheck.string()
)

describe("internal/envelope", () => {
  it("decodes exactly what the Schema decodes, to the same value", () => {
    FastCheck.assert(
      FastCheck.property(rows, (row) => {
        assert.deepStrictEqual(decodeEnvelope(row), viaSchema(row))
      }),
      { numRuns: 2000 }
    )
  })

  it("refuses what a store could corrupt", () => {
    for (
      const row of [
        "",
        "null",
        "[]",
        "{\"credits\":-1,\"value\":\"x\"}",
        "{\"credits\":1.5,\"value\":\"x\"}",
        "{\"credits\":9007199254740992,\"value\":\"x\"}",
        "{\"credits\":1}",
        "{\"credits\":\"1\",\"value\":\"x\"}",
        "{\"__proto__\":{\"credits\":1,\"value\":\"x\"}}"
      ]
    ) {
      assert.isTrue(Option.isNone(decodeEnvelope(row)), row)
    }
    assert.deepStrictEqual(
      decodeEnvelope("{\"credits\":2,\"value\":\"{}\",\"x\":1}"),
      Option.some({ credits: 2, value: "{}" })
    )
  })
})
