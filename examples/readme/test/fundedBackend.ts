// The environment the README's Lambda examples run in: FakeNevermined on loopback with a funded
// plan, and `NVM_API_KEY` / `NVM_BACKEND_URL` / `NVM_PLAN_ID` pointing at it for the file's tests
// (restored after them).
import { FakeNevermined } from "@effect-x402/testing"
import { afterAll, beforeAll } from "@effect/vitest"

export const PLAN_ID = "plan-123"

/** Starts the backend before the file's tests and stops it after; `backend()` is the running one. */
export const useFundedBackend = (credits = 10): () => Awaited<ReturnType<typeof FakeNevermined.start>> => {
  const saved = { ...process.env }
  let fake: Awaited<ReturnType<typeof FakeNevermined.start>> | undefined
  beforeAll(async () => {
    fake = await FakeNevermined.start()
    fake.ledger.addPlan({ planId: PLAN_ID })
    fake.ledger.fund(fake.subscriber, PLAN_ID, credits)
    Object.assign(process.env, { NVM_API_KEY: fake.apiKey, NVM_BACKEND_URL: fake.url, NVM_PLAN_ID: PLAN_ID })
  })
  afterAll(async () => {
    process.env = saved
    await fake?.close()
  })
  return () => {
    if (fake === undefined) throw new Error("the funded backend runs only inside the file's tests")
    return fake
  }
}
