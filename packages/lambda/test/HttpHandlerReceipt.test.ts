import { X402 } from "@effect-x402/core"
import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck } from "effect"
import { settleResponseHeader } from "../src/internal/receipt.js"

// httpHandler writes its `payment-response` header without the Schema encoder: these pin it to the
// Schema codec's bytes (key order, escapes, optional keys) and to its refusals.
describe("httpHandler's payment-response header", () => {
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
          assert.strictEqual(settleResponseHeader(settlement), X402.SettleResponseHeader.encode(settlement))
        }
      ),
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
