/**
 * The Effect floor over the wire: the hand-written agent's work (`handwritten.ts` `http`: header
 * lookup, PaymentRequired, verify, run, settle, base64 receipt) as the least an Effect program can
 * do it. A `ManagedRuntime` built once over a facilitator service from a Layer, and one generator
 * per request; each backend call is one `fetch` inside one `Effect.async`, aborted when the fiber
 * is interrupted and bounded by a timer (as the hand-written agent bounds it with
 * `AbortSignal.timeout`), its answer read with `response.json()` like the hand-written agent's.
 *
 * Its CPU per call less the hand-written agent's is what Effect's runtime itself costs over the
 * wire (a fiber per request, a resume per backend call and for the handler); ours less the floor's
 * is what the library adds on top (validation, bounds, policies, metrics).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { base64Json, type Config, headerOf, paymentRequiredOf } from "./handwritten.js"

interface VerifyResponse {
  readonly isValid: boolean
  readonly invalidReason?: string | undefined
  readonly agentRequestId?: string | undefined
}
interface SettleResponse {
  readonly success: boolean
}

class WireFloorFacilitator extends Context.Tag("bench/WireFloorFacilitator")<WireFloorFacilitator, {
  readonly verify: (body: object) => Effect.Effect<VerifyResponse>
  readonly settle: (body: object) => Effect.Effect<SettleResponse>
}>() {}

const layerOf = (url: string, apiKey: string) => {
  const headers = {
    accept: "application/json",
    "content-type": "application/json",
    authorization: `Bearer ${apiKey}`,
    "nevermined-version": "1.1"
  }
  const post = <A>(path: string, body: object, millis: number): Effect.Effect<A> =>
    Effect.async<A>((resume) => {
      const controller = new AbortController()
      const timer = setTimeout(() => controller.abort(), millis)
      fetch(url + path, { method: "POST", headers, body: JSON.stringify(body), signal: controller.signal })
        .then(async (response) => {
          if (!response.ok) throw new Error(`backend answered ${response.status}`)
          return await response.json() as A
        })
        .then(
          (answer) => {
            clearTimeout(timer)
            resume(Effect.succeed(answer))
          },
          (cause) => {
            clearTimeout(timer)
            resume(Effect.die(cause))
          }
        )
      return Effect.sync(() => {
        clearTimeout(timer)
        controller.abort()
      })
    })
  return Layer.succeed(WireFloorFacilitator, {
    verify: (body) => post("/api/v1/x402/verify", body, 10_000),
    settle: (body) => post("/api/v1/x402/settle", body, 30_000)
  })
}

interface HttpEventLike {
  readonly headers?: Record<string, string | undefined> | undefined
  readonly rawPath?: string | undefined
  readonly requestContext?: { readonly domainName?: string | undefined; readonly http?: { readonly method?: string } }
}
interface HttpResult {
  readonly statusCode: number
  readonly headers?: Record<string, string>
  readonly body?: string
}

/** The Effect floor as an API Gateway v2 / Function URL handler, against the backend at `url`. */
export const http = (
  config: Config,
  backend: { readonly url: string; readonly apiKey: string },
  handler: (event: unknown) => Promise<HttpResult>
): { readonly handle: (event: unknown) => Promise<unknown>; readonly dispose: () => Promise<void> } => {
  const runtime = ManagedRuntime.make(layerOf(backend.url, backend.apiKey))
  const program = (event: unknown) =>
    Effect.gen(function*() {
      const e = event as HttpEventLike
      const method = e.requestContext?.http?.method ?? "GET"
      const url = `https://${e.requestContext?.domainName ?? ""}${e.rawPath ?? "/"}`
      const paymentRequired = paymentRequiredOf(config, method, url)
      const refuse = (message: string | undefined): HttpResult => ({
        statusCode: 402,
        headers: { "content-type": "application/json", "payment-required": base64Json(paymentRequired) },
        body: JSON.stringify({ error: "Payment Required", message })
      })
      const token = headerOf(e.headers, "payment-signature")
      if (token === undefined) return refuse("Payment required")
      const facilitator = yield* WireFloorFacilitator
      const maxAmount = String(config.credits)
      const verification = yield* facilitator.verify({ paymentRequired, x402AccessToken: token, maxAmount })
      if (!verification.isValid) return refuse(verification.invalidReason)
      const result = yield* Effect.promise(() => handler(event))
      if (result.statusCode >= 400) return result
      const settlement = yield* facilitator.settle({
        paymentRequired,
        x402AccessToken: token,
        maxAmount,
        agentRequestId: verification.agentRequestId
      })
      if (!settlement.success) return refuse("Settlement failed")
      return { ...result, headers: { ...result.headers, "payment-response": base64Json(settlement) } }
    })
  return { handle: (event) => runtime.runPromise(program(event)), dispose: () => runtime.dispose() }
}
