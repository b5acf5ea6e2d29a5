/**
 * The paying side of the protocol: a subscriber mints x402 access tokens, manages the delegations
 * that fund them, and reads its plan balances, on the Nevermined backend.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Backend from "./internal/backend.js"
import * as Nevermined from "./Nevermined.js"
import type { FacilitatorError } from "./PaymentError.js"
import * as X402 from "./X402.js"

/**
 * What an access token is for: a plan (and agent), through a scheme, funded by a delegation.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenRequest {
  readonly planId: string
  readonly agentId?: string | undefined
  /** Default `nvm:erc4337`. */
  readonly scheme?: X402.Scheme | undefined
  /** Default: the environment's network for `nvm:erc4337`, `stripe` for `nvm:card-delegation`. */
  readonly network?: string | undefined
  /** The delegation that pays; default the service's configured one, if any. */
  readonly delegationId?: string | undefined
  /**
   * Ask for a single-use (v3) token, bound to `agentId`, `resource` and `httpVerb` and spent by its
   * first settle. Default: not asked (the backend's default, reusable v2). The backend may mint v3
   * unasked, or drop the request: read the minted token's version with `accessTokenVersion`.
   *
   * @since 0.2.0
   */
  readonly tokenVersion?: 2 | 3 | undefined
  /**
   * The resource URL a v3 token is bound to: exactly the `resource.url` the seller advertises. Only
   * with `tokenVersion: 3` (on a v2 token the backend refuses it).
   *
   * @since 0.2.0
   */
  readonly resource?: string | undefined
  /**
   * The HTTP verb a v3 token is bound to (the seller's `extra.httpVerb`). Only with `tokenVersion: 3`.
   *
   * @since 0.2.0
   */
  readonly httpVerb?: string | undefined
}

/**
 * The version of an access token, read from the token itself (see `X402.accessTokenVersion`).
 *
 * @since 0.2.0
 * @category tokens
 */
export const accessTokenVersion: (token: Redacted.Redacted<string> | string) => 2 | 3 = X402.accessTokenVersion

/**
 * Whether an access token is single-use (v3): spent by its first settle, so never to be reused.
 *
 * @since 0.2.0
 * @category tokens
 */
export const isSingleUseAccessToken: (token: Redacted.Redacted<string> | string) => boolean =
  X402.isSingleUseAccessToken

/**
 * The wire body of a delegation to create (docs/protocol.md §1). `provider` is `erc4337` for crypto plans, or a
 * card provider (`stripe`, `braintree`, `visa`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const CreateDelegation = Schema.Struct({
  provider: Schema.String,
  spendingLimitCents: Schema.Number,
  durationSecs: Schema.Number,
  currency: Schema.String,
  planId: Schema.optionalWith(Schema.String, { exact: true }),
  providerPaymentMethodId: Schema.optionalWith(Schema.String, { exact: true }),
  maxTransactions: Schema.optionalWith(Schema.Number, { exact: true })
})

/**
 * @since 0.1.0
 * @category models
 */
export interface CreateDelegation extends Schema.Schema.Type<typeof CreateDelegation> {}

/**
 * The answer to a delegation creation. A card delegation's token is a secret, so it is redacted.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CreatedDelegation = Schema.Struct({
  delegationId: Schema.String,
  delegationToken: Schema.optionalWith(Schema.Redacted(Schema.String), { nullable: true, exact: true })
})

/**
 * @since 0.1.0
 * @category models
 */
export interface CreatedDelegation extends Schema.Schema.Type<typeof CreatedDelegation> {}

const optional = <S extends Schema.Schema.Any>(schema: S) =>
  Schema.optionalWith(schema, { nullable: true, exact: true })

/**
 * A delegation as the backend lists it. Amounts in cents are decimal strings.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Delegation = Schema.Struct({
  delegationId: Schema.String,
  provider: Schema.String,
  status: Schema.String,
  currency: Schema.String,
  providerPaymentMethodId: optional(Schema.String),
  spendingLimitCents: optional(X402.Amount),
  amountSpentCents: optional(X402.Amount),
  remainingBudgetCents: optional(X402.Amount),
  transactionCount: optional(Schema.Number),
  /** The most settlements it pays for, when limited. */
  maxTransactions: optional(Schema.Number),
  expiresAt: optional(Schema.String),
  createdAt: optional(Schema.String),
  apiKeyId: optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Delegation extends Schema.Schema.Type<typeof Delegation> {}

