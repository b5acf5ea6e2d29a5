/**
 * A wire-compatible Nevermined backend served over real HTTP on loopback, backed by a
 * `TestFacilitator` ledger, with per-route fault injection and a record of every request.
 *
 * @since 0.1.0
 */
import * as X402 from "@effect-x402/core/X402"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import { startScoped } from "./internal/startScoped.js"
import { Ledger, TOKEN_ALREADY_USED } from "./TestFacilitator.js"

/**
 * The routes of the backend.
 *
 * @since 0.1.0
 * @category models
 */
export type Route =
  | "verify"
  | "settle"
  | "permissions"
  | "delegationCreate"
  | "delegationList"
  | "balance"
  | "plan"

/**
 * A fault a route plays instead of (or on top of) its normal answer:
 * - `Latency`: wait, then answer normally;
 * - `Status`: answer this status with a backend-style error body;
 * - `RateLimited`: answer 429 with `Retry-After` (seconds);
 * - `MalformedJson`: answer 200 with a body that is not JSON;
 * - `WrongShape`: answer 200 with JSON of the wrong shape;
 * - `DropConnection`: destroy the socket without answering;
 * - `NoAnswer`: keep the connection open and never answer.
 *
 * With `applied`, `DropConnection` and `NoAnswer` first perform the operation (a settle burns the
 * credits), so the caller cannot know whether it happened.
 *
 * @since 0.1.0
 * @category faults
 */
export type Fault =
  | { readonly _tag: "Latency"; readonly delay: Duration.DurationInput }
  | { readonly _tag: "Status"; readonly status: number; readonly code?: string; readonly message?: string }
  | { readonly _tag: "RateLimited"; readonly retryAfter: number }
  | { readonly _tag: "MalformedJson" }
  | { readonly _tag: "WrongShape"; readonly body?: unknown }
  | { readonly _tag: "DropConnection"; readonly applied?: boolean }
  | { readonly _tag: "NoAnswer"; readonly applied?: boolean }

/**
 * Constructors of faults.
 *
 * @since 0.1.0
 * @category faults
 */
export const Fault = {
  latency: (delay: Duration.DurationInput): Fault => ({ _tag: "Latency", delay }),
  status: (status: number, code?: string, message?: string): Fault => ({
    _tag: "Status",
    status,
    ...(code !== undefined ? { code } : {}),
    ...(message !== undefined ? { message } : {})
  }),
  rateLimited: (retryAfterSeconds: number): Fault => ({ _tag: "RateLimited", retryAfter: retryAfterSeconds }),
  malformedJson: { _tag: "MalformedJson" } as Fault,
  wrongShape: (body?: unknown): Fault => ({ _tag: "WrongShape", ...(body !== undefined ? { body } : {}) }),
  dropConnection: (options: { readonly applied?: boolean } = {}): Fault => ({ _tag: "DropConnection", ...options }),
  noAnswer: (options: { readonly applied?: boolean } = {}): Fault => ({ _tag: "NoAnswer", ...options })
} as const

/**
 * The fault script of a server: queued faults are played first, one per request; a standing
 * fault answers every request of its route until cleared.
 *
 * @since 0.1.0
 * @category faults
 */
export interface Faults {
  /** Queues faults: the next requests of the route play them, in order. */
  readonly next: (route: Route, ...faults: ReadonlyArray<Fault>) => void
  /** Sets (or with `undefined` removes) the standing fault of a route. */
  readonly always: (route: Route, fault: Fault | undefined) => void
  /** Clears the faults of a route, or of every route. */
  readonly clear: (route?: Route) => void
}

/**
 * A request the server received, as it arrived (headers lower-cased). It holds credentials: keep it
 * in test assertions, never print it.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordedRequest {
  readonly route: Route | "unknown"
  readonly method: string
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/**
 * @since 0.1.0
 * @category tags
 */
export class FakeNevermined
  extends Context.Tag("@effect-x402/testing/FakeNevermined")<FakeNevermined, FakeNevermined.Service>()
{}

/**
 * @since 0.1.0
 */
export declare namespace FakeNevermined {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The base URL, e.g. `http://127.0.0.1:49152`: pass it as `backendUrl`. */
    readonly url: string
    readonly ledger: Ledger
    /** The provider's API key (accepted by every route). */
    readonly apiKey: string
    /** A subscriber's API key: tokens minted with it belong to `subscriber`. */
    readonly subscriberApiKey: string
    /** The subscriber's account address. */
    readonly subscriber: string
    readonly faults: Faults
    /** Every request received, oldest first. */
    readonly requests: ReadonlyArray<RecordedRequest>
    /** How many requests a route received (faulted ones included). */
    readonly calls: (route: Route) => number
    /** Registers one more account and returns its API key. */
    readonly addAccount: (address: string) => string
  }
}

