import { X402 } from "@effect-x402/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Schema } from "effect"

const decodeText = (header: string) => Buffer.from(header, "base64").toString("utf8")

describe("X402.paymentRequired", () => {
  it("builds one accepts entry per plan, with the same extra", () => {
    const pr = X402.paymentRequired({
      planIds: ["plan-a", "plan-b"],
      agentId: "agent-1",
      endpoint: "https://gw.example/mcp",
      httpVerb: "POST",
      network: "eip155:84532",
      description: "weather"
    })
    assert.strictEqual(pr.x402Version, 2)
    assert.deepStrictEqual(pr.resource, {
      url: "https://gw.example/mcp",
      description: "weather"
    })
    assert.deepStrictEqual(pr.accepts.map((a) => a.planId), ["plan-a", "plan-b"])
    for (const entry of pr.accepts) {
      assert.strictEqual(entry.scheme, "nvm:erc4337")
      assert.strictEqual(entry.network, "eip155:84532")
      assert.deepStrictEqual(entry.extra, { version: "1", agentId: "agent-1", httpVerb: "POST" })
    }
  })

  it("omits agentId and httpVerb when not configured, and uses \"\" for an unknown resource", () => {
    const pr = X402.paymentRequired({ planIds: ["p"], network: (planId) => `net-of-${planId}` })
    assert.deepStrictEqual(pr.accepts[0].extra, { version: "1" })
    assert.strictEqual(pr.accepts[0].network, "net-of-p")
    assert.strictEqual(pr.resource.url, "")
  })

  it("leaves resource.description and resource.mimeType off the wire unless configured, as Python does", () => {
    const bare = X402.paymentRequired({ planIds: ["p"], endpoint: "https://a.example/mcp", network: "n" })
    assert.strictEqual(
      JSON.stringify(bare),
      "{\"x402Version\":2,\"resource\":{\"url\":\"https://a.example/mcp\"},\"accepts\":[{\"scheme\":" +
        "\"nvm:erc4337\",\"network\":\"n\",\"planId\":\"p\",\"extra\":{\"version\":\"1\"}}],\"extensions\":{}}"
    )
    const described = X402.paymentRequired({
      planIds: ["p"],
      network: "n",
      description: "weather",
      mimeType: "text/plain"
    })
    assert.deepStrictEqual(described.resource, { url: "", description: "weather", mimeType: "text/plain" })
  })

  it("refuses an empty plan list", () => {
    assert.throws(() => X402.paymentRequired({ planIds: [], network: "n" }), /at least one plan/)
  })
})