/**
 * A page of delegations.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DelegationList = Schema.Struct({
  delegations: Schema.Array(Delegation),
  totalResults: Schema.Number,
  page: optional(Schema.Number),
  offset: optional(Schema.Number)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface DelegationList extends Schema.Schema.Type<typeof DelegationList> {}

/**
 * A holder's balance on a plan. `balance` is a decimal string of credits.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PlanBalance = Schema.Struct({
  planId: Schema.String,
  holderAddress: Schema.String,
  balance: X402.Amount,
  isSubscriber: Schema.Boolean,
  planName: optional(Schema.String),
  planType: optional(Schema.String),
  creditsContract: optional(Schema.String),
  pricePerCredit: optional(Schema.Union(Schema.Number, Schema.String))
})

/**
 * @since 0.1.0
 * @category models
 */
export interface PlanBalance extends Schema.Schema.Type<typeof PlanBalance> {}

const AccessTokenResponse = Schema.Struct({ accessToken: Schema.NonEmptyTrimmedString })

/**
 * @since 0.1.0
 * @category tags
 */
export class Subscriber extends Context.Tag("@effect-x402/core/Subscriber")<Subscriber, Subscriber.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace Subscriber {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** Mints an x402 access token (`POST /api/v1/x402/permissions`). */
    readonly accessToken: (request: TokenRequest) => Effect.Effect<Redacted.Redacted<string>, FacilitatorError>
    /** Creates a spending delegation (`POST /api/v1/delegation/create`). Never retried once sent. */
    readonly createDelegation: (request: CreateDelegation) => Effect.Effect<CreatedDelegation, FacilitatorError>
    /** Lists the subscriber's delegations (`GET /api/v1/delegation`). */
    readonly listDelegations: (options?: {
      /** Only the usable ones (active, not expired, with budget left). */
      readonly accessible?: boolean | undefined
    }) => Effect.Effect<DelegationList, FacilitatorError>
    /** A plan balance; the holder defaults to the API key's account. */
    readonly balance: (planId: string, holderAddress?: string) => Effect.Effect<PlanBalance, FacilitatorError>
  }
}

/**
 * Options of the live subscriber.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The subscriber's API key (`<environment>:<jwt>`). */
  readonly apiKey: Redacted.Redacted<string> | string
  readonly environment?: Nevermined.Environment | undefined
  readonly backendUrl?: string | undefined
  /** The delegation that funds minted tokens when a request names none. */
  readonly delegationId?: string | undefined
  /** Bounds each operation, retries included. Default 10 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Retry of the idempotent operations (and of any operation that provably never left). */
  readonly retry?: Nevermined.RetryOptions | undefined
  /**
   * The longest backend answer read, in bytes (`TooLarge` beyond). Default 1 MiB.
   *
   * @since 0.2.0
   */
  readonly maxResponseBytes?: number | undefined
}

