/**
 * One span per paid call, and none when nobody listens: what an adapter (a Lambda handler, an HTTP
 * middleware, an MCP transport) wraps its whole call in, so that the pipeline's inner steps annotate
 * that one span rather than open their own. With the default tracer (none installed: the Lambda
 * default) or `Layer.setTracerEnabled(false)` nothing is made at all.
 *
 * Never `Effect.fn` or `Effect.withSpan` on the per-call path: a stack capture and a span per call
 * showed in every profile (see `bench/README.md`).
 *
 * @since 0.2.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as Tracer from "effect/Tracer"
import * as internal from "./internal/callSpan.js"

/**
 * Span attributes.
 *
 * @since 0.2.0
 * @category models
 */
export type Attributes = internal.Attributes

/**
 * Runs a whole call under one span named `name` (with `attributes`, computed only when a tracer
 * listens). Inside an open call span it runs in that span instead and sets `attributes` on it.
 *
 * @since 0.2.0
 * @category combinators
 */
export const wrap: <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  name: string,
  attributes?: () => Attributes
) => Effect.Effect<A, E, R> = internal.wrap

/**
 * Sets attributes on the call span this fiber runs in; nothing when nobody listens.
 *
 * @since 0.2.0
 * @category combinators
 */
export const annotate: (attributes: Attributes) => Effect.Effect<void> = internal.annotate

/**
 * `wrap` for a call written as plain code: `body` gets the call span (when a tracer listens) and
 * the running fiber, to read its services and annotate the span without an Effect of their own.
 * The whole call then costs one Effect operation here, and none more for each annotation.
 * `body` runs before the fiber enters the new span: annotate `span`, not `currentOf(fiber)`.
 *
 * @since 0.4.0
 * @category combinators
 */
export const withCall: <A, E, R>(
  name: string,
  attributes: () => Attributes,
  body: (span: Tracer.Span | undefined, fiber: Fiber.RuntimeFiber<unknown, unknown>) => Effect.Effect<A, E, R>
) => Effect.Effect<A, E, R> = internal.step

/**
 * The call span the fiber runs in, when a tracer listens (for `set`); `undefined` otherwise.
 *
 * @since 0.4.0
 * @category accessors
 */
export const currentOf: (fiber: Fiber.RuntimeFiber<unknown, unknown>) => Tracer.Span | undefined = internal.currentOf

/**
 * Sets attributes on a span, if there is one: `annotate` without an Effect.
 *
 * @since 0.4.0
 * @category combinators
 */
export const set: (span: Tracer.Span | undefined, attributes: Attributes) => void = internal.set

/**
 * The current time of the fiber's `Clock` (a `TestClock` in tests), read without an Effect.
 *
 * @since 0.4.0
 * @category accessors
 */
export const nowOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): number =>
  Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
