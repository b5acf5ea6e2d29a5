/**
 * The wire section's agents in one process, over a stub `fetch`: each backend call answers at once
 * with a real `Response` (the usual verify / settle / plan bodies, a declared length), so an A/B of
 * the agents' own JavaScript (`npx tsx bench/src/ab.ts wireOurs|wireFloor|wireHand`) is not drowned
 * by the network stack and the scheduling of four processes on two cores. What it leaves out (sockets,
 * undici's connection work) is the same for every agent; section 3 measures the whole.
 */
import { SETTLED, VERIFIED } from "./fixtures.js"
import * as Wire from "./wire.js"

const BACKEND = { url: "http://backend.invalid", apiKey: "sandbox:eyJhbGciOiJub25lIn0.eyJzdWIiOiIweDEifQ.c2ln" }
const TOKEN = "nvm_tok_00000001.stubstubst"

const answer = (body: string): Response =>
  new Response(body, {
    status: 200,
    headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) }
  })

const VERIFY_BODY = JSON.stringify(VERIFIED)
const SETTLE_BODY = JSON.stringify(SETTLED)
const PLAN_BODY = JSON.stringify({ metadata: { plan: { fiatPaymentProvider: null } } })

/** Replaces the global `fetch` with one that answers the backend's three routes at once. */
const installStubFetch = (): void => {
  globalThis.fetch = (async (input: string | URL | Request) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url
    if (url.endsWith("/verify")) return answer(VERIFY_BODY)
    if (url.endsWith("/settle")) return answer(SETTLE_BODY)
    return answer(PLAN_BODY)
  }) as typeof globalThis.fetch
}

/** One paid call of the agent `kind`, as its HTTP server would make it. */
export const candidate = (kind: "ours" | "floor" | "handwritten"): () => Promise<unknown> => {
  installStubFetch()
  const { handler } = Wire.agentHandler(kind, BACKEND)
  const event = Wire.httpEvent("POST", "/agent", {
    host: "127.0.0.1",
    "content-type": "application/json",
    "payment-signature": TOKEN
  }, "{\"question\":\"life\"}")
  return async () => {
    const result = await handler(event) as { readonly statusCode: number; readonly headers?: Record<string, string> }
    if (result.statusCode !== 200 || result.headers?.["payment-response"] === undefined) {
      throw new Error(`bench: ${kind} did not answer a paid call (${result.statusCode})`)
    }
    return result
  }
}
