/**
 * An `HttpClient` that pays: when an answer asks for payment, it obtains an access token through the
 * `Subscriber`, retries the request once with `payment-signature`, and exposes the receipt.
 *
 * The paid retry sends the same request again, so its body must be replayable (JSON, text, bytes,
 * form data; not a one-shot stream).
 *
 * A token goes only where it was bought for: minted tokens are kept per origin (scheme, host and port
 * of the request this client sent, never what the server's 402 says) and resource (the request's
 * path), so a server that advertises another agent's plan never receives that agent's token; and
 * the paid retry does not follow redirects, so the token cannot be forwarded to another origin. (A
 * base client wrapped with `HttpClient.followRedirects` re-sends every header, the token included,
 * wherever a redirect points: give the paying client one that does not.)
 *
 * @since 0.1.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Cache from "effect/Cache"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as MutableHashSet from "effect/MutableHashSet"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { FacilitatorError, TOKEN_ALREADY_USED_CODE } from "./PaymentError.js"
import { isSingleUseAccessToken, Subscriber } from "./Subscriber.js"
import * as X402 from "./X402.js"

/**
 * Why a paid call did not go through:
 * - `InvalidPaymentRequired`: the server asked for payment with a header that does not decode;
 * - `NoAcceptablePlan`: none of the server's `accepts` entries is one this client may pay;
 * - `TokenUnavailable`: the subscriber could not mint an access token (cause: the backend failure);
 * - `PaymentRefused`: the server still asked for payment after the paid retry;
 * - `SettlementFailed`: the server answered with a receipt that says `success: false`;
 * - `TokenAlreadyUsed` (since 0.2.0): the receipt says the backend refused a single-use token that
 *   an earlier settle spent (`BCK.X402.0059`). The token is dropped; the call is not retried, since
 *   the server already ran it: the caller decides whether to send it again (with a fresh token);
 * - `InvalidReceipt`: the `payment-response` header of the paid answer does not decode.
 *
 * @since 0.1.0
 * @category errors
 */
export class X402ClientError extends Schema.TaggedError<X402ClientError>("@effect-x402/core/X402ClientError")(
  "X402ClientError",
  {
    reason: Schema.Literal(
      "InvalidPaymentRequired",
      "NoAcceptablePlan",
      "TokenUnavailable",
      "PaymentRefused",
      "SettlementFailed",
      "TokenAlreadyUsed",
      "InvalidReceipt"
    ),
    detail: Schema.String,
    status: Schema.optional(Schema.Number),
    planId: Schema.optional(Schema.String),
    paymentRequired: Schema.optional(X402.PaymentRequired),
    receipt: Schema.optional(X402.Receipt),
    cause: Schema.optional(Schema.Union(FacilitatorError, X402.HeaderDecodeError))
  }
) {
  override get message(): string {
    const plan = this.planId !== undefined ? ` (plan ${this.planId})` : ""
    return `Payment failed: ${this.reason}${plan}: ${this.detail}`
  }
}

/**
 * Options of the paying client.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Plans this client pays with, in order of preference; by default the first payable entry. */
  readonly planIds?: ReadonlyArray<string> | undefined
  /** The delegation that funds the tokens (passed to `Subscriber.accessToken`). */
  readonly delegationId?: string | undefined
  /**
   * Keep a minted token per plan, origin and resource, and reuse it for the same plan at the same
   * origin and path until a server refuses it. Default true. Single-use (v3) tokens are never kept,
   * whatever this says.
   */
  readonly cacheTokens?: boolean | undefined
  /**
   * 3: mint a fresh single-use (v3) token for every paid call, bound to the plan's agent, the
   * resource URL the server advertises and the request's verb, so a token taken from one seller or
   * endpoint is worthless at another. Default: the backend's default (reusable v2, kept per
   * `cacheTokens`). Either way the minted token's own version decides whether it is reused.
   *
   * @since 0.2.0
   */
  readonly tokenVersion?: 2 | 3 | undefined
}

