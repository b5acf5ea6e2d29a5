// httpHandler reads the usual API Gateway v2 / Function URL event by hand (no Schema run per
// request). This property pins the hand-written reader to `HttpHandler.HttpEventSchema`: on any
// event, it either answers exactly what the schema decodes (same keys, same order, same values) or
// declines, and it never accepts what the schema refuses. What it declines is refused by the
// schema with the same 400 as before.
import { HttpEventSchema, httpHandler } from "@effect-x402/lambda/HttpHandler"
import { AgentCoreEvents, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck as fc, Layer, Schema } from "effect"
import { decodeV2Event } from "../src/internal/httpEvent.js"
import { captureLogs } from "./helpers.js"

// A value: mostly of the schema's types, sometimes not.
const loose = fc.oneof(
  { weight: 4, arbitrary: fc.string() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.array(fc.string(), { maxLength: 2 }) },
  { weight: 2, arbitrary: fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }) }
)
// Mostly the expected type, sometimes anything.
const typed = <A>(value: fc.Arbitrary<A>) =>
  fc.oneof({ weight: 8, arbitrary: value as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: loose })
const maybe = <A>(key: string, value: fc.Arbitrary<A>) =>
  fc.option(value.map((v) => [key, v] as const), { nil: undefined, freq: 3 })
const objectOf = (entries: ReadonlyArray<fc.Arbitrary<readonly [string, unknown] | undefined>>) =>
  fc.tuple(...entries, fc.boolean()).map((parts) => {
    const pairs = parts.slice(0, -1).filter((p): p is readonly [string, unknown] => p !== undefined)
    const shuffle = parts[parts.length - 1] === true
    // Keys in any order, as a gateway or a test may write them.
    return Object.fromEntries(shuffle ? [...pairs].reverse() : pairs)
  })

const http = objectOf([
  maybe("method", typed(fc.constantFrom("GET", "POST", "get", ""))),
  maybe("path", typed(fc.oneof(fc.string(), fc.constant(undefined))))
])
const requestContext = objectOf([
  maybe("domainName", typed(fc.oneof(fc.string(), fc.constant(undefined)))),
  maybe("http", typed(http)),
  maybe("requestId", fc.string())
])
const event = objectOf([
  maybe("rawPath", typed(fc.string())),
  maybe("headers", typed(fc.oneof(fc.constant(null), fc.dictionary(fc.string(), loose, { maxKeys: 4 })))),
  maybe("requestContext", typed(requestContext)),
  maybe("body", typed(fc.oneof(fc.string(), fc.constant(null), fc.constant(undefined)))),
  maybe("isBase64Encoded", typed(fc.boolean())),
  maybe("version", fc.constant("2.0"))
])

const bySchema = Schema.decodeUnknownEither(HttpEventSchema, { errors: "first", onExcessProperty: "ignore" })

describe("httpHandler's event, read by hand", () => {
  it("the same value as HttpEventSchema, or declined", () => {
    let accepted = 0
    fc.assert(
      fc.property(fc.oneof({ weight: 9, arbitrary: event }, { weight: 1, arbitrary: loose }), (input) => {
        const expected = bySchema(input)
        const actual = decodeV2Event(input)
        if (actual === undefined) return
        accepted++
        assert.isTrue(Either.isRight(expected), "accepted what the schema refuses")
        if (Either.isRight(expected)) {
          assert.deepStrictEqual(actual, expected.right)
          assert.deepStrictEqual(Object.keys(actual), Object.keys(expected.right))
          assert.deepStrictEqual(Object.keys(actual.requestContext), Object.keys(expected.right.requestContext))
          assert.deepStrictEqual(
            Object.keys(actual.requestContext.http),
            Object.keys(expected.right.requestContext.http)
          )
          // The headers are the event's own object, as the schema's declaration passes it on.
          assert.strictEqual(actual.headers, expected.right.headers)
        }
      }),
      { numRuns: 3000 }
    )
    assert.isAbove(accepted, 300, "the property exercised the hand-written path")
  })

  it("keys only on a prototype are not the event's: read as the schema reads them", () => {
    const inherited = Object.create({ rawPath: "/inherited", body: 7 }) as Record<string, unknown>
    inherited["requestContext"] = { http: { method: "POST" } }
    const expected = bySchema(inherited)
    const actual = decodeV2Event(inherited)
    assert.isTrue(Either.isRight(expected))
    if (actual !== undefined && Either.isRight(expected)) assert.deepStrictEqual(actual, expected.right)
  })

  it("a declined event is still refused by the schema with a 400 that says what is wrong", async () => {
    const seeded = TestFacilitator.seeded({ planId: "plan-1", agentId: "agent-1", credits: 10 })
    const logs = captureLogs()
    const handler = httpHandler({
      planId: "plan-1",
      agentId: "agent-1",
      credits: 1,
      layer: Layer.merge(TestFacilitator.layer(seeded.ledger), logs.layer)
    })(async () => ({ statusCode: 200, body: "{}" }))
    const result = await handler(
      { requestContext: { http: { method: 42 } }, headers: {} },
      AgentCoreEvents.context()
    )
    await handler.runtime.dispose()
    assert.strictEqual(result.statusCode, 400)
    assert.include(result.body ?? "", "method")
    assert.deepStrictEqual(seeded.ledger.calls, [], "nothing verified or settled")
  })
})