/**
 * Options of the fake backend.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The ledger to serve; default an empty one. */
  readonly ledger?: Ledger | undefined
  /** Default `127.0.0.1`. */
  readonly host?: string | undefined
  /** Default 0: an ephemeral port. */
  readonly port?: number | undefined
  /** The API-key prefix (`sandbox`, `live`, ...). Default `sandbox`. */
  readonly environment?: string | undefined
  /** The provider's account address. */
  readonly provider?: string | undefined
  /** The provider's API key; default one made for `provider` with `makeApiKey`. */
  readonly apiKey?: string | undefined
  /** The subscriber's account address. */
  readonly subscriber?: string | undefined
  /** The subscriber's API key; default one made for `subscriber`. */
  readonly subscriberApiKey?: string | undefined
}

const base64url = (text: string): string => Buffer.from(text, "utf8").toString("base64url")

/**
 * Makes a Nevermined-style API key (`<environment>:<jwt>`) whose unsigned JWT names the account as
 * `sub`. Only the fake accepts it.
 *
 * @since 0.1.0
 * @category api keys
 */
export const makeApiKey = (address: string, environment = "sandbox"): string => {
  const header = base64url(JSON.stringify({ alg: "none", typ: "JWT" }))
  const payload = base64url(JSON.stringify({ sub: address, jti: Math.random().toString(36).slice(2, 12) }))
  return `${environment}:${header}.${payload}.${base64url("fake-nevermined")}`
}

// Error bodies in the backend's shape. The codes are the fake's own, except the x402 ones of
// docs/protocol.md §1 and §10.
const errorBody = (status: number, code: string, message: string) =>
  HttpServerResponse.unsafeJson({ statusCode: status, code, message, error: Http.STATUS_CODES[status] ?? "Error" }, {
    status
  })

const DecimalString = Schema.String.pipe(Schema.pattern(/^(0|[1-9]\d*)$/))

const VerifyBody = Schema.Struct({
  paymentRequired: X402.PaymentRequired,
  x402AccessToken: Schema.String,
  maxAmount: DecimalString
})

const SettleBody = Schema.Struct({
  ...VerifyBody.fields,
  agentRequestId: Schema.optionalWith(Schema.String, { exact: true })
})

const PermissionsBody = Schema.Struct({
  accepted: Schema.Struct({
    scheme: X402.Scheme,
    network: Schema.String,
    planId: Schema.String,
    extra: Schema.optionalWith(
      Schema.Struct({ agentId: Schema.optionalWith(Schema.String, { nullable: true, exact: true }) }),
      { exact: true }
    )
  }),
  delegationConfig: Schema.optionalWith(
    Schema.Struct({ delegationId: Schema.optionalWith(Schema.String, { exact: true }) }),
    { exact: true }
  ),
  // v3 (single-use, bound) tokens: what the token is bound to, sent only with `tokenVersion: 3`.
  resource: Schema.optionalWith(Schema.Union(Schema.String, Schema.Struct({ url: Schema.String })), { exact: true }),
  httpVerb: Schema.optionalWith(Schema.String, { exact: true }),
  tokenVersion: Schema.optionalWith(Schema.Literal(2, 3), { exact: true })
})

const CARD_PROVIDERS: Record<string, ReadonlyArray<string>> = {
  stripe: ["usd", "eur"],
  braintree: ["usd", "eur"],
  visa: ["usd", "eur"],
  erc4337: ["usdc", "eurc"]
}

const PositiveInt = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(
  Schema.compose(Schema.Int),
  Schema.positive()
)

const DelegationBody = Schema.Struct({
  provider: Schema.Literal(...Object.keys(CARD_PROVIDERS)),
  spendingLimitCents: PositiveInt,
  durationSecs: PositiveInt,
  currency: Schema.String,
  planId: Schema.optionalWith(Schema.String, { exact: true }),
  providerPaymentMethodId: Schema.optionalWith(Schema.String, { exact: true }),
  maxTransactions: Schema.optionalWith(PositiveInt, { exact: true })
})