describe("header codec", () => {
  const sample = X402.paymentRequired({ planIds: ["plan-1"], agentId: "agent-1", network: "eip155:84532" })

  it("encodes compact JSON in standard padded base64", () => {
    const header = X402.PaymentRequiredHeader.encode(sample)
    assert.match(header, /^[A-Za-z0-9+/]+={0,2}$/)
    assert.strictEqual(header.length % 4, 0)
    const text = decodeText(header)
    assert.strictEqual(text, JSON.stringify(JSON.parse(text)), "compact: no spaces")
    assert.notInclude(text, "null")
    assert.deepStrictEqual(JSON.parse(text), sample)
  })

  it("decodes what the Python reference writes (spaced separators, nulls)", () => {
    const python = "{\"x402Version\": 2, \"resource\": {\"url\": \"\", \"description\": null, \"mimeType\": " +
      "\"application/json\"}, \"accepts\": [{\"scheme\": \"nvm:erc4337\", \"network\": \"eip155:84532\", " +
      "\"planId\": \"plan-1\", \"extra\": {\"version\": \"1\", \"agentId\": null}}], \"extensions\": {}}"
    const decoded = X402.PaymentRequiredHeader.decodeEither(Buffer.from(python).toString("base64"))
    assert.isTrue(Either.isRight(decoded))
    if (Either.isRight(decoded)) {
      assert.strictEqual(decoded.right.accepts[0].planId, "plan-1")
      assert.isUndefined(decoded.right.accepts[0].extra?.agentId)
      assert.isUndefined(decoded.right.resource.description)
    }
  })

  it("decodes the receipts the Python reference writes, nulls for the amounts it did not get", () => {
    const python = "{\"success\": false, \"transactionHash\": \"\", \"network\": \"eip155:84532\", " +
      "\"creditsRedeemed\": null, \"remainingBalance\": null}"
    const decoded = X402.ReceiptHeader.decodeEither(Buffer.from(python).toString("base64"))
    assert.deepStrictEqual(decoded, Either.right({ success: false, transactionHash: "", network: "eip155:84532" }))
    const settle = "{\"success\": true, \"errorReason\": null, \"payer\": \"0xp\", \"transaction\": \"0xt\", " +
      "\"network\": \"eip155:84532\", \"creditsRedeemed\": \"2\", \"remainingBalance\": null, \"orderTx\": null}"
    assert.deepStrictEqual(
      X402.SettleResponseHeader.decodeEither(Buffer.from(settle).toString("base64")),
      Either.right({ success: true, payer: "0xp", transaction: "0xt", network: "eip155:84532", creditsRedeemed: "2" })
    )
    // and we write no nulls
    const header = X402.ReceiptHeader.encode({ success: true, transactionHash: "0xt", network: "n" })
    assert.strictEqual(decodeText(header), "{\"success\":true,\"transactionHash\":\"0xt\",\"network\":\"n\"}")
  })

  it("tells apart non-base64, non-JSON and wrong-shape input", () => {
    const reasonOf = (header: string) =>
      Either.match(X402.PaymentRequiredHeader.decodeEither(header), {
        onLeft: (e) => e.reason,
        onRight: () => "ok"
      })
    assert.strictEqual(reasonOf("not base64!"), "NotBase64")
    assert.strictEqual(reasonOf("abc"), "NotBase64", "unpadded")
    assert.strictEqual(reasonOf(""), "NotBase64")
    assert.strictEqual(reasonOf(Buffer.from("hello").toString("base64")), "NotJson")
    assert.strictEqual(reasonOf(Buffer.from([0xff, 0xfe, 0xfd]).toString("base64")), "NotBase64", "not UTF-8")
    assert.strictEqual(reasonOf(Buffer.from("{\"x402Version\":1}").toString("base64")), "WrongShape")
    assert.strictEqual(reasonOf(Buffer.from("[]").toString("base64")), "WrongShape")
    assert.strictEqual(reasonOf("A".repeat(X402.MAX_HEADER_LENGTH + 4)), "NotBase64", "oversized")
  })

  it.effect("decode is an Effect failing with HeaderDecodeError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(X402.PaymentRequiredHeader.decode("%%%"))
      assert.strictEqual(error._tag, "HeaderDecodeError")
      assert.strictEqual(error.header, "payment-required")
      assert.match(error.message, /payment-required is not base64/)
    }))

  it.prop("round-trips any PaymentRequired", [X402.PaymentRequired], ([pr]) => {
    const decoded = X402.PaymentRequiredHeader.decodeEither(X402.PaymentRequiredHeader.encode(pr))
    // `extensions` holds arbitrary values: compare with what JSON can carry of them
    const viaJson = JSON.parse(JSON.stringify(Schema.encodeSync(X402.PaymentRequired)(pr)))
    assert.deepStrictEqual(decoded, Either.right(Schema.decodeUnknownSync(X402.PaymentRequired)(viaJson)))
  }, { fastCheck: { numRuns: 300 } })

  it.prop("round-trips any receipt", [X402.Receipt], ([receipt]) => {
    const decoded = X402.ReceiptHeader.decodeEither(X402.ReceiptHeader.encode(receipt))
    assert.deepStrictEqual(decoded, Either.right(receipt))
  })

  it.prop(
    "decoding any string never throws: a value or a typed error",
    [fc.oneof(fc.string(), fc.base64String(), fc.string().map((s) => Buffer.from(s).toString("base64")))],
    ([input]) => {
      const result = X402.PaymentRequiredHeader.decodeEither(input)
      if (Either.isLeft(result)) {
        assert.strictEqual(result.left._tag, "HeaderDecodeError")
        assert.include(["NotBase64", "NotJson", "WrongShape"], result.left.reason)
      }
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.prop(
    "decoding base64 of any JSON never throws",
    [fc.json()],
    ([json]) => {
      const result = X402.PaymentRequiredHeader.decodeEither(Buffer.from(json).toString("base64"))
      assert.isTrue(Either.isLeft(result) ? result.left.reason === "WrongShape" : true)
    },
    { fastCheck: { numRuns: 300 } }
  )
})

