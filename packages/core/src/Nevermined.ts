/**
 * The Nevermined backend: environments, their URLs and default networks, API-key parsing, and the
 * live `Facilitator` layer over `@effect/platform`'s `HttpClient`.
 *
 * @since 0.1.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Tracer from "effect/Tracer"
import { Facilitator, type SettleRequest, type VerifyRequest } from "./Facilitator.js"
import * as Backend from "./internal/backend.js"
import * as CallSpan from "./internal/callSpan.js"
import * as LookupCache from "./internal/lookupCache.js"
import type { FacilitatorError } from "./PaymentError.js"
import { fingerprint } from "./Paywall.js"
import * as X402 from "./X402.js"

/**
 * Nevermined environments.
 *
 * @since 0.1.0
 * @category environments
 */
export const Environment = Schema.Literal("sandbox", "live", "staging_sandbox", "staging_live", "custom")

/**
 * @since 0.1.0
 * @category environments
 */
export type Environment = typeof Environment.Type

/**
 * Backend base URL and default network of each environment. `custom` uses `NVM_BACKEND_URL`, else
 * a local backend.
 *
 * @since 0.1.0
 * @category environments
 */
export const environments: { readonly [E in Environment]: { readonly backendUrl: string; readonly network: string } } =
  {
    sandbox: { backendUrl: "https://api.sandbox.nevermined.app", network: "eip155:84532" },
    live: { backendUrl: "https://api.live.nevermined.app", network: "eip155:8453" },
    staging_sandbox: { backendUrl: "https://api.sandbox.nevermined.dev", network: "eip155:84532" },
    staging_live: { backendUrl: "https://api.live.nevermined.dev", network: "eip155:8453" },
    custom: { backendUrl: "http://localhost:3001", network: "eip155:84532" }
  }

const prefixes: Record<string, Environment> = {
  sandbox: "sandbox",
  live: "live",
  "sandbox-staging": "staging_sandbox",
  "live-staging": "staging_live"
}

/**
 * Why an API key was refused. Never contains the key.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidApiKey extends Schema.TaggedError<InvalidApiKey>("@effect-x402/core/InvalidApiKey")(
  "InvalidApiKey",
  { detail: Schema.String }
) {
  override get message(): string {
    return `Invalid Nevermined API key: ${this.detail}`
  }
}

/**
 * A parsed API key.
 *
 * @since 0.1.0
 * @category models
 */
export interface ApiKey {
  readonly key: Redacted.Redacted<string>
  /** The environment the key's prefix names, if it names one. */
  readonly environment: Environment | undefined
  /** The account address (`sub` of the JWT payload), when readable. */
  readonly address: string | undefined
}

const decodeJwtPayload = (jwt: string): Record<string, unknown> | undefined => {
  const part = jwt.split(".")[1]
  if (part === undefined) return undefined
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/")
    const json = JSON.parse(atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4)))
    return typeof json === "object" && json !== null ? json as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

/**
 * Parses `<prefix>:<jwt>` (exactly one `:`). The JWT's payload is read without verifying its
 * signature, only to learn the account address.
 *
 * @since 0.1.0
 * @category api keys
 */
export const parseApiKey = (key: Redacted.Redacted<string> | string): Either.Either<ApiKey, InvalidApiKey> => {
  const raw = typeof key === "string" ? key : Redacted.value(key)
  const redacted = typeof key === "string" ? Redacted.make(key) : key
  const parts = raw.trim().split(":")
  if (parts.length !== 2 || parts[0].length === 0 || parts[1].length === 0) {
    return Either.left(new InvalidApiKey({ detail: "expected <environment>:<token> with exactly one ':'" }))
  }
  const environment = prefixes[parts[0].toLowerCase()]
  const payload = decodeJwtPayload(parts[1])
  const sub = payload?.["sub"]
  return Either.right({ key: redacted, environment, address: typeof sub === "string" ? sub : undefined })
}

/**
 * Resolves the environment and backend URL: the key's prefix wins over a configured environment;
 * `backendUrl` (from `NVM_BACKEND_URL`) overrides the URL in any environment.
 *
 * @since 0.1.0
 * @category environments
 */
export const resolveEnvironment = (options: {
  readonly apiKey: ApiKey
  readonly environment?: Environment | undefined
  readonly backendUrl?: string | undefined
}): { readonly environment: Environment; readonly backendUrl: string; readonly network: string } => {
  const environment = options.apiKey.environment ?? options.environment ?? "sandbox"
  const defaults = environments[environment]
  const backendUrl = (options.backendUrl && options.backendUrl.length > 0 ? options.backendUrl : defaults.backendUrl)
    .replace(/\/+$/, "")
  return { environment, backendUrl, network: defaults.network }
}

