import { PaymentError, X402 } from "@effect-x402/core"
import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"

const paymentRequired = X402.paymentRequired({ planIds: ["plan-1"], network: "eip155:84532" })

// `VerifyFailed` and `SettleFailed` share one `cause` property signature (built once at import):
// through their schemas, each still carries either cause, and the union of failures reads them back.
describe("PaymentError schemas", () => {
  it("VerifyFailed and SettleFailed round-trip with a FacilitatorError or an InvalidCredits cause", () => {
    const facilitator = new PaymentError.FacilitatorError({ operation: "settle", kind: "Timeout", requestSent: true })
    const credits = new PaymentError.InvalidCredits({ reason: "Negative", source: "policy", detail: "-1" })
    const failures = [
      new PaymentError.VerifyFailed({ reason: "Unavailable", paymentRequired, cause: facilitator }),
      new PaymentError.VerifyFailed({ reason: "InvalidAmount", paymentRequired, cause: credits }),
      new PaymentError.SettleFailed({ reason: "Indeterminate", paymentRequired, credits: 2, cause: facilitator }),
      new PaymentError.SettleFailed({ reason: "InvalidAmount", paymentRequired, credits: 1, cause: credits })
    ]
    const encode = Schema.encodeSync(PaymentError.PaymentFailure)
    const decode = Schema.decodeUnknownSync(PaymentError.PaymentFailure)
    for (const failure of failures) {
      const back = decode(JSON.parse(JSON.stringify(encode(failure))))
      assert.strictEqual(back._tag, failure._tag)
      assert.strictEqual(back.message, failure.message)
      const cause = (back as PaymentError.VerifyFailed | PaymentError.SettleFailed).cause
      assert.strictEqual(cause?._tag, failure.cause?._tag)
      assert.isTrue(
        failure.cause instanceof PaymentError.FacilitatorError
          ? cause instanceof PaymentError.FacilitatorError
          : cause instanceof PaymentError.InvalidCredits
      )
    }
  })

  it("refuses a cause that is neither a FacilitatorError nor an InvalidCredits", () => {
    const encoded = Schema.encodeSync(PaymentError.VerifyFailed)(
      new PaymentError.VerifyFailed({ reason: "Invalid", paymentRequired })
    )
    assert.throws(() =>
      Schema.decodeUnknownSync(PaymentError.VerifyFailed)({ ...encoded, cause: { _tag: "Other", detail: "x" } })
    )
  })
})
