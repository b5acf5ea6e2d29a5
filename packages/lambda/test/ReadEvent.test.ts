import { AgentCore } from "@effect-x402/lambda"
import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import { readInput, readRequest } from "../src/internal/readEvent.js"

// The readers must answer what the Schemas answer, wherever they answer at all.
const schemaInput = Schema.decodeUnknownEither(AgentCore.InterceptorInput, {
  errors: "first",
  onExcessProperty: "ignore"
})
const schemaRequest = Schema.decodeUnknownEither(AgentCore.JsonRpcRequest, {
  errors: "first",
  onExcessProperty: "ignore"
})

// Values of every kind, including the ones each field refuses.
const leaf = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined)
)
const value = fc.oneof(
  leaf,
  fc.array(leaf, { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 4 }), leaf, { maxKeys: 3 })
)
// An object with some of `keys` (each with a value of any kind) and maybe extra keys.
const objectOf = (keys: Record<string, fc.Arbitrary<unknown>>) =>
  fc.tuple(
    fc.record(keys, { requiredKeys: [] }),
    fc.dictionary(fc.constantFrom("extra", "__proto__", "toString", "x"), value, { maxKeys: 2 })
  ).map(([known, extra]) => {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(extra)) {
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true })
    }
    return Object.assign(out, known)
  })
const headers = fc.oneof(fc.constant(null), fc.dictionary(fc.string({ maxLength: 8 }), leaf, { maxKeys: 3 }), value)
const gatewayRequest = fc.oneof(
  {
    arbitrary: objectOf({
      httpMethod: fc.oneof(fc.string(), value),
      path: fc.oneof(fc.string(), value),
      headers,
      body: value
    }),
    weight: 4
  },
  { arbitrary: value, weight: 1 }
)
const gatewayResponse = fc.oneof(
  objectOf({ statusCode: fc.oneof(fc.integer(), value), headers, body: value }),
  fc.constant(null),
  fc.constant(undefined),
  value
)
const event = fc.oneof(
  {
    arbitrary: objectOf({
      interceptorInputVersion: fc.oneof(fc.constant("1.0"), value),
      mcp: fc.oneof({ arbitrary: objectOf({ gatewayRequest, gatewayResponse }), weight: 4 }, {
        arbitrary: value,
        weight: 1
      })
    }),
    weight: 4
  },
  { arbitrary: value, weight: 1 }
)
const body = fc.oneof(
  objectOf({
    jsonrpc: fc.oneof(fc.constant("2.0"), value),
    id: fc.oneof(fc.integer(), fc.string({ maxLength: 4 }), fc.constant(null), value),
    method: fc.oneof(fc.constantFrom("tools/call", "tools/list"), value),
    params: value
  }),
  value
)

describe("readEvent: the Schema's answer, without the Schema", () => {
  it("an event the reader reads decodes to the same value through InterceptorInput", () => {
    let read = 0
    fc.assert(
      fc.property(event, (e) => {
        const fast = readInput(e)
        if (fast === undefined) return
        read++
        const slow = schemaInput(e)
        assert.isTrue(Either.isRight(slow), "the reader accepted what the Schema refuses")
        assert.deepStrictEqual(fast, Either.getOrThrow(slow))
      }),
      { numRuns: 3000 }
    )
    // The property is not vacuous: many arbitrary events take the fast path.
    assert.isAbove(read, 100)
  })

  it("a body the reader reads decodes to the same value through JsonRpcRequest", () => {
    let read = 0
    fc.assert(
      fc.property(body, (b) => {
        const fast = readRequest(b)
        if (fast === undefined) return
        read++
        const slow = schemaRequest(b)
        assert.isTrue(Either.isRight(slow), "the reader accepted what the Schema refuses")
        assert.deepStrictEqual(fast, Either.getOrThrow(slow))
      }),
      { numRuns: 3000 }
    )
    assert.isAbove(read, 100)
  })

  it("the events the gateway sends take the fast path, REQUEST and RESPONSE", () => {
    const request = {
      interceptorInputVersion: "1.0",
      mcp: {
        gatewayRequest: {
          headers: { "payment-signature": "tok" },
          body: { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "t___a", arguments: {} } }
        }
      }
    }
    assert.isDefined(readInput(request))
    assert.isDefined(readRequest(request.mcp.gatewayRequest.body))
    const response = { ...request, mcp: { ...request.mcp, gatewayResponse: { statusCode: 200, body: { ok: 1 } } } }
    assert.deepStrictEqual(readInput(response), Either.getOrThrow(schemaInput(response)))
  })

  it("decodeCall answers the same through either path: a refused event is still refused by the Schema", () => {
    const refused = { mcp: { gatewayRequest: { headers: "not headers", body: {} } } }
    assert.isUndefined(readInput(refused))
    const decoded = AgentCore.decodeCall(refused)
    assert.isTrue(Either.isLeft(decoded))
    if (Either.isLeft(decoded)) {
      // The fallback is the Schema's own decode: its message names the field it refused.
      assert.strictEqual(decoded.left.reason, "NotAnEvent")
      assert.include(decoded.left.detail, "mcp.gatewayRequest.headers")
    }
    const notJsonRpc = AgentCore.decodeCall({ mcp: { gatewayRequest: { body: { method: 42, id: 7 } } } })
    assert.isTrue(Either.isLeft(notJsonRpc) && notJsonRpc.left.reason === "NotJsonRpc" && notJsonRpc.left.id === 7)
  })

  it("the event schemas built on first use are the exported ones, built once", () => {
    // The decoders and the exports share one instance per schema (built lazily, on first use).
    assert.strictEqual(AgentCore.InterceptorInput.fields.mcp.fields.gatewayRequest, AgentCore.GatewayRequest)
    const gatewayResponse = AgentCore.InterceptorInput.fields.mcp.fields.gatewayResponse
    assert.isTrue(
      Schema.is(Schema.typeSchema(Schema.Struct({ r: gatewayResponse })))({ r: AgentCore.GatewayResponse.make({}) })
    )
    // Headers as declared: any object, kept as received; anything else refused.
    assert.isTrue(Schema.is(AgentCore.Headers)({ "x-a": "1" }))
    assert.isFalse(Schema.is(AgentCore.GatewayRequest)({ headers: "not headers" }))
    assert.isTrue(Schema.is(AgentCore.JsonRpcRequest)({ method: "ping", id: null }))
  })
})