// ---------------------------------------------------------------------------
// The live facilitator
// ---------------------------------------------------------------------------

/**
 * Timeouts of the backend calls. Each bounds the whole operation, retries included.
 *
 * @since 0.1.0
 * @category models
 */
export interface Timeouts {
  /** Default 10 seconds. */
  readonly verify?: Duration.DurationInput | undefined
  /** Default 30 seconds. */
  readonly settle?: Duration.DurationInput | undefined
  /** The plan lookup behind `networkFor`. Default 5 seconds. */
  readonly plan?: Duration.DurationInput | undefined
}

/**
 * The retry policy: bounded, jittered exponential backoff, always inside the operation's timeout.
 * Verify retries transient failures (connection refused, 429, 502/503/504); settle retries only
 * what provably did not apply: a request that never left (connection refused) and a 429, waiting as
 * its `Retry-After` says when that fits the settle timeout.
 *
 * @since 0.1.0
 * @category models
 */
export interface RetryOptions {
  /** Attempts in all, the first included. Default 3. */
  readonly maxAttempts?: number | undefined
  /** Delay before the first retry (doubled each time, jittered). Default 100 ms. */
  readonly baseDelay?: Duration.DurationInput | undefined
  /** Cap of one backoff delay; a longer `Retry-After` is still honoured if it fits the timeout. Default 2 s. */
  readonly maxDelay?: Duration.DurationInput | undefined
}

/**
 * Options of the live facilitator.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The provider's API key (`<environment>:<jwt>`). */
  readonly apiKey: Redacted.Redacted<string> | string
  /** Used when the key's prefix names no environment. Default `sandbox`. */
  readonly environment?: Environment | undefined
  /** Overrides the environment's backend URL. */
  readonly backendUrl?: string | undefined
  /** The network to advertise for every plan; by default a fiat plan's provider, else the environment's. */
  readonly network?: string | undefined
  readonly timeouts?: Timeouts | undefined
  readonly retry?: RetryOptions | undefined
  /** How long a plan's network is remembered. Default 5 minutes. */
  readonly planCacheTtl?: Duration.DurationInput | undefined
  /**
   * The longest backend answer read, in bytes; a longer one fails the call with a `FacilitatorError`
   * of kind `TooLarge` (for settle: outcome unknown). Default 1 MiB.
   *
   * @since 0.2.0
   */
  readonly maxResponseBytes?: number | undefined
  /**
   * Transforms the `HttpClient` once, when the layer is built (e.g. `HttpClient.tapRequest` for
   * logging, a proxy's `mapRequest`). Every backend request then goes through the transformed
   * client (never the lean `fetch` path of `layerFetchClient`).
   *
   * @since 0.2.0
   */
  readonly transformClient?: ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined
}

/**
 * The default cap of a backend answer: 1 MiB.
 *
 * @since 0.2.0
 * @category constants
 */
export const defaultMaxResponseBytes: number = Backend.DEFAULT_MAX_RESPONSE_BYTES

