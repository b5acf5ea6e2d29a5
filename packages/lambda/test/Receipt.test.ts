import { X402 } from "@effect-x402/core"
import { AgentCore } from "@effect-x402/lambda"
import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck } from "effect"
import { receiptHeader, settleResponseHeader } from "../src/internal/receipt.js"

// The receipt header is written without the Schema encoder on the hot path: these pin it to the
// Schema codec's bytes (key order, escapes, optional keys) and to its refusals.
const viaSchema = (settlement: X402.SettleResponse) => X402.ReceiptHeader.encode(X402.receiptOf(settlement))

// Any settlement of the wire types, with every optional key present or absent and any text.
const text = FastCheck.string({ unit: "binary" })
const settlements = FastCheck.record({
  success: FastCheck.boolean(),
  transaction: text,
  network: text,
  creditsRedeemed: text,
  remainingBalance: text,
  errorReason: text,
  payer: text,
  orderTx: text
}, { requiredKeys: ["success", "transaction", "network"] })

describe("receipt header", () => {
  it("is the Schema codec's bytes for any settlement of the wire types", () => {
    FastCheck.assert(
      FastCheck.property(
        settlements,
        (settlement) => {
          assert.strictEqual(receiptHeader(settlement), viaSchema(settlement))
        }
      ),
      { numRuns: 500 }
    )
  })

  it("decodes back to the receipt, with quotes, backslashes and non-ASCII kept", () => {
    const settlement: X402.SettleResponse = {
      success: false,
      transaction: "",
      network: "eip155:84532 \"ü\" \\ \u2028",
      creditsRedeemed: "0",
      errorReason: "insufficient_balance"
    }
    const header = receiptHeader(settlement)
    assert.strictEqual(header, viaSchema(settlement))
    assert.deepStrictEqual(Either.getOrThrow(X402.ReceiptHeader.decodeEither(header)), X402.receiptOf(settlement))
  })

  it("refuses what the Schema codec refuses (a settlement off its types at runtime)", () => {
    const broken = {
      success: true,
      transaction: "0x1",
      network: "n",
      creditsRedeemed: 5
    } as unknown as X402.SettleResponse
    assert.throws(() => viaSchema(broken))
    assert.throws(() => receiptHeader(broken))
  })

  it("is the header AgentCore.enrich writes", () => {
    const settlement: X402.SettleResponse = { success: true, transaction: "0xabc", network: "eip155:84532" }
    const answer = AgentCore.enrich({ statusCode: 200, headers: {}, body: null }, settlement)
    assert.strictEqual(answer.headers?.[X402.PAYMENT_RESPONSE_HEADER], viaSchema(settlement))
  })
})

// httpHandler's `payment-response` header (the SettleResponse itself, not the receipt).
describe("httpHandler's payment-response header", () => {
  it("is the Schema codec's bytes for any settlement of the wire types", () => {
    FastCheck.assert(
      FastCheck.property(settlements, (settlement) => {
        assert.strictEqual(settleResponseHeader(settlement), X402.SettleResponseHeader.encode(settlement))
      }),
      { numRuns: 500 }
    )
  })

  it("decodes back to the settlement", () => {
    const settlement: X402.SettleResponse = {
      success: true,
      payer: "0xabc",
      transaction: "0x1",
      network: "eip155:84532 \"ü\" \\ \u2028",
      creditsRedeemed: "2",
      remainingBalance: "8"
    }
    const header = settleResponseHeader(settlement)
    assert.deepStrictEqual(Either.getOrThrow(X402.SettleResponseHeader.decodeEither(header)), settlement)
  })

  it("refuses what the Schema codec refuses (a settlement off its types at runtime)", () => {
    const broken = { success: true, transaction: "0x1", network: "n", payer: 5 } as unknown as X402.SettleResponse
    assert.throws(() => X402.SettleResponseHeader.encode(broken))
    assert.throws(() => settleResponseHeader(broken))
  })
})