/**
 * An answer with the payment it carried.
 *
 * @since 0.1.0
 * @category models
 */
export interface PaidResponse {
  readonly response: HttpClientResponse.HttpClientResponse
  /** The decoded `payment-response` header, when the answer carried one. */
  readonly receipt: Option.Option<X402.Receipt>
  /** Whether this client paid for the answer. */
  readonly paid: boolean
}

/**
 * @since 0.1.0
 * @category tags
 */
export class X402Client extends Context.Tag("@effect-x402/core/X402Client")<X402Client, X402Client.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace X402Client {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The paying client: use it as any `HttpClient`. */
    readonly client: HttpClient.HttpClient.With<HttpClientError.HttpClientError | X402ClientError>
    /** Executes a request, paying if asked, and returns the answer with its decoded receipt. */
    readonly execute: (
      request: HttpClientRequest.HttpClientRequest
    ) => Effect.Effect<PaidResponse, HttpClientError.HttpClientError | X402ClientError>
  }
}

const SCHEMES: ReadonlySet<string> = new Set(X402.Scheme.literals)

/**
 * Decodes the `payment-response` header of an answer: the AgentCore receipt (`transactionHash`) or
 * the plain-HTTP settle result (`transaction`), both returned as a receipt.
 *
 * @since 0.1.0
 * @category receipts
 */
export const receipt = (
  response: HttpClientResponse.HttpClientResponse
): Either.Either<Option.Option<X402.Receipt>, X402ClientError> => {
  const header = response.headers[X402.PAYMENT_RESPONSE_HEADER]
  if (header === undefined) return Either.right(Option.none())
  const asReceipt = X402.ReceiptHeader.decodeEither(header)
  if (Either.isRight(asReceipt)) return Either.right(Option.some(asReceipt.right))
  const asSettlement = X402.SettleResponseHeader.decodeEither(header)
  if (Either.isRight(asSettlement)) return Either.right(Option.some(X402.receiptOf(asSettlement.right)))
  return Either.left(
    new X402ClientError({
      reason: "InvalidReceipt",
      detail: asReceipt.left.message,
      status: response.status,
      cause: asReceipt.left
    })
  )
}

const ownProperty = (record: unknown, key: string): unknown =>
  typeof record === "object" && record !== null && Object.hasOwn(record, key)
    ? (record as Record<string, unknown>)[key]
    : undefined

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

// The AgentCore convention: status 200, a JSON-RPC result with `isError`, and the header.
const agentCoreResult = (json: unknown): unknown => {
  const result = ownProperty(json, "result")
  return ownProperty(result, "isError") === true ? result : undefined
}

/**
 * The `payment-required` header of an answer that asks for payment: HTTP 402, or the AgentCore form.
 */
const paymentDemand = (
  response: HttpClientResponse.HttpClientResponse
): Effect.Effect<Option.Option<string>> => {
  const header = response.headers[X402.PAYMENT_REQUIRED_HEADER]
  if (header === undefined) return Effect.succeed(Option.none())
  if (response.status === 402) return Effect.succeed(Option.some(header))
  if (response.status !== 200) return Effect.succeed(Option.none())
  return response.text.pipe(
    Effect.map((text) => agentCoreResult(parseJson(text)) !== undefined ? Option.some(header) : Option.none()),
    Effect.orElseSucceed(() => Option.none())
  )
}

// The server's words on a refusal: `message` of the x402 HTTP body, or of the AgentCore error text.
const refusalReason = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<string> =>
  response.text.pipe(
    Effect.map((text) => {
      const json = parseJson(text)
      const direct = ownProperty(json, "message")
      if (typeof direct === "string") return direct
      const content = ownProperty(agentCoreResult(json), "content")
      const first = Array.isArray(content) ? content[0] : undefined
      const inner = parseJson(String(ownProperty(first, "text") ?? ""))
      const message = ownProperty(inner, "message") ?? ownProperty(inner, "error")
      return typeof message === "string" ? message : "payment refused"
    }),
    Effect.orElseSucceed(() => "payment refused"),
    Effect.map((reason) => reason.length > 200 ? `${reason.slice(0, 200)}…` : reason)
  )

