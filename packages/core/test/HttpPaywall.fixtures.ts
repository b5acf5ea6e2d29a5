import { Facilitator, Nevermined, Subscriber, X402, X402Client } from "@effect-x402/core"
import type { FakeNevermined } from "@effect-x402/testing"
import { FetchHttpClient, HttpClient, HttpClientRequest, type HttpClientResponse, HttpServer } from "@effect/platform"
import { Headers } from "@effect/platform"
import type { HttpApp, HttpRouter, HttpServerRequest } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Either, Layer, type Scope } from "effect"
import { createServer } from "node:http"

/** Serves an app on an ephemeral port of 127.0.0.1 for the scope; returns its base URL. */
export const serve = <E, R>(
  app: HttpApp.Default<E, R>
): Effect.Effect<string, never, Scope.Scope | Exclude<R, HttpServerRequest.HttpServerRequest | Scope.Scope>> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })).pipe(
      Effect.orDie
    )
    yield* HttpServer.serveEffect(app).pipe(Effect.provide(context))
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.die("expected a TCP address")
    return `http://127.0.0.1:${address.port}`
  }) as Effect.Effect<string, never, Scope.Scope | Exclude<R, HttpServerRequest.HttpServerRequest | Scope.Scope>>

/** Serves a layer that needs an `HttpServer` (e.g. `HttpApiBuilder.serve()`) on 127.0.0.1; returns its base URL. */
export const serveLayer = <E, R>(
  layer: Layer.Layer<never, E, R>
): Effect.Effect<string, E, Scope.Scope | Exclude<R, HttpServer.HttpServer | HttpRouter.HttpRouter.DefaultServices>> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      layer.pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })))
    ).pipe(Effect.catchTag("ServeError", Effect.die))
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.die("expected a TCP address")
    return `http://127.0.0.1:${address.port}`
  }) as Effect.Effect<
    string,
    E,
    Scope.Scope | Exclude<R, HttpServer.HttpServer | HttpRouter.HttpRouter.DefaultServices>
  >

/** What a user checks on an answer. */
export interface Seen {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly text: string
  readonly json: unknown
  readonly paymentRequired: X402.PaymentRequired | undefined
  readonly paymentResponse: X402.SettleResponse | undefined
}

export const see = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<Seen> =>
  Effect.gen(function*() {
    const text = yield* Effect.orDie(response.text)
    let json: unknown = undefined
    try {
      json = JSON.parse(text)
    } catch {
      // not JSON
    }
    const required = response.headers[X402.PAYMENT_REQUIRED_HEADER]
    const receipt = response.headers[X402.PAYMENT_RESPONSE_HEADER]
    return {
      status: response.status,
      headers: response.headers,
      text,
      json,
      paymentRequired: required === undefined
        ? undefined
        : Either.getOrThrow(X402.PaymentRequiredHeader.decodeEither(required)),
      paymentResponse: receipt === undefined
        ? undefined
        : Either.getOrThrow(X402.SettleResponseHeader.decodeEither(receipt))
    }
  })

/** POSTs to a URL with plain fetch (no paying client), optionally with a token and a JSON body. */
export const post = (
  url: string,
  options: { readonly token?: string; readonly headers?: Record<string, string>; readonly body?: unknown } = {}
): Effect.Effect<Seen> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    let request = HttpClientRequest.post(url).pipe(HttpClientRequest.setHeaders(options.headers ?? {}))
    if (options.token !== undefined) request = HttpClientRequest.setHeader(request, "payment-signature", options.token)
    if (options.body !== undefined) request = HttpClientRequest.bodyUnsafeJson(request, options.body)
    // like X402Client, keep the token out of the client's own span
    return yield* see(yield* Effect.orDie(client.execute(request)))
  }).pipe(
    Effect.scoped,
    Effect.provide(FetchHttpClient.layer),
    Effect.locally(Headers.currentRedactedNames, ["payment-signature", "x-payment"])
  )

/** The live Nevermined facilitator pointed at a fake backend, over fetch, as a layer. */
export const liveFacilitator = (
  fake: FakeNevermined.FakeNevermined.Service
): Effect.Effect<Layer.Layer<Facilitator.Facilitator>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const http = yield* Layer.build(FetchHttpClient.layer)
    const live = yield* Nevermined.make({ apiKey: fake.apiKey, backendUrl: fake.url }).pipe(
      Effect.provide(http),
      Effect.orDie
    )
    return Layer.succeed(Facilitator.Facilitator, live)
  })

/** The fake's subscriber, as the paying side sees it: its live `Subscriber`, over fetch. */
export const liveSubscriber = (
  fake: FakeNevermined.FakeNevermined.Service
): Effect.Effect<Subscriber.Subscriber.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const http = yield* Layer.build(FetchHttpClient.layer)
    return yield* Subscriber.make({ apiKey: fake.subscriberApiKey, backendUrl: fake.url }).pipe(
      Effect.provide(http),
      Effect.orDie
    )
  })

/** The paying HTTP client of the fake's subscriber. */
export const payingClient = (
  fake: FakeNevermined.FakeNevermined.Service,
  options: X402Client.Options = {}
): Effect.Effect<X402Client.X402Client.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const subscriber = yield* liveSubscriber(fake)
    const http = yield* Layer.build(FetchHttpClient.layer)
    return yield* X402Client.make(options).pipe(
      Effect.provideService(Subscriber.Subscriber, subscriber),
      Effect.provide(http)
    )
  })