const encodeVerify = Schema.encodeSync(X402.VerifyResponse)
const encodeSettle = Schema.encodeSync(X402.SettleResponse)

/**
 * Starts the fake backend in the current scope; it stops (closing every open connection) when the
 * scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<FakeNevermined.Service, HttpServerError.ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const ledger = options.ledger ?? new Ledger()
    const environment = options.environment ?? "sandbox"
    const accounts = new Map<string, string>()
    const addAccount = (address: string, key = makeApiKey(address, environment)): string => {
      accounts.set(key, address)
      return key
    }
    const provider = options.provider ?? "0xb01d3r0000000000000000000000000000000001"
    const subscriber = options.subscriber ?? "0x5ub5cr1b3r00000000000000000000000000001"
    const apiKey = addAccount(provider, options.apiKey)
    const subscriberApiKey = addAccount(subscriber, options.subscriberApiKey)

    const queued = new Map<Route, Array<Fault>>()
    const standing = new Map<Route, Fault>()
    const faults: Faults = {
      next: (route, ...list) => {
        const queue = queued.get(route) ?? []
        queue.push(...list)
        queued.set(route, queue)
      },
      always: (route, fault) => {
        if (fault === undefined) standing.delete(route)
        else standing.set(route, fault)
      },
      clear: (route) => {
        if (route === undefined) {
          queued.clear()
          standing.clear()
        } else {
          queued.delete(route)
          standing.delete(route)
        }
      }
    }
    const takeFault = (route: Route): Fault | undefined => queued.get(route)?.shift() ?? standing.get(route)

    const requests: Array<RecordedRequest> = []
    const counts = new Map<Route, number>()

    const hangUp = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      Effect.sync(() => NodeHttpServerRequest.toIncomingMessage(request).socket.destroy())).pipe(
        Effect.zipRight(Effect.never)
      )

    type Handler = (context: {
      readonly body: string
      readonly account: string
      readonly params: Readonly<Record<string, string | undefined>>
      readonly url: string
    }) => HttpServerResponse.HttpServerResponse

    const route = (name: Route, handler: Handler) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const params = yield* HttpRouter.params
        const body = yield* Effect.orElseSucceed(request.text, () =>
          "")
        requests.push({ route: name, method: request.method, url: request.url, headers: { ...request.headers }, body })
        counts.set(name, (counts.get(name) ?? 0) + 1)

        const authorization = request.headers["authorization"] ?? ""
        const account = authorization.startsWith("Bearer ") ? accounts.get(authorization.slice(7)) : undefined
        const answer = (): HttpServerResponse.HttpServerResponse =>
          account === undefined
            ? errorBody(401, "BCK.AUTH.0001", "Unauthorized: missing or invalid API key")
            : handler({ body, account, params, url: request.url })

        const fault = takeFault(name)
        if (fault === undefined) return answer()
        switch (fault._tag) {
          case "Latency":
            yield* Effect.sleep(fault.delay)
            return answer()
          case "Status":
            return errorBody(fault.status, fault.code ?? "BCK.FAKE.0500", fault.message ?? "Injected failure")
          case "RateLimited":
            return HttpServerResponse.setHeader(
              errorBody(429, "BCK.FAKE.0429", "Too many requests"),
              "retry-after",
              String(fault.retryAfter)
            )
          case "MalformedJson":
            return HttpServerResponse.text("{\"isValid\": tru", { contentType: "application/json" })
          case "WrongShape":
            return HttpServerResponse.unsafeJson(fault.body ?? { ok: "yes", data: [1, 2, 3] })
          case "DropConnection":
            if (fault.applied) answer()
            return yield* hangUp
          case "NoAnswer":
            if (fault.applied) answer()
            return yield* Effect.never
        }
      })

    const decode = <A, I>(
      schema: Schema.Schema<A, I>,
      body: string
    ): Either.Either<A, HttpServerResponse.HttpServerResponse> => {
      let json: unknown
      try {
        json = JSON.parse(body)
      } catch {
        return Either.left(errorBody(400, "BCK.COMMON.0001", "Request body is not JSON"))
      }
      return Either.mapLeft(
        Schema.decodeUnknownEither(schema, { errors: "first", onExcessProperty: "ignore" })(json),
        (error) => errorBody(400, "BCK.COMMON.0002", ParseResult.TreeFormatter.formatErrorSync(error))
      )
    }

    const planNotFound = (planId: string) => errorBody(404, "BCK.PLANS.0001", `Plan ${planId} not found`)

    const verify: Handler = ({ body }) =>
      Either.match(decode(VerifyBody, body), {
        onLeft: (response) => response,
        onRight: (request) =>
          HttpServerResponse.unsafeJson(encodeVerify(ledger.verify({
            paymentRequired: request.paymentRequired,
            token: request.x402AccessToken,
            maxAmount: Number(request.maxAmount)
          })))
      })

    const settle: Handler = ({ body }) =>
      Either.match(decode(SettleBody, body), {
        onLeft: (response) => response,
        onRight: (request) => {
          const answer = ledger.settle({
            paymentRequired: request.paymentRequired,
            token: request.x402AccessToken,
            maxAmount: Number(request.maxAmount),
            agentRequestId: request.agentRequestId
          })
          // A spent single-use token is an error answer with the backend's code, not `success: false`.
          return answer.errorReason === TOKEN_ALREADY_USED
            ? errorBody(409, TOKEN_ALREADY_USED, "x402 access token already used")
            : HttpServerResponse.unsafeJson(encodeSettle(answer))
        }
      })

    const permissions: Handler = ({ account, body }) =>
      Either.match(decode(PermissionsBody, body), {
        onLeft: (response) => response,
        onRight: ({ accepted, delegationConfig, httpVerb, resource, tokenVersion }) => {
          if (!ledger.plans.has(accepted.planId)) return planNotFound(accepted.planId)
          const delegationId = delegationConfig?.delegationId
          if (delegationId !== undefined) {
            const delegation = ledger.delegations.get(delegationId)
            if (delegation === undefined || delegation.owner !== account) {
              return errorBody(404, "BCK.DELEGATION.0001", `Delegation ${delegationId} not found`)
            }
            if (delegation.status !== "Active" || ledger.expiresAt(delegation) <= ledger.now()) {
              return errorBody(400, "BCK.DELEGATION.0002", `Delegation ${delegationId} is not active`)
            }
          } else if (accepted.scheme === "nvm:card-delegation") {
            return errorBody(400, "BCK.DELEGATION.0003", "A card delegation is required for nvm:card-delegation")
          }
          // The binding means something only on a v3 token; on v2 the backend refuses the pair.
          if (tokenVersion !== 3 && (resource !== undefined || httpVerb !== undefined)) {
            return errorBody(400, "BCK.X402.0013", "resource and httpVerb bind only a v3 token (tokenVersion: 3)")
          }
          const accessToken = ledger.mintToken({
            planId: accepted.planId,
            subscriber: account,
            agentId: accepted.extra?.agentId,
            ...(tokenVersion !== undefined ? { version: tokenVersion } : {}),
            ...(resource !== undefined ? { resourceUrl: typeof resource === "string" ? resource : resource.url } : {}),
            ...(httpVerb !== undefined ? { httpVerb } : {}),
            ...(delegationId !== undefined ? { delegationId } : {})
          })
          return HttpServerResponse.unsafeJson({ accessToken })
        }
      })

    const delegationCreate: Handler = ({ account, body }) =>
      Either.match(decode(DelegationBody, body), {
        onLeft: (response) => response,
        onRight: (request) => {
          const currency = request.currency.toLowerCase()
          if (!(CARD_PROVIDERS[request.provider] ?? []).includes(currency)) {
            return errorBody(
              400,
              "BCK.DELEGATION.0004",
              `Currency ${request.currency} not supported by ${request.provider}`
            )
          }
          const delegation = ledger.addDelegation({
            owner: account,
            provider: request.provider,
            currency,
            spendingLimitCents: request.spendingLimitCents,
            durationSecs: request.durationSecs,
            planId: request.planId,
            providerPaymentMethodId: request.providerPaymentMethodId,
            maxTransactions: request.maxTransactions,
            createdAt: ledger.now()
          })
          return HttpServerResponse.unsafeJson({
            delegationId: delegation.delegationId,
            ...(request.provider !== "erc4337" ? { delegationToken: `dtok_${delegation.delegationId}` } : {})
          })
        }
      })

    const delegationList: Handler = ({ account, url }) => {
      const now = ledger.now()
      // `?accessible=true`: only the delegations that can still pay (active, unexpired, budget and
      // transactions left).
      const accessible = new URL(url, "http://fake").searchParams.get("accessible") === "true"
      const delegations = ledger.delegationsOf(account).filter((d) =>
        !accessible ||
        (d.status === "Active" && ledger.expiresAt(d) > now && d.amountSpentCents < d.spendingLimitCents &&
          (d.maxTransactions === undefined || d.transactionCount < d.maxTransactions))
      ).map((d) => {
        const expiresAt = ledger.expiresAt(d)
        return {
          delegationId: d.delegationId,
          provider: d.provider,
          providerPaymentMethodId: d.providerPaymentMethodId ?? "",
          status: d.status === "Active" && expiresAt <= now ? "Expired" : d.status,
          spendingLimitCents: String(d.spendingLimitCents),
          amountSpentCents: String(d.amountSpentCents),
          remainingBudgetCents: String(Math.max(0, d.spendingLimitCents - d.amountSpentCents)),
          currency: d.currency,
          transactionCount: d.transactionCount,
          ...(d.maxTransactions !== undefined ? { maxTransactions: d.maxTransactions } : {}),
          expiresAt: new Date(expiresAt).toISOString(),
          createdAt: new Date(d.createdAt).toISOString(),
          apiKeyId: null
        }
      })
      return HttpServerResponse.unsafeJson({ delegations, totalResults: delegations.length, page: 1, offset: 0 })
    }

    const balance: Handler = ({ params }) => {
      const planId = params["planId"] ?? ""
      const holder = params["holder"] ?? ""
      const plan = ledger.plans.get(planId)
      if (plan === undefined) return planNotFound(planId)
      const credits = ledger.balance(holder, planId)
      return HttpServerResponse.unsafeJson({
        planId,
        planName: plan.name,
        planType: "credits",
        holderAddress: holder,
        balance: String(credits),
        creditsContract: "0x0000000000000000000000000000000000c4ed17",
        isSubscriber: credits > 0,
        pricePerCredit: Number(plan.pricePerCredit ?? 0)
      })
    }

    const plan: Handler = ({ params }) => {
      const planId = params["planId"] ?? ""
      const found = ledger.plans.get(planId)
      if (found === undefined) return planNotFound(planId)
      return HttpServerResponse.unsafeJson({
        id: planId,
        metadata: {
          main: { name: found.name },
          plan: found.fiatPaymentProvider !== undefined
            ? { isCrypto: false, fiatPaymentProvider: found.fiatPaymentProvider }
            : { isCrypto: true }
        }
      })
    }

    const router = HttpRouter.empty.pipe(
      HttpRouter.post("/api/v1/x402/verify", route("verify", verify)),
      HttpRouter.post("/api/v1/x402/settle", route("settle", settle)),
      HttpRouter.post("/api/v1/x402/permissions", route("permissions", permissions)),
      HttpRouter.post("/api/v1/delegation/create", route("delegationCreate", delegationCreate)),
      HttpRouter.get("/api/v1/delegation", route("delegationList", delegationList)),
      HttpRouter.get("/api/v1/protocol/plans/:planId/balance/:holder", route("balance", balance)),
      HttpRouter.get("/api/v1/protocol/plans/:planId", route("plan", plan)),
      HttpRouter.all(
        "*",
        Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
          requests.push({
            route: "unknown",
            method: request.method,
            url: request.url,
            headers: { ...request.headers },
            body: ""
          })
          return errorBody(404, "BCK.COMMON.0404", `Cannot ${request.method} ${request.url}`)
        })
      )
    )

    const nodeServer = Http.createServer()
    const server = yield* NodeHttpServer.make(() => nodeServer, {
      host: options.host ?? "127.0.0.1",
      port: options.port ?? 0
    })
    // Runs before the server's own close, which would otherwise wait for hanging requests.
    yield* Effect.addFinalizer(() => Effect.sync(() => nodeServer.closeAllConnections()))
    yield* server.serve(router)
    const address = server.address
    const url = address._tag === "TcpAddress" ? `http://${address.hostname}:${address.port}` : `http://localhost`

    return {
      url,
      ledger,
      apiKey,
      subscriberApiKey,
      subscriber,
      faults,
      requests,
      calls: (name) => counts.get(name) ?? 0,
      addAccount: (address) => addAccount(address)
    }
  })

/**
 * The fake backend as a scoped layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<FakeNevermined, HttpServerError.ServeError> =>
  Layer.scoped(FakeNevermined, make(options))

/**
 * Starts the fake backend from a script (outside Effect). `close` stops it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = async (
  options: Options = {}
): Promise<FakeNevermined.Service & { readonly close: () => Promise<void> }> => startScoped(make(options))