// What a token was bought for. `origin` and `resource` come from the request this client sent: a
// server names plans and agents in its 402, but it cannot name an origin other than its own.
class TokenKey extends Data.Class<{
  readonly origin: string
  readonly resource: string
  readonly planId: string
  readonly scheme: X402.Scheme
  readonly network: string
  readonly agentId: string | undefined
}> {}

const DEFAULT_PORTS: Readonly<Record<string, string>> = { "http:": "80", "https:": "443" }

/**
 * The origin (`scheme://host:port`, the port always written, host lower-cased) and resource (the
 * path, without query or fragment) of a request, from its own URL: what a token is bought for.
 * `undefined` when it is not an absolute http(s) URL.
 *
 * @since 0.2.0
 * @category tokens
 */
export const targetOf = (
  request: HttpClientRequest.HttpClientRequest
): { readonly origin: string; readonly resource: string } | undefined => {
  let url: URL
  try {
    url = new URL(request.url)
  } catch {
    return undefined
  }
  const port = url.port !== "" ? url.port : DEFAULT_PORTS[url.protocol]
  if (port === undefined || url.hostname === "") return undefined
  return { origin: `${url.protocol}//${url.hostname}:${port}`, resource: url.pathname }
}

// A redirect of the paid retry would carry `payment-signature` to wherever it points (fetch drops
// only `Authorization` across origins): the paid retry takes the answer as it is. The Node and
// undici clients never follow redirects; the fetch client is told not to.
const withoutRedirects = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(
    Effect.serviceOption(FetchHttpClient.RequestInit),
    (init) =>
      Effect.provideService(effect, FetchHttpClient.RequestInit, {
        ...Option.getOrElse(init, () => ({})),
        redirect: "manual"
      })
  )

