/**
 * A drop-in `fetch` that pays: `X402Client` underneath, the Fetch API on top, like `@x402/fetch`'s
 * `wrapFetchWithPayment`. Hand it to anything that takes a `fetch` (the MCP TypeScript SDK's
 * `StreamableHTTPClientTransport`, OpenAPI clients, plain code) and x402-protected answers are paid
 * for on the way.
 *
 * @since 0.2.0
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import { X402Client } from "./X402Client.js"

/**
 * The Fetch API's `fetch`, paying when asked. It rejects with the `X402ClientError` when a payment
 * cannot be made or is refused (e.g. `NoAcceptablePlan`, `PaymentRefused`), and with the transport
 * error when the server cannot be reached. The receipt is the answer's `payment-response` header.
 *
 * @since 0.2.0
 * @category models
 */
export type PayingFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

// Statuses whose answers have no body (the Response constructor refuses one).
const NULL_BODY = new Set([101, 204, 205, 304])

/** The request as the platform client sends it; its body read once, so a paid retry can resend it. */
const toClientRequest = async (request: Request): Promise<HttpClientRequest.HttpClientRequest> => {
  const headers: Record<string, string> = {}
  request.headers.forEach((value, name) => {
    headers[name] = value
  })
  const base = HttpClientRequest.make(request.method as HttpClientRequest.HttpClientRequest["method"])(request.url, {
    headers
  })
  if (request.body === null) return base
  const bytes = new Uint8Array(await request.arrayBuffer())
  return HttpClientRequest.bodyUint8Array(base, bytes, request.headers.get("content-type") ?? undefined)
}

const toWebResponse = (
  response: HttpClientResponse.HttpClientResponse,
  method: string
): Response => {
  const headers = new Headers()
  for (const [name, value] of Object.entries(response.headers)) headers.set(name, value)
  const body = method === "HEAD" || NULL_BODY.has(response.status)
    ? null
    : Stream.toReadableStream(response.stream as Stream.Stream<Uint8Array>)
  return new Response(body, { status: response.status, headers })
}

/**
 * A paying `fetch` over the `X402Client` in context.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: Effect.Effect<PayingFetch, never, X402Client> = Effect.map(
  Effect.runtime<X402Client>(),
  (runtime) => {
    const run = Runtime.runPromiseExit(runtime)
    return async (input, init) => {
      const request = new Request(input, init)
      const clientRequest = await toClientRequest(request)
      const exit = await run(
        Effect.flatMap(X402Client, (client) => client.execute(clientRequest)),
        { signal: request.signal }
      )
      // Rejects with the typed error itself (not a FiberFailure around it), as fetch rejects with
      // its own errors.
      if (Exit.isFailure(exit)) throw Cause.squash(exit.cause)
      return toWebResponse(exit.value.response, request.method)
    }
  }
)

/**
 * A paying `fetch` with its own runtime, built from a layer that provides `X402Client` (e.g.
 * `X402Client.layer()` over `Subscriber.layerConfig()` and `FetchHttpClient.layer`); the runtime is
 * built on the first call. `dispose` releases it.
 *
 * @example
 * ```ts
 * import { Subscriber, X402Client, X402Fetch } from "@effect-x402/core"
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 *
 * const payingFetch = X402Fetch.fromLayer(
 *   X402Client.layer().pipe(Layer.provide(Subscriber.layerConfig()), Layer.provide(FetchHttpClient.layer))
 * )
 * const answer = await payingFetch("https://agent.example.com/weather")
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromLayer = <E>(
  layer: Layer.Layer<X402Client, E>
): PayingFetch & { readonly dispose: () => Promise<void> } => {
  const runtime = ManagedRuntime.make(layer)
  let payingFetch: Promise<PayingFetch> | undefined
  const fetchOf = () => payingFetch ??= runtime.runPromise(make)
  return Object.assign(
    async (input: string | URL | Request, init?: RequestInit) => (await fetchOf())(input, init),
    { dispose: () => runtime.dispose() }
  )
}
