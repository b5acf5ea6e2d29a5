/**
 * The Nevermined backend: environments, their URLs and default networks, and API-key parsing.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

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