describe("settlement forms", () => {
  const settlement: X402.SettleResponse = {
    success: true,
    transaction: "0xabc",
    network: "eip155:84532",
    creditsRedeemed: "2",
    remainingBalance: "8"
  }

  it("the AgentCore receipt says transactionHash, _meta.x402 says transaction", () => {
    assert.deepStrictEqual(X402.receiptOf(settlement), {
      success: true,
      transactionHash: "0xabc",
      network: "eip155:84532",
      creditsRedeemed: "2",
      remainingBalance: "8"
    })
    assert.deepStrictEqual(X402.metaOf(settlement), {
      success: true,
      transaction: "0xabc",
      network: "eip155:84532",
      creditsRedeemed: "2",
      remainingBalance: "8"
    })
  })

  it("decodes facilitator answers tolerantly: extra fields ignored, numeric amounts as strings, null as absent", () => {
    const decoded = Schema.decodeUnknownSync(X402.SettleResponse)({
      success: true,
      transaction: "0x1",
      network: "eip155:84532",
      creditsRedeemed: 3,
      remainingBalance: null,
      somethingNew: { nested: true }
    })
    assert.deepStrictEqual(decoded, {
      success: true,
      transaction: "0x1",
      network: "eip155:84532",
      creditsRedeemed: "3"
    })
  })

  // The structs share one property signature per shape (built once at import): each field still
  // decodes and encodes as its own.
  it("a settle answer without transaction or network (or with null) reads them as \"\"; each struct's amounts alike", () => {
    const decode = Schema.decodeUnknownSync(X402.SettleResponse)
    assert.deepStrictEqual(decode({ success: false, transaction: null }), {
      success: false,
      transaction: "",
      network: ""
    })
    assert.deepStrictEqual(decode({ success: true, transaction: "0x2", network: null, remainingBalance: 5 }), {
      success: true,
      transaction: "0x2",
      network: "",
      remainingBalance: "5"
    })
    const amounts = { creditsRedeemed: 2, remainingBalance: null }
    assert.deepStrictEqual(
      Schema.decodeUnknownSync(X402.Receipt)({ success: true, transactionHash: "0x3", network: "n", ...amounts }),
      { success: true, transactionHash: "0x3", network: "n", creditsRedeemed: "2" }
    )
    assert.deepStrictEqual(
      Schema.decodeUnknownSync(X402.MetaX402)({ success: true, transaction: "0x3", network: "n", ...amounts }),
      { success: true, transaction: "0x3", network: "n", creditsRedeemed: "2" }
    )
    const verified = Schema.decodeUnknownSync(X402.VerifyResponse)({ isValid: true, urlMatching: null })
    assert.deepStrictEqual(verified, { isValid: true, urlMatching: null })
  })

  it("refuses an answer missing a required field", () => {
    assert.throws(() => Schema.decodeUnknownSync(X402.VerifyResponse)({ payer: "0x1" }))
    assert.throws(() => Schema.decodeUnknownSync(X402.SettleResponse)({ transaction: "0x1" }))
  })
})
