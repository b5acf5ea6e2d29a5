/**
 * One Effect runtime per Lambda cold start: the layers (facilitator, HTTP connection pool, the
 * user's services) are built on the first invocation and reused by every warm one. Library code
 * here never exits the process.
 *
 * @since 0.1.0
 */
import type { Facilitator } from "@effect-x402/core/Facilitator"
import * as Nevermined from "@effect-x402/core/Nevermined"
import type { Context as LambdaContext } from "aws-lambda"
import * as Cause from "effect/Cause"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Runtime from "effect/Runtime"
import { assertDefaultFacilitatorConfigured, environmentFacilitator } from "./internal/coldStart.js"

/**
 * The Lambda invocation context, re-exported from `@types/aws-lambda`.
 *
 * @since 0.1.0
 * @category models
 */
export type { LambdaContext }

/**
 * A Lambda handler as the Node.js runtime calls it.
 *
 * @since 0.1.0
 * @category models
 */
export type Handler<Event, Result> = (event: Event, context: LambdaContext) => Promise<Result>

/**
 * The handler's requirements, when it returns an Effect.
 *
 * @since 0.1.0
 * @category type-level
 */
export type RequirementsOf<T> = 0 extends (1 & T) ? never // `any`: nothing to check
  : T extends Effect.Effect<infer _A, infer _E, infer R> ? R
  : never

/**
 * A handler whose Effect needs services the options do not provide is refused at compile time,
 * with the missing services named.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Checked<H extends (...args: ReadonlyArray<never>) => unknown, R> =
  [Exclude<RequirementsOf<ReturnType<H>>, R>] extends [never] ? H
    : H & { readonly "x402: services missing from the options": Exclude<RequirementsOf<ReturnType<H>>, R> }

/**
 * The default facilitator: the live Nevermined backend configured from the environment
 * (`NVM_API_KEY`, `NVM_ENVIRONMENT`, `NVM_BACKEND_URL`), over `fetch`, whose connection pool then
 * lives as long as the Lambda instance.
 *
 * @since 0.1.0
 * @category layers
 */
export const defaultFacilitator: Layer.Layer<
  Facilitator,
  ConfigError.ConfigError | Nevermined.InvalidApiKey
> = /* @__PURE__ */ Layer.provide(/* @__PURE__ */ Nevermined.layerConfig(), Nevermined.layerFetchClient)

/**
 * What every paid Lambda adapter takes to build its runtime.
 *
 * @since 0.1.0
 * @category models
 */
export interface RuntimeOptions<R = never, LE = never, SE = never> {
  /** The facilitator. Default: the live Nevermined layer from the environment, over `fetch`. */
  readonly layer?: Layer.Layer<Facilitator, LE> | undefined
  /** The services the handler's Effect (and an Effect credits policy) needs. */
  readonly services?: Layer.Layer<R, SE> | undefined
  /** Shares layer builds with other runtimes (e.g. several handlers in one Lambda). */
  readonly memoMap?: Layer.MemoMap | undefined
}

/**
 * The layer of a paid handler: the given facilitator (else the default one: `defaultFacilitator`'s
 * layer, reading the same variables from `process.env` without `Config`, which keeps `effect/Config`
 * out of every Lambda bundle) with the services the handler needs. Without a given facilitator, the
 * environment is checked on the spot (cold start): no `NVM_API_KEY`, a malformed one or an unknown
 * `NVM_ENVIRONMENT` throws an `Error` that names the variable (since 0.2.0; before, every call
 * answered a generic internal error).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerOf = <R, LE, SE>(options: RuntimeOptions<R, LE, SE>): Layer.Layer<Facilitator | R, unknown> => {
  if (options.layer === undefined) assertDefaultFacilitatorConfigured()
  const facilitator: Layer.Layer<Facilitator, unknown> = options.layer ?? environmentFacilitator
  const services: Layer.Layer<R, unknown> = options.services ?? (Layer.empty as Layer.Layer<R>)
  return Layer.merge(facilitator, services)
}

/**
 * A runtime that is built lazily, once, and rebuilt only when its build failed (a transient
 * failure at cold start must not poison the instance for its whole life).
 *
 * @since 0.1.0
 * @category models
 */
export interface LambdaRuntime<R> {
  /**
   * Runs a program. Never rejects: a failed build or a defect is handed to `fallback` (after
   * being logged), whose answer is returned instead.
   */
  readonly run: <A>(
    effect: Effect.Effect<A, never, R>,
    fallback: (cause: Cause.Cause<unknown>) => A
  ) => Promise<A>
  /** Releases the layers' resources (for tests and graceful shutdown). */
  readonly dispose: () => Promise<void>
}

/**
 * Makes a runtime from a layer. Nothing is built until the first `run`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <R, E>(
  layer: Layer.Layer<R, E>,
  options: { readonly memoMap?: Layer.MemoMap | undefined } = {}
): LambdaRuntime<R> => {
  let managed = ManagedRuntime.make(layer, options.memoMap)
  // Warm invocations go straight to the built runtime's runner, made once.
  let built: (<A>(effect: Effect.Effect<A, never, R>) => Promise<Exit.Exit<A, never>>) | undefined
  const logged = <A>(message: string, cause: Cause.Cause<unknown>, fallback: (cause: Cause.Cause<unknown>) => A) => {
    try {
      Effect.runSync(Effect.logError(message, cause))
    } catch {
      // logging must never break the answer
    }
    return fallback(cause)
  }
  const run = async <A>(
    effect: Effect.Effect<A, never, R>,
    fallback: (cause: Cause.Cause<unknown>) => A
  ): Promise<A> => {
    try {
      let runner = built
      if (runner === undefined) {
        const current = managed
        const build = await Effect.runPromiseExit(current.runtimeEffect)
        if (Exit.isFailure(build)) {
          if (managed === current) {
            managed = ManagedRuntime.make(layer, options.memoMap)
            current.dispose().catch(() => undefined)
          }
          return logged("x402: the Lambda runtime could not be built", build.cause, fallback)
        }
        runner = built = Runtime.runPromiseExit(build.value)
      }
      const exit = await runner(effect)
      return Exit.isSuccess(exit) ? exit.value : logged("x402: the handler program failed", exit.cause, fallback)
    } catch (defect) {
      return logged("x402: the handler program failed", Cause.die(defect), fallback)
    }
  }
  return {
    run,
    dispose: () => {
      built = undefined
      return managed.dispose()
    }
  }
}

/**
 * Turns an Effect handler into a Lambda handler over a runtime built once per cold start.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toHandler = <Event, A, R, E>(options: {
  readonly layer: Layer.Layer<R, E>
  readonly handler: (event: Event, context: LambdaContext) => Effect.Effect<A, never, R>
  readonly fallback: (cause: Cause.Cause<unknown>) => A
  readonly memoMap?: Layer.MemoMap | undefined
}): Handler<Event, A> & { readonly runtime: LambdaRuntime<R> } => {
  const runtime = make(options.layer, { memoMap: options.memoMap })
  const handler = (event: Event, context: LambdaContext): Promise<A> =>
    runtime.run(Effect.suspend(() => options.handler(event, context)), options.fallback)
  return Object.assign(handler, { runtime })
}