/**
 * The default timeouts.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTimeouts: {
  readonly verify: Duration.Duration
  readonly settle: Duration.Duration
  readonly plan: Duration.Duration
} = {
  verify: Duration.seconds(10),
  settle: Duration.seconds(30),
  plan: Duration.seconds(5)
}

// A failed plan lookup is remembered briefly, so a backend outage does not add a lookup to every 402.
const PLAN_FAILURE_TTL = Duration.seconds(30)

/**
 * The part of a plan the facilitator reads: a fiat plan's payment provider.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PlanResponse = Schema.Struct({
  metadata: Schema.optionalWith(
    Schema.Struct({
      plan: Schema.optionalWith(
        Schema.Struct({ fiatPaymentProvider: Schema.optionalWith(Schema.String, { nullable: true, exact: true }) }),
        { nullable: true, exact: true }
      )
    }),
    { nullable: true, exact: true }
  )
})

const encodeBody = (request: SettleRequest, withRequestId: boolean): string =>
  Backend.encodeBody(
    request.paymentRequired,
    Redacted.value(request.token),
    request.maxAmount,
    withRequestId ? request.agentRequestId : undefined
  )

/**
 * Makes the live facilitator over the `HttpClient` in context. Fails when the API key is malformed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<Facilitator.Service, InvalidApiKey, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const apiKey = yield* parseApiKey(options.apiKey)
    const resolved = resolveEnvironment({
      apiKey,
      environment: options.environment,
      backendUrl: options.backendUrl
    })
    const given = yield* HttpClient.HttpClient
    const client = options.transformClient !== undefined ? options.transformClient(given) : given
    // Over the untouched fetch client of `layerFetchClient` (the Lambda default), verify and settle
    // call `fetch` themselves when no tracer listens (`Backend.make`'s `lean`). Any other client, or
    // the same one wrapped (`HttpClient.mapRequest`, `retry`, ...: a new client object), goes
    // through the client as given.
    const lean = fetchClients.has(client)
    const backend = Backend.make({
      client,
      baseUrl: resolved.backendUrl,
      apiKey: apiKey.key,
      maxResponseBytes: options.maxResponseBytes
    })
    const timeouts = {
      verify: Duration.decode(options.timeouts?.verify ?? defaultTimeouts.verify),
      settle: Duration.decode(options.timeouts?.settle ?? defaultTimeouts.settle),
      plan: Duration.decode(options.timeouts?.plan ?? defaultTimeouts.plan)
    }
    const retry = Backend.retrySettings(options.retry)
    const defaultNetwork = resolved.network

    // Spans: none when nobody listens; inside a paid call's span (Paywall opened it), nothing of
    // ours either; called on its own with a tracer installed, one span per operation.
    const attributesOf = (request: VerifyRequest) => () => ({
      "x402.plan_ids": request.paymentRequired.accepts.map((a) => a.planId).join(","),
      "x402.credits": request.maxAmount,
      "x402.token": fingerprint(request.token)
    })
    // The client's own span only when a tracer listens: with none, it is work for nothing.
    const quietClient = HttpClient.withTracerDisabledWhen(client, () => true)
    const backendFor = (span: Tracer.Span | undefined) => span === undefined ? quietBackend : backend
    const quietBackend = Backend.make({
      client: quietClient,
      baseUrl: resolved.backendUrl,
      apiKey: apiKey.key,
      maxResponseBytes: options.maxResponseBytes,
      lean
    })

    // The requests are not built with `HttpClient.mapRequest(prependUrl, bearerToken, acceptJson)`:
    // those combinators rebuild the request and its headers on every call. `Backend.make` builds
    // each route's request (URL, bearer token from the `Redacted` key, `accept`, API version) once
    // and reuses it; only the body is set per call. Non-2xx answers are read (their code and message
    // say what went wrong), so there is no `filterStatusOk` either.
    // Each attempt's `Call` is one literal: spreading a shared route object into it cost ~4 µs per
    // attempt (V8 copies the spread through its slow path here; measured with `ab.ts wireOurs`).
    const VERIFY_PATH = "/api/v1/x402/verify"
    const SETTLE_PATH = "/api/v1/x402/settle"

    // One `withFiberRuntime` per operation: with nobody listening (no span to open or annotate), the
    // fiber's services go to the exchange and the retry loop starts on the spot; otherwise the
    // operation runs in `CallSpan.step` as before.
    const operate = <A>(
      request: VerifyRequest,
      operation: (
        exchange: Backend.Backend,
        fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
      ) => Effect.Effect<A, FacilitatorError>,
      name: string
    ): Effect.Effect<A, FacilitatorError> =>
      Effect.withFiberRuntime((fiber) =>
        CallSpan.listening(fiber)
          ? CallSpan.step(name, attributesOf(request), (span) => operation(backendFor(span), undefined), "quiet")
          : operation(quietBackend, fiber)
      )

    // On the operation's fiber when `operate` holds it, else (inside a span) on its own.
    const retriesWithin = <A>(
      fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined,
      options: Parameters<typeof Backend.withRetriesWithin<A>>[0]
    ) => fiber !== undefined ? Backend.retriesWithinOn(fiber, options) : Backend.withRetriesWithin(options)

    const verify = (request: VerifyRequest) =>
      operate(request, (exchange, fiber) => {
        const body = encodeBody(request, false)
        const secrets = [Redacted.value(request.token)]
        const services = fiber?.currentContext.unsafeMap
        return retriesWithin(fiber, {
          operation: "verify",
          attempt: (cutOff) =>
            exchange.call({
              operation: "verify",
              method: "POST",
              path: VERIFY_PATH,
              schema: X402.VerifyResponse,
              decode: Backend.decodeVerifyResponse,
              body,
              secrets,
              cutOff,
              services
            }),
          inlineCutOff: exchange.lean,
          retryable: Backend.isTransient,
          budget: timeouts.verify,
          deadline: request.deadline,
          maxAttempts: retry.maxAttempts,
          baseDelay: retry.baseDelay,
          maxDelay: retry.maxDelay
        })
      }, "Nevermined.verify")

    const settle = (request: SettleRequest) =>
      operate(request, (exchange, fiber) => {
        const body = encodeBody(request, true)
        const secrets = [Redacted.value(request.token)]
        const services = fiber?.currentContext.unsafeMap
        return retriesWithin(fiber, {
          operation: "settle",
          attempt: (cutOff) =>
            exchange.call({
              operation: "settle",
              method: "POST",
              path: SETTLE_PATH,
              schema: X402.SettleResponse,
              decode: Backend.decodeSettleResponse,
              body,
              secrets,
              cutOff,
              services
            }),
          inlineCutOff: exchange.lean,
          // Only what provably did not apply may be sent again (never sent, or a 429): anything else
          // may have burned the credits.
          retryable: Backend.isSafeSettleRetry,
          budget: timeouts.settle,
          deadline: request.deadline,
          maxAttempts: retry.maxAttempts,
          baseDelay: retry.baseDelay,
          maxDelay: retry.maxDelay
        })
      }, "Nevermined.settle")

    const lookupNetwork = (planId: string): Effect.Effect<string, FacilitatorError> =>
      backend.call({
        operation: "plan",
        method: "GET",
        path: `/api/v1/protocol/plans/${encodeURIComponent(planId)}`,
        schema: PlanResponse,
        timeout: timeouts.plan
      }).pipe(
        // A lookup runs about once per plan per cache window: the per-attempt timeout race is fine.
        Effect.map((plan) => plan.metadata?.plan?.fiatPaymentProvider ?? defaultNetwork),
        // An unknown plan is a definite answer: it is not fiat, so the default network applies. It
        // is also a misconfiguration every payer would hit (verify answers
        // `invalid_payment_requirements`): said loudly, once per plan per cache window.
        Effect.catchIf(
          (failure) => failure.error.kind === "HttpStatus" && failure.error.status === 404,
          () =>
            Effect.as(
              Effect.logError(
                `x402: plan ${planId} is unknown to the Nevermined ${resolved.environment} backend: every payment ` +
                  "for it will be refused. Check the plan id (NVM_PLAN_ID) and that NVM_API_KEY / NVM_ENVIRONMENT " +
                  "name the environment the plan was created in."
              ),
              defaultNetwork
            )
        ),
        Effect.mapError((failure) => failure.error),
        // Said where the lookup runs, so once per failed lookup: the cache keeps the failure for a
        // while, and every call reading it meanwhile falls back without another warning.
        Effect.tapError((error) =>
          Effect.logWarning("Nevermined: plan lookup failed, advertising the default network").pipe(
            Effect.annotateLogs({ planId, error: error.message })
          )
        )
      )

    const clock = yield* Effect.clock
    const planTtl = Duration.decode(options.planCacheTtl ?? Duration.minutes(5))
    // The cache dedupes concurrent lookups of a plan: one request per plan per window.
    const networks = yield* LookupCache.make({
      capacity: 1024,
      lookup: lookupNetwork,
      timeToLive: (exit) => Exit.isSuccess(exit) ? planTtl : Duration.min(planTtl, PLAN_FAILURE_TTL)
    })

    // No span of its own: a cached lookup is a map read, and a real one shows as the client's span.
    const networkFor = options.network !== undefined
      ? ((network: string) => (_planId: string) => Effect.succeed(network))(options.network)
      : (planId: string) =>
        networks(planId).pipe(
          Effect.orElseSucceed(() => defaultNetwork)
        )

    // Warm, every plan's network is in the cache: answered at once, no fiber per plan. Only the
    // misses are looked up, all at once.
    const networksFor = options.network !== undefined
      ? ((network: string) => (planIds: ReadonlyArray<string>) => Effect.succeed(planIds.map(() => network)))(
        options.network
      )
      : (planIds: ReadonlyArray<string>) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const known = planIds.map((planId) => networks.peek(planId, now))
          if (known.every((network) => network !== undefined)) return Effect.succeed(known as ReadonlyArray<string>)
          return Effect.forEach(
            planIds,
            (planId, i) => known[i] !== undefined ? Effect.succeed(known[i]!) : networkFor(planId),
            { concurrency: "unbounded" }
          )
        })

    // The same cache read without an Effect, on the layer's clock (a `TestClock` in tests).
    const cachedNetworks = options.network !== undefined
      ? ((network: string) => (planIds: ReadonlyArray<string>) => planIds.map(() => network))(options.network)
      : (planIds: ReadonlyArray<string>): ReadonlyArray<string> | undefined => {
        const now = clock.unsafeCurrentTimeMillis()
        const known: Array<string> = []
        for (const planId of planIds) {
          const network = networks.peek(planId, now)
          if (network === undefined) return undefined
          known.push(network)
        }
        return known
      }

    return Facilitator.of({ verify, settle, networkFor, networksFor, cachedNetworks, honoursDeadline: true })
  })

// The clients made by `layerFetchClient`: exactly `FetchHttpClient`'s, nothing wrapped around them.
const fetchClients = new WeakSet<HttpClient.HttpClient>()

/**
 * `FetchHttpClient.layer` (from `@effect/platform`), marked for the live layer: over this client,
 * with no tracer installed, verify and settle call `fetch` themselves instead of going through the
 * platform client, ~350 µs of CPU less per backend request (the same URL, headers, body, response
 * bounds, failures and redaction; a `FetchHttpClient.Fetch` service in context is used, a
 * `FetchHttpClient.RequestInit` one sends through the client). With a tracer installed, requests go
 * through the client and its span. The Lambda adapters' default facilitator uses it.
 *
 * @example
 * ```ts
 * import { Nevermined } from "@effect-x402/core"
 * import { Layer } from "effect"
 *
 * const FacilitatorLive = Nevermined.layerConfig().pipe(Layer.provide(Nevermined.layerFetchClient))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerFetchClient: Layer.Layer<HttpClient.HttpClient> = FetchHttpClient.layer.pipe(
  Layer.tap((context) => Effect.sync(() => fetchClients.add(Context.get(context, HttpClient.HttpClient))))
)

/**
 * The live `Facilitator` on the Nevermined backend. Requires an `HttpClient`: provide
 * `layerFetchClient` (the fetch client, with the lean path), `FetchHttpClient.layer` (from
 * `@effect/platform`) or `NodeHttpClient.layer` (from `@effect/platform-node`). A malformed API key
 * fails the layer with `InvalidApiKey` (which never contains the key).
 *
 * @example
 * ```ts
 * import { Nevermined } from "@effect-x402/core"
 * import { Layer, Redacted } from "effect"
 *
 * const FacilitatorLive = Nevermined.layer({ apiKey: Redacted.make(process.env.NVM_API_KEY!) }).pipe(
 *   Layer.provide(Nevermined.layerFetchClient)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Facilitator, InvalidApiKey, HttpClient.HttpClient> =>
  Layer.effect(Facilitator, make(options))

/**
 * The live `Facilitator` configured with `Config` values, field by field (as `@effect/ai-openai`'s
 * `OpenAiClient.layerConfig`). What is not given is read from the environment: the API key from
 * `NVM_API_KEY` (as `Redacted`), the environment from `NVM_ENVIRONMENT` and the backend URL from
 * `NVM_BACKEND_URL` (both optional).
 *
 * @example
 * ```ts
 * import { Nevermined } from "@effect-x402/core"
 * import { Config, Layer } from "effect"
 *
 * const FacilitatorLive = Nevermined.layerConfig({
 *   apiKey: Config.redacted("SELLER_NVM_KEY"),
 *   timeouts: Config.succeed({ settle: "10 seconds" })
 * }).pipe(Layer.provide(Nevermined.layerFetchClient))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Partial<Options>> = {}
): Layer.Layer<Facilitator, ConfigError.ConfigError | InvalidApiKey, HttpClient.HttpClient> =>
  Layer.effect(
    Facilitator,
    Effect.gen(function*() {
      // `Config.unwrap` of an empty record does not succeed with `{}`: nothing given, nothing to read.
      const given: Partial<Options> = Config.isConfig(options) || Object.keys(options).length > 0
        ? yield* Config.unwrap(options)
        : {}
      const defaults = yield* Config.all({
        apiKey: given.apiKey !== undefined ? Config.succeed(given.apiKey) : Config.redacted("NVM_API_KEY"),
        environment: given.environment !== undefined
          ? Config.succeed(Option.some(given.environment))
          : Config.option(Config.literal(...Environment.literals)("NVM_ENVIRONMENT")),
        backendUrl: given.backendUrl !== undefined
          ? Config.succeed(Option.some(given.backendUrl))
          : Config.option(Config.string("NVM_BACKEND_URL"))
      })
      return yield* make({
        ...given,
        apiKey: defaults.apiKey,
        environment: Option.getOrUndefined(defaults.environment),
        backendUrl: Option.getOrUndefined(defaults.backendUrl)
      })
    })
  )
