/**
 * Cold-start checks of the default facilitator's configuration. A Lambda whose environment lacks
 * the API key used to answer every call, unpaid ones included, with a generic 500 and a log line
 * per call; now the handler's construction (the function's init phase) stops with a message that
 * names the variable to set, which shows once as the init error in the function's log.
 *
 * Only the default facilitator is checked: a user-given `layer` brings its own configuration.
 * Messages never echo a value read from the environment (the key is a secret).
 *
 * @internal
 */
import { Facilitator } from "@effect-x402/core/Facilitator"
import * as Nevermined from "@effect-x402/core/Nevermined"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

const readEnv = (name: string): string | undefined => {
  const value = typeof process === "undefined" ? undefined : process.env[name]
  return value === undefined || value.trim().length === 0 ? undefined : value
}

/**
 * Throws an `Error` naming what to fix when the environment cannot configure the default
 * facilitator: no `NVM_API_KEY`, a key that is not `<environment>:<token>`, or an
 * `NVM_ENVIRONMENT` that names no Nevermined environment.
 */
export const assertDefaultFacilitatorConfigured = (): void => {
  const key = readEnv("NVM_API_KEY")
  if (key === undefined) {
    throw new Error(
      "x402: NVM_API_KEY is not set. The default facilitator (the live Nevermined backend) needs your " +
        "Nevermined API key: set NVM_API_KEY in the function's environment (from a secret), or pass " +
        "`layer` (e.g. Nevermined.layer({ apiKey }) or a test layer) to the handler's options."
    )
  }
  const parsed = Nevermined.parseApiKey(key)
  if (Either.isLeft(parsed)) {
    throw new Error(
      `x402: NVM_API_KEY is not a Nevermined API key (${parsed.left.detail}). ` +
        "Copy the key as the Nevermined app shows it, e.g. sandbox:eyJ..."
    )
  }
  const environment = readEnv("NVM_ENVIRONMENT")
  if (environment !== undefined && !(Nevermined.Environment.literals as ReadonlyArray<string>).includes(environment)) {
    throw new Error(
      `x402: NVM_ENVIRONMENT must be one of ${Nevermined.Environment.literals.join(", ")} ` +
        "(or unset, to follow the API key's prefix)."
    )
  }
}

/**
 * The adapters' default facilitator: the live Nevermined layer over `Nevermined.layerFetchClient`,
 * configured from `NVM_API_KEY`, `NVM_ENVIRONMENT` and `NVM_BACKEND_URL` when the runtime is built
 * (the first invocation), as `Nevermined.layerConfig()` reads them, without `Config`: the variables
 * are read from `process.env` directly, which keeps `effect/Config` (~2.3 KB minified) out of every
 * Lambda bundle. No `ConfigProvider` reaches an adapter's default facilitator (the user's `services`
 * layer is built beside it, not under it), so nothing a user could configure is lost.
 *
 * A blank variable is unset, as for the checks above: a blank `NVM_ENVIRONMENT` follows the key's
 * prefix (through `Config` it failed every call after the checks had passed). What the checks stop
 * at construction fails the layer with a `ConfigError` naming the variable, never its value.
 */
export const environmentFacilitator: Layer.Layer<
  Facilitator,
  ConfigError.ConfigError | Nevermined.InvalidApiKey
> = /* @__PURE__ */ Layer.provide(
  /* @__PURE__ */ Layer.effect(
    Facilitator,
    /* @__PURE__ */ Effect.gen(function*() {
      const apiKey = readEnv("NVM_API_KEY")
      if (apiKey === undefined) {
        return yield* Effect.fail(
          ConfigError.MissingData(["NVM_API_KEY"], "Expected NVM_API_KEY to exist in the process context")
        )
      }
      const environment = readEnv("NVM_ENVIRONMENT")
      const environments: ReadonlyArray<string> = Nevermined.Environment.literals
      if (environment !== undefined && !environments.includes(environment)) {
        return yield* Effect.fail(
          ConfigError.InvalidData(
            ["NVM_ENVIRONMENT"],
            `Expected one of (${environments.join(", ")}), not the value given`
          )
        )
      }
      return yield* Nevermined.make({
        apiKey: Redacted.make(apiKey),
        environment: environment as Nevermined.Environment | undefined,
        backendUrl: readEnv("NVM_BACKEND_URL")
      })
    })
  ),
  Nevermined.layerFetchClient
)
