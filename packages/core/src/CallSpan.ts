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
import type * as Effect from "effect/Effect"
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
