import { Subscriber, X402Client } from "@effect-x402/core"
import { HttpClientRequest } from "@effect/platform"
import { Console, Effect, Option } from "effect"

const PLAN_ID = process.env.NVM_PLAN_ID ?? "plan-123"

// The paying side: needs `Subscriber` (e.g. `Subscriber.layerConfig()`, reading the subscriber's
// NVM_API_KEY) and an `HttpClient` (e.g. `FetchHttpClient.layer`).
export const callAgent = (agentUrl: string) =>
  Effect.gen(function*() {
    const subscriber = yield* Subscriber.Subscriber

    // Step 1: check the balance
    const { balance } = yield* subscriber.balance(PLAN_ID)
    yield* Console.log(`Balance: ${balance} credits`)

    // Step 2: create a delegation once, then reuse its id to mint x402 access tokens
    const { delegationId } = yield* subscriber.createDelegation({
      provider: "erc4337", // "stripe" | "braintree" | "visa" for fiat plans
      spendingLimitCents: 10_000, // $100 budget
      durationSecs: 604_800, // 7 days
      currency: "usdc" // "usd" for fiat plans
    })
    const client = yield* X402Client.make({ planIds: [PLAN_ID], delegationId })

    // Step 3: call the agent; a payment-required answer is paid (token in `payment-signature`) and
    // retried once
    const { receipt, response } = yield* client.execute(
      HttpClientRequest.post(agentUrl).pipe(
        HttpClientRequest.bodyUnsafeJson({
          jsonrpc: "2.0",
          id: "1",
          method: "tools/call",
          params: { name: "getPatient", arguments: { patient_id: "123" } }
        })
      )
    )

    // Step 4: the settlement receipt, decoded from `payment-response`
    if (Option.isSome(receipt)) {
      yield* Console.log(`Credits redeemed: ${receipt.value.creditsRedeemed}`)
      yield* Console.log(`Transaction: ${receipt.value.transactionHash}`)
    }
    return yield* response.json
  })
