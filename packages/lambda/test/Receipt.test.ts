import { X402 } from "@effect-x402/core"
import { AgentCore } from "@effect-x402/lambda"
import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck } from "effect"
import { receiptHeader } from "../src/internal/receipt.js"

// The receipt header is written without the Schema encoder on the hot path: these pin it to the
// Schema codec's bytes (key order, escapes, optional keys) and to its refusals.
const viaSchema = (settlement: X402.SettleResponse) => X402.ReceiptHeader.encode(X402.receiptOf(settlement))

describe("receipt header", () => {
  it("is the Schema codec's bytes for any settlement of the wire types", () => {
    const text = FastCheck.string({ unit: "binary" })
    FastCheck.assert(
      FastCheck.property(
        FastCheck.record({
          success: FastCheck.boolean(),
          transaction: text,
          network: text,
          creditsRedeemed: text,
          remainingBalance: text,
          errorReason: text,
          payer: text,
          orderTx: text
        }, { requiredKeys: ["success", "transaction", "network"] }),
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
