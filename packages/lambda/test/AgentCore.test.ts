import { X402 } from "@effect-x402/core"
import { AgentCore } from "@effect-x402/lambda"
import { AgentCoreEvents } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Either, Schema } from "effect"

const settlement: X402.SettleResponse = {
  success: true,
  transaction: "0xabc",
  network: "eip155:84532",
  creditsRedeemed: "1",
  remainingBalance: "9"
}

describe("AgentCore", () => {
  it("names the tool after the last ___, only for tools/call", () => {
    assert.strictEqual(AgentCore.toolNameOf("tools/call", { name: "A___B___c" }), "c")
    assert.strictEqual(AgentCore.toolNameOf("tools/call", { name: "plain" }), "plain")
    assert.isUndefined(AgentCore.toolNameOf("tools/list", { name: "A___b" }))
    assert.isUndefined(AgentCore.toolNameOf("tools/call", { name: 3 }))
    assert.deepStrictEqual(
      AgentCore.toolCallOf(AgentCoreEvents.request({ tool: "getPatient", arguments: { patient_id: "1" } })),
      { name: "Target___getPatient", tool: "getPatient", arguments: { patient_id: "1" } }
    )
    assert.isUndefined(AgentCore.toolCallOf(AgentCoreEvents.request({ method: "tools/list" })))
    assert.isUndefined(AgentCore.toolCallOf(null))
  })

  it("reads tokens from own headers only, case-insensitively, first non-empty wins, Bearer dropped", () => {
    const names = AgentCore.tokenHeaders(["X-Payment", "X-Token"])
    assert.deepStrictEqual(names, ["x-payment", "x-token"])
    assert.strictEqual(AgentCore.tokenOf({ "X-TOKEN": "Bearer tok" }, names), "tok")
    assert.strictEqual(AgentCore.tokenOf({ "x-payment": " ", "x-token": "b" }, names), "b")
    // Authorization carries a gateway's identity JWT: refused at configuration time.
    assert.throws(() => AgentCore.tokenHeaders(["X-Payment", " Authorization "]), /must not be Authorization/)
    assert.strictEqual(AgentCore.tokenOf({ "x-payment": ["a", "z"] }, names), "a")
    assert.isUndefined(AgentCore.tokenOf(Object.create({ "x-payment": "inherited" }), names))
    assert.isUndefined(AgentCore.tokenOf({ "x-payment": 42 }, names))
    assert.throws(() => AgentCore.tokenHeaders(""), RangeError)
  })

  it("copies headers as strings, dropping __proto__ and the names asked", () => {
    const hostile = JSON.parse(`{"__proto__":{"x":"1"},"A":"1","b":2,"c":{"o":1},"Drop-Me":"x"}`)
    const copied = AgentCore.copyHeaders(hostile, ["drop-me"])
    assert.deepStrictEqual(copied, { A: "1", b: "2" })
    assert.strictEqual(Object.getPrototypeOf(copied), Object.prototype)
    assert.deepStrictEqual(AgentCore.setHeader({ "Payment-Response": "old", a: "1" }, "payment-response", "new"), {
      a: "1",
      "payment-response": "new"
    })
  })

  it("detects the four handler formats in order", () => {
    const bare = Either.getOrThrow(AgentCore.normalize({ content: [] }, 7))
    assert.deepStrictEqual(bare.body, { jsonrpc: "2.0", id: 7, result: { content: [] } })
    const full = Either.getOrThrow(AgentCore.normalize({ jsonrpc: "2.0", id: "x", result: { content: [] } }, 7))
    assert.deepStrictEqual(full.body, { jsonrpc: "2.0", id: "x", result: { content: [] } })
    const output = Either.getOrThrow(AgentCore.normalize({
      interceptorOutputVersion: "1.0",
      jsonrpc: "ignored",
      mcp: { transformedGatewayResponse: { statusCode: 202, body: `{"jsonrpc":"2.0","id":1,"result":{}}` } }
    }, 7))
    assert.deepStrictEqual(output, { statusCode: 202, headers: {}, body: { jsonrpc: "2.0", id: 1, result: {} } })
    for (const bad of [undefined, null, "text", [1], { interceptorOutputVersion: "1.0", mcp: {} }]) {
      assert.isTrue(Either.isLeft(AgentCore.normalize(bad, 1)))
    }
  })

  it("enriches without touching the handler's objects", () => {
    const result = { content: [], _meta: { creditsToCharge: 2 } }
    const answer = AgentCore.resultAnswer("id", result)
    const enriched = AgentCore.enrich(answer, settlement)
    assert.deepStrictEqual(result, { content: [], _meta: { creditsToCharge: 2 } })
    assert.deepStrictEqual((enriched.body as { result: unknown }).result, {
      content: [],
      _meta: { creditsToCharge: 2, x402: X402.metaOf(settlement) }
    })
    const receipt = Either.getOrThrow(X402.ReceiptHeader.decodeEither(enriched.headers["payment-response"]))
    assert.strictEqual(receipt.transactionHash, "0xabc")
  })

  it("tells REQUEST from RESPONSE by a non-empty gatewayResponse", () => {
    const phase = (event: unknown) => Either.getOrThrow(AgentCore.decodeCall(event)).phase
    const request = AgentCoreEvents.request()
    assert.strictEqual(phase(request), "REQUEST")
    assert.strictEqual(phase({ mcp: { ...request.mcp, gatewayResponse: {} } }), "REQUEST")
    assert.strictEqual(phase({ mcp: { ...request.mcp, gatewayResponse: null } }), "REQUEST")
    assert.strictEqual(phase(AgentCoreEvents.response()), "RESPONSE")
  })

  it.prop(
    "echoes any JSON-RPC id with its type, in every answer",
    [Schema.Union(Schema.String, Schema.Int, Schema.Null)],
    ([id]) => {
      const required = X402.paymentRequired({ planIds: ["p"], network: "n" })
      const answers = [
        AgentCore.paymentRequiredAnswer(id, required, "m"),
        AgentCore.errorAnswer(id, { error: "e", code: 500 }),
        AgentCore.enrich(AgentCore.resultAnswer(id, {}), settlement),
        Either.getOrThrow(AgentCore.normalize({ content: [] }, id))
      ]
      for (const answer of answers) assert.strictEqual((answer.body as { id: unknown }).id, id)
      const event = AgentCoreEvents.request({ id })
      assert.strictEqual(Either.getOrThrow(AgentCore.decodeCall(event)).id, id)
    }
  )
})
