/**
 * The `effect-x402` executable.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Cli from "./Cli.js"

Cli.run(process.argv).pipe(
  // A CliError is for the person at the terminal: its message alone, exit code 1. Usage errors are
  // already printed by @effect/cli.
  Effect.catchTag(
    "CliError",
    (error) => Effect.zipRight(Console.error(`effect-x402: ${error.message}`), Effect.fail(error))
  ),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
