// What both load tests send: the fault a scenario puts on FakeNevermined's next verify or settle,
// the token a scenario pays with, and the paid tool call posted through the local gateway.
import { FakeNevermined } from "@effect-x402/testing"

type Fake = FakeNevermined.FakeNevermined.Service

const FAULTS: Readonly<Record<string, (fake: Fake) => void>> = {
  verify503: (fake) => fake.faults.next("verify", FakeNevermined.Fault.status(503)),
  verify500: (fake) => fake.faults.next("verify", FakeNevermined.Fault.status(500)),
  settle500: (fake) => fake.faults.next("settle", FakeNevermined.Fault.status(500)),
  settle400: (fake) => fake.faults.next("settle", FakeNevermined.Fault.status(400, "BCK.X402.0059")),
  settleDroppedApplied: (fake) => fake.faults.next("settle", FakeNevermined.Fault.dropConnection({ applied: true })),
  settleTimeoutApplied: (fake) => fake.faults.next("settle", FakeNevermined.Fault.noAnswer({ applied: true })),
  settleTimeoutNotApplied: (fake) => fake.faults.next("settle", FakeNevermined.Fault.noAnswer({ applied: false }))
}

/** Puts the scenario's fault, if it has one, on the backend's next exchange. */
export const injectFault = (fake: Fake, scenario: string): void => FAULTS[scenario]?.(fake)

/** The token a scenario sends: none, a forged one, or a fresh one for the plan. */
export const tokenFor = (fake: Fake, scenario: string, planId: string): string | undefined =>
  scenario === "noToken"
    ? undefined
    : scenario === "forgedToken"
    ? "nvm_tok_forged.0000000000"
    : fake.ledger.mintToken({ planId, subscriber: fake.subscriber })

/** Posts the load tool's `tools/call` to the gateway, with the token when there is one. */
export const postToolCall = (
  url: string,
  token: string | undefined,
  id: number,
  args: Record<string, unknown>
): Promise<Response> =>
  fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token !== undefined ? { "payment-signature": token } : {})
    },
    body: JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "Load___tool", arguments: args } })
  })
