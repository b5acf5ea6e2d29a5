/**
 * @since 0.1.0
 */

/**
 * The `effect-x402` command line.
 *
 * @since 0.1.0
 */
export * as Cli from "./Cli.js"

/**
 * x402 headers decoded for people, tokens without their secret parts.
 *
 * @since 0.1.0
 */
export * as Headers from "./Headers.js"