/**
 * Makes the live subscriber over the `HttpClient` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<Subscriber.Service, Nevermined.InvalidApiKey, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const apiKey = yield* Nevermined.parseApiKey(options.apiKey)
    const resolved = Nevermined.resolveEnvironment({
      apiKey,
      environment: options.environment,
      backendUrl: options.backendUrl
    })
    const client = yield* HttpClient.HttpClient
    const backend = Backend.make({
      client,
      baseUrl: resolved.backendUrl,
      apiKey: apiKey.key,
      maxResponseBytes: options.maxResponseBytes
    })
    const budget = Duration.decode(options.timeout ?? Duration.seconds(10))
    const retry = Backend.retrySettings(options.retry)

    const run = <A, I>(
      call: Omit<Backend.Call<A, I>, "timeout">,
      retryable: (failure: Backend.AttemptFailed) => boolean
    ) =>
      Backend.withRetries({
        attempt: (timeout) => backend.call({ ...call, timeout }),
        retryable,
        budget,
        ...retry
      })

    const accessToken = Effect.fn("Subscriber.accessToken")(function*(request: TokenRequest) {
      const scheme = request.scheme ?? "nvm:erc4337"
      const network = request.network ?? (scheme === "nvm:card-delegation" ? "stripe" : resolved.network)
      const delegationId = request.delegationId ?? options.delegationId
      yield* Effect.annotateCurrentSpan({ planId: request.planId, scheme, network })
      if (request.tokenVersion !== 3 && (request.resource !== undefined || request.httpVerb !== undefined)) {
        // On a v2 token the binding is not inert: the backend compares it and refuses the pair.
        return yield* Effect.dieMessage("Subscriber.accessToken: resource and httpVerb bind only a v3 token")
      }
      // As the Python SDK: the v3 fields are left out entirely unless asked for, so a v2 mint is
      // byte-identical to one from before v3 existed (docs/protocol.md §1).
      const body = JSON.stringify({
        accepted: {
          scheme,
          network,
          planId: request.planId,
          extra: request.agentId !== undefined ? { agentId: request.agentId } : {}
        },
        ...(request.resource !== undefined ? { resource: { url: request.resource } } : {}),
        ...(request.httpVerb !== undefined ? { httpVerb: request.httpVerb } : {}),
        ...(request.tokenVersion !== undefined ? { tokenVersion: request.tokenVersion } : {}),
        ...(delegationId !== undefined ? { delegationConfig: { delegationId } } : {})
      })
      // Minting twice is harmless (an unused token costs nothing), so transient failures are retried.
      const answer = yield* run({
        operation: "permissions",
        method: "POST",
        path: "/api/v1/x402/permissions",
        body,
        schema: AccessTokenResponse
      }, Backend.isTransient)
      return Redacted.make(answer.accessToken)
    })

    const createDelegation = Effect.fn("Subscriber.createDelegation")(function*(request: CreateDelegation) {
      yield* Effect.annotateCurrentSpan({ provider: request.provider, planId: request.planId ?? "-" })
      const body = JSON.stringify(Schema.encodeSync(CreateDelegation)(request))
      // A delegation is a spending authority: create it at most once unless the request never left.
      return yield* run({
        operation: "delegation",
        method: "POST",
        path: "/api/v1/delegation/create",
        body,
        schema: CreatedDelegation
      }, Backend.isNeverSent)
    })

    const listDelegations = Effect.fn("Subscriber.listDelegations")(function*(
      listOptions?: { readonly accessible?: boolean | undefined }
    ) {
      return yield* run({
        operation: "delegation",
        method: "GET",
        path: listOptions?.accessible ? "/api/v1/delegation?accessible=true" : "/api/v1/delegation",
        schema: DelegationList
      }, Backend.isTransient)
    })

    const balance = Effect.fn("Subscriber.balance")(function*(planId: string, holderAddress?: string) {
      const holder = holderAddress ?? apiKey.address
      if (holder === undefined) {
        return yield* Effect.dieMessage("Subscriber.balance: no holder address given and none in the API key")
      }
      yield* Effect.annotateCurrentSpan({ planId, holder })
      return yield* run({
        operation: "balance",
        method: "GET",
        path: `/api/v1/protocol/plans/${encodeURIComponent(planId)}/balance/${encodeURIComponent(holder)}`,
        schema: PlanBalance
      }, Backend.isTransient)
    })

    return Subscriber.of({
      accessToken,
      createDelegation,
      listDelegations: (listOptions) => listDelegations(listOptions),
      balance: (planId, holder) => balance(planId, holder)
    })
  })

/**
 * The live `Subscriber`. Requires an `HttpClient` (`FetchHttpClient.layer` or `NodeHttpClient.layer`).
 * A malformed API key is a defect here; use `make` or `layerConfig` to get it as a typed error.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Subscriber, never, HttpClient.HttpClient> =>
  Layer.effect(Subscriber, Effect.orDie(make(options)))

/**
 * The live `Subscriber` configured from the environment: `NVM_API_KEY` (read as `Redacted`),
 * `NVM_ENVIRONMENT`, `NVM_BACKEND_URL`, and `NVM_DELEGATION_ID` (optional). Given options win.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Partial<Options> = {}
): Layer.Layer<Subscriber, ConfigError.ConfigError | Nevermined.InvalidApiKey, HttpClient.HttpClient> =>
  Layer.effect(
    Subscriber,
    Effect.gen(function*() {
      const config = yield* Config.all({
        apiKey: options.apiKey !== undefined ? Config.succeed(options.apiKey) : Config.redacted("NVM_API_KEY"),
        environment: Config.option(Config.literal(...Nevermined.Environment.literals)("NVM_ENVIRONMENT")),
        backendUrl: Config.option(Config.string("NVM_BACKEND_URL")),
        delegationId: Config.option(Config.string("NVM_DELEGATION_ID"))
      })
      return yield* make({
        ...options,
        apiKey: config.apiKey,
        environment: options.environment ?? Option.getOrUndefined(config.environment),
        backendUrl: options.backendUrl ?? Option.getOrUndefined(config.backendUrl),
        delegationId: options.delegationId ?? Option.getOrUndefined(config.delegationId)
      })
    })
  )
