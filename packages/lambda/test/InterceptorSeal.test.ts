// The request seal the interceptor's REQUEST phase issues beside `x-nvm-agent-request-id`
// (docs/protocol.md §7): its bytes are pinned (instances of another version must check each other's
// seals during a rolling deploy), and the sealer that remembers the seals it issued answers exactly
// as the HMAC does, so remembering never lets a forged or transplanted seal through.
import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as Crypto from "node:crypto"
import * as RequestSeal from "../src/internal/requestSeal.js"

const KEY = Buffer.from("a seal key shared by every instance", "utf8")

// The seal as every released version computes it.
const reference = (key: Buffer, requestId: string, payer: string) =>
  Crypto.createHmac("sha256", key).update(requestId).update("\n").update(payer).digest("base64url")

const id = fc.string({ minLength: 1, maxLength: 40 })
const payer = fc.stringMatching(/^tok_[0-9a-f]{8}$/)

describe("interceptor: request seal", () => {
  it("is the HMAC-SHA256 of id and payer, byte for byte", () => {
    fc.assert(fc.property(id, payer, (requestId, who) => {
      assert.strictEqual(RequestSeal.seal(KEY, requestId, who), reference(KEY, requestId, who))
      assert.strictEqual(RequestSeal.makeSealer(KEY).seal(requestId, who), reference(KEY, requestId, who))
    }))
  })

  it("a sealer checks exactly as the HMAC does, for the seals it issued and any other", () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(id, payer), { minLength: 1, maxLength: 20 }),
      id,
      payer,
      fc.string({ maxLength: 50 }),
      (issued, otherId, otherPayer, forged) => {
        const sealer = RequestSeal.makeSealer(KEY, 4)
        const seals = issued.map(([requestId, who]) => sealer.seal(requestId, who))
        issued.forEach(([requestId, who], i) => {
          // Its own seal, however old (past the two generations it remembers).
          assert.isTrue(sealer.checks(requestId, who, seals[i]))
          // Moved to another payer or another id, or forged: refused, as the HMAC refuses it.
          for (
            const [checkedId, checkedPayer, value] of [
              [requestId, otherPayer, seals[i]],
              [otherId, who, seals[i]],
              [requestId, who, forged]
            ] as const
          ) {
            assert.strictEqual(
              sealer.checks(checkedId, checkedPayer, value),
              RequestSeal.checks(KEY, checkedId, checkedPayer, value)
            )
          }
        })
      }
    ))
  })

  it("a seal made under another key never checks, remembered or not", () => {
    const sealer = RequestSeal.makeSealer(KEY)
    const value = sealer.seal("areq_1", "tok_0000abcd")
    assert.isFalse(RequestSeal.makeSealer(Buffer.from("another key", "utf8")).checks("areq_1", "tok_0000abcd", value))
    const foreign = RequestSeal.seal(Buffer.from("another key", "utf8"), "areq_2", "tok_0000abcd")
    assert.isFalse(sealer.checks("areq_2", "tok_0000abcd", foreign))
  })
})
