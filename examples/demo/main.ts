/**
 * The x402 story on the in-memory facilitator: a call without payment gets a 402, a call with a
 * token is verified, the work runs, the credits are settled and a receipt comes back.
 *
 * Run: `pnpm demo` (add `--json` for one JSON object per step). Exits non-zero if a step misbehaves.
 */
import { Paywall, X402 } from "@effect-x402/core"
import { TestFacilitator } from "@effect-x402/testing"
import { Effect, Either } from "effect"

const json = process.argv.includes("--json")
const say = (step: string, text: string, data: Record<string, unknown> = {}) =>
  Effect.sync(() => console.log(json ? JSON.stringify({ step, ...data }) : `${step.padEnd(10)} ${text}`))

const check = (ok: boolean, what: string) => ok ? Effect.void : Effect.dieMessage(`demo step misbehaved: ${what}`)

const { ledger, subscriber, token } = TestFacilitator.seeded({ planId: "plan-weather", agentId: "agent-1", credits: 3 })

const paywall = Paywall.make({
  planId: "plan-weather",
  agentId: "agent-1",
  credits: 1,
  endpoint: "https://agent.example/mcp"
})

const forecast = (city: string) => Effect.succeed({ content: [{ type: "text", text: `Sunny in ${city}` }] })

const program = Effect.gen(function*() {
  // 1. no payment: 402 with a payment-required header
  const unpaid = yield* Effect.flip(Paywall.verify(paywall, { request: {}, token: undefined }))
  const header = X402.PaymentRequiredHeader.encode(unpaid.paymentRequired)
  const decoded = yield* X402.PaymentRequiredHeader.decode(header)
  yield* say("402", `${unpaid.message}; accepts plan ${decoded.accepts[0].planId} on ${decoded.accepts[0].network}`, {
    paymentRequired: decoded
  })
  yield* check(unpaid._tag === "PaymentRequired" && ledger.calls.length === 0, "402 without a facilitator call")

  // 2. with a token: verify → work → settle
  const before = ledger.balance(subscriber, "plan-weather")
  const outcome = yield* Paywall.protect(
    paywall,
    { request: {}, token },
    (verified) =>
      say("verify", `valid; payer ${verified.verification.payer}, request ${verified.agentRequestId}`).pipe(
        Effect.zipRight(forecast("Lisbon")),
        Effect.tap((result) => say("work", result.content[0].text))
      )
  )
  yield* check(outcome._tag === "Settled", "paid call settled")
  if (outcome._tag !== "Settled") return
  const receipt = X402.receiptOf(outcome.settlement)
  const receiptHeader = X402.ReceiptHeader.encode(receipt)
  yield* say("settle", `burned ${outcome.settlement.creditsRedeemed} credit(s), tx ${outcome.settlement.transaction}`, {
    settlement: outcome.settlement
  })
  yield* say("receipt", `payment-response: ${receiptHeader}`, { receipt })
  const after = ledger.balance(subscriber, "plan-weather")
  yield* say("balance", `${before} → ${after}`, { before, after })
  yield* check(after === before - 1, "one credit burned")

  // 3. a forged token is refused, and nothing is charged
  const forged = yield* Effect.either(
    Paywall.protect(paywall, { request: {}, token: "forged" }, () => forecast("Oslo"))
  )
  yield* say("refused", Either.isLeft(forged) ? forged.left.message : "unexpectedly accepted")
  yield* check(Either.isLeft(forged) && ledger.balance(subscriber, "plan-weather") === after, "forged token refused")
})

Effect.runPromise(program.pipe(Effect.provide(TestFacilitator.layer(ledger)))).catch((error) => {
  console.error(String(error))
  process.exitCode = 1
})