/**
 * Makes the paying client over the `HttpClient` and `Subscriber` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<X402Client.Service, never, HttpClient.HttpClient | Subscriber> =>
  Effect.gen(function*() {
    const base = yield* HttpClient.HttpClient
    const subscriber = yield* Subscriber
    const cacheTokens = options.cacheTokens ?? true
    const paidResponses = new WeakSet<HttpClientResponse.HttpClientResponse>()

    const mint = (key: TokenKey) =>
      subscriber.accessToken({
        planId: key.planId,
        scheme: key.scheme,
        network: key.network,
        agentId: key.agentId,
        delegationId: options.delegationId
      })
    // A v3 token is minted per call, bound to what the server advertises for this very request.
    const mintBound = (key: TokenKey, binding: { readonly resource: string; readonly httpVerb: string }) =>
      subscriber.accessToken({
        planId: key.planId,
        scheme: key.scheme,
        network: key.network,
        agentId: key.agentId,
        delegationId: options.delegationId,
        tokenVersion: 3,
        resource: binding.resource,
        httpVerb: binding.httpVerb
      })
    // The cache also dedupes concurrent mints for one plan; a failure is dropped right away.
    const tokens = yield* Cache.make({ capacity: 256, lookup: mint, timeToLive: Duration.infinity })
    // Keys whose backend mints single-use tokens (it may without being asked): minted per call.
    const singleUseKeys = MutableHashSet.empty<TokenKey>()
    // Single-use tokens already handed to a call: concurrent callers may get the same one from the
    // cache's deduped lookup, and only the first may spend it.
    const claimed = new WeakSet<Redacted.Redacted<string>>()
    const claim = (key: TokenKey, token: Redacted.Redacted<string>) =>
      Effect.suspend(() => {
        if (!isSingleUseAccessToken(token)) return Effect.succeed(token)
        MutableHashSet.add(singleUseKeys, key)
        const firstClaim = !claimed.has(token)
        claimed.add(token)
        return Effect.zipRight(tokens.invalidate(key), firstClaim ? Effect.succeed(token) : mint(key))
      })
    const tokenFor = (key: TokenKey) =>
      !cacheTokens || MutableHashSet.has(singleUseKeys, key)
        ? mint(key)
        : Effect.flatMap(Effect.tapError(tokens.get(key), () => tokens.invalidate(key)), (token) => claim(key, token))
    const forget = (key: TokenKey) => cacheTokens ? tokens.invalidate(key) : Effect.void

    // What a v3 token is bound to: the resource URL exactly as the server advertises it (the backend
    // compares it with that), but never one on another origin than the request's own: a server that
    // names another seller's endpoint would get a token good there.
    const bindingOf = (
      paymentRequired: X402.PaymentRequired,
      accepted: X402.Accepted,
      request: HttpClientRequest.HttpClientRequest,
      target: { readonly origin: string }
    ): { readonly resource: string; readonly httpVerb: string } | undefined => {
      const resource = paymentRequired.resource.url
      let absolute: URL | undefined
      try {
        absolute = new URL(resource)
      } catch {
        absolute = undefined
      }
      if (absolute !== undefined) {
        const port = absolute.port !== "" ? absolute.port : DEFAULT_PORTS[absolute.protocol]
        if (`${absolute.protocol}//${absolute.hostname}:${port}` !== target.origin) return undefined
      }
      return { resource, httpVerb: accepted.extra?.httpVerb ?? request.method }
    }

    const select = (paymentRequired: X402.PaymentRequired): X402.Accepted | undefined => {
      const payable = paymentRequired.accepts.filter((a) => SCHEMES.has(a.scheme))
      if (options.planIds === undefined || options.planIds.length === 0) return payable[0]
      for (const planId of options.planIds) {
        const found = payable.find((a) => a.planId === planId)
        if (found !== undefined) return found
      }
      return undefined
    }

    // The token travels in a header: keep it out of the spans the platform client records.
    const withTokenRedacted = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.flatMap(
        FiberRef.get(Headers.currentRedactedNames),
        (names) => Effect.locally(effect, Headers.currentRedactedNames, [...names, X402.PAYMENT_SIGNATURE_HEADER])
      )

    const pay = Effect.fn("X402Client.pay")(function*(
      request: HttpClientRequest.HttpClientRequest,
      response: HttpClientResponse.HttpClientResponse,
      header: string
    ) {
      const paymentRequired = yield* X402.PaymentRequiredHeader.decode(header).pipe(
        Effect.mapError((cause) =>
          new X402ClientError({
            reason: "InvalidPaymentRequired",
            detail: cause.message,
            status: response.status,
            cause
          })
        )
      )
      const accepted = select(paymentRequired)
      if (accepted === undefined) {
        return yield* new X402ClientError({
          reason: "NoAcceptablePlan",
          detail: `offered ${paymentRequired.accepts.map((a) => `${a.planId} (${a.scheme})`).join(", ")}`,
          status: response.status,
          paymentRequired
        })
      }
      const planId = accepted.planId
      yield* Effect.annotateCurrentSpan({ planId, scheme: accepted.scheme, url: request.url })
      // Drain the unpaid answer so its connection is free for the paid retry.
      yield* Effect.ignore(response.text)
      // The request as the base client sent it (after its own preprocessing, e.g. a base URL).
      const target = targetOf(response.request) ?? targetOf(request)
      if (target === undefined) {
        return yield* new X402ClientError({
          reason: "NoAcceptablePlan",
          detail: "the request has no http(s) origin to bind a token to",
          status: response.status,
          paymentRequired
        })
      }
      const key = new TokenKey({
        origin: target.origin,
        resource: target.resource,
        planId,
        scheme: accepted.scheme as X402.Scheme,
        network: accepted.network,
        agentId: accepted.extra?.agentId
      })
      let mintToken = tokenFor(key)
      if (options.tokenVersion === 3) {
        const binding = bindingOf(paymentRequired, accepted, response.request, target)
        if (binding === undefined) {
          return yield* new X402ClientError({
            reason: "NoAcceptablePlan",
            detail: "the server advertises a resource on another origin: a token bound to it is not minted",
            status: response.status,
            planId,
            paymentRequired
          })
        }
        mintToken = mintBound(key, binding)
      }
      const token = yield* mintToken.pipe(
        Effect.mapError((cause) =>
          new X402ClientError({ reason: "TokenUnavailable", detail: cause.message, planId, paymentRequired, cause })
        )
      )
      const paid = yield* withTokenRedacted(
        withoutRedirects(
          base.execute(HttpClientRequest.setHeader(request, X402.PAYMENT_SIGNATURE_HEADER, Redacted.value(token)))
        )
      )
      const decoded = receipt(paid)
      if (Either.isLeft(decoded)) return yield* Effect.fail(decoded.left)
      const refused = (reason: "SettlementFailed" | "PaymentRefused" | "TokenAlreadyUsed", detail: string) =>
        forget(key).pipe(
          Effect.zipRight(Effect.annotateCurrentSpan("outcome", reason)),
          Effect.zipRight(
            new X402ClientError({
              reason,
              detail,
              status: paid.status,
              planId,
              paymentRequired,
              ...(Option.isSome(decoded.right) ? { receipt: decoded.right.value } : {})
            })
          )
        )
      if (Option.isSome(decoded.right) && !decoded.right.value.success) {
        if (decoded.right.value.errorReason === TOKEN_ALREADY_USED_CODE) {
          return yield* refused(
            "TokenAlreadyUsed",
            `the single-use access token was already spent (${TOKEN_ALREADY_USED_CODE}); a fresh one is minted next time`
          )
        }
        return yield* refused("SettlementFailed", decoded.right.value.errorReason ?? "settlement failed")
      }
      if (Option.isSome(yield* paymentDemand(paid))) {
        return yield* refused("PaymentRefused", yield* refusalReason(paid))
      }
      yield* Effect.annotateCurrentSpan("outcome", "paid")
      paidResponses.add(paid)
      return paid
    })

    // `makeWith` rather than `transform`: both attempts go through `base.execute`, so the base
    // client's own request preprocessing runs exactly once per attempt.
    const client: HttpClient.HttpClient.With<HttpClientError.HttpClientError | X402ClientError> = HttpClient.makeWith(
      (requestEffect: Effect.Effect<HttpClientRequest.HttpClientRequest>) =>
        Effect.flatMap(requestEffect, (request) =>
          Effect.flatMap(base.execute(request), (response) =>
            Effect.flatMap(paymentDemand(response), (demand) =>
              Option.match(demand, {
                onNone: () =>
                  Effect.succeed(response),
                onSome: (header) =>
                  pay(request, response, header)
              })))),
      (request) =>
        Effect.succeed(request)
    )

    const execute = (request: HttpClientRequest.HttpClientRequest) =>
      Effect.flatMap(client.execute(request), (response) =>
        Either.match(receipt(response), {
          onLeft: Effect.fail,
          onRight: (decoded) =>
            Effect.succeed<PaidResponse>({ response, receipt: decoded, paid: paidResponses.has(response) })
        }))

    return X402Client.of({ client, execute })
  })

/**
 * The paying client as a layer, over the `HttpClient` and `Subscriber` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<X402Client, never, HttpClient.HttpClient | Subscriber> =>
  Layer.effect(X402Client, make(options))

/**
 * Executes a request with the `X402Client` in context, paying if asked.
 *
 * @since 0.1.0
 * @category accessors
 */
export const execute = (
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<PaidResponse, HttpClientError.HttpClientError | X402ClientError, X402Client> =>
  Effect.flatMap(X402Client, (service) => service.execute(request))
