/**
 * One span per paid call, and none when nobody listens.
 *
 * A span made with the default tracer (none installed: the Lambda default) or with
 * `Layer.setTracerEnabled(false)` is never exported, yet `Effect.withSpan` still makes one: random
 * ids, a bigint clock read, a copy of the fiber's context, and `annotateCurrentSpan` on a disabled
 * tracer fails with a stack capture. Here a step first asks whether a tracer listens; if not, it
 * runs bare. If one does, the outermost step of a call opens the call's span (with its attributes
 * at creation) and every inner step annotates that span instead of opening one of its own.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Tracer from "effect/Tracer"

/** Span attributes. */
export type Attributes = Readonly<Record<string, unknown>>

// The tracer every fiber has when none is installed: its spans go nowhere.
const defaultTracer: Tracer.Tracer = Context.unsafeGet(
  DefaultServices.liveServices as Context.Context<Tracer.Tracer>,
  Tracer.Tracer
)

// The spans opened here: an inner step reuses one rather than open a child.
const callSpans = new WeakSet<Tracer.Span>()

/**
 * Whether a tracer that exports spans is installed and enabled on this fiber.
 *
 * @internal
 */
export const listening = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean =>
  fiber.currentTracer !== defaultTracer && fiber.getFiberRef(FiberRef.currentTracerEnabled)

/**
 * The call span this fiber runs in, when a tracer listens.
 *
 * @internal
 */
export const currentOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): Tracer.Span | undefined => {
  if (!listening(fiber)) return undefined
  const span = fiber.currentSpan
  return span !== undefined && span._tag === "Span" && callSpans.has(span) ? span : undefined
}

/**
 * The call span this fiber runs in (see `currentOf`), as an Effect.
 *
 * @internal
 */
export const current: Effect.Effect<Tracer.Span | undefined> = Effect.withFiberRuntime((fiber) =>
  Effect.succeed(currentOf(fiber))
)

/**
 * Sets attributes on a span, if there is one.
 *
 * @internal
 */
export const set = (span: Tracer.Span | undefined, attributes: Attributes): void => {
  if (span === undefined) return
  for (const key in attributes) span.attribute(key, attributes[key])
}

/**
 * Annotates the call span this fiber runs in; nothing when nobody listens.
 *
 * @internal
 */
export const annotate = (attributes: Attributes): Effect.Effect<void> =>
  Effect.withFiberRuntime((fiber) => {
    set(currentOf(fiber), attributes)
    return Effect.void
  })

/**
 * Runs a step of a call:
 * - nobody listens: `body(undefined)`, no span;
 * - a call span is open: `body(thatSpan)`, after setting `attributes` on it (unless `reuse` is
 *   `"quiet"`: an inner layer that has nothing to add);
 * - otherwise: opens the call span `name` with `attributes` and runs `body(span)` inside it.
 *
 * `body` also gets the running fiber, to read its services without an Effect of their own.
 * `attributes` is a function so that nothing is computed (a token fingerprint, a joined plan list)
 * when nobody listens.
 *
 * @internal
 */
export const step = <A, E, R>(
  name: string,
  attributes: () => Attributes,
  body: (span: Tracer.Span | undefined, fiber: Fiber.RuntimeFiber<unknown, unknown>) => Effect.Effect<A, E, R>,
  reuse: "annotate" | "quiet" = "annotate"
): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime<A, E, R>((fiber) => {
    if (!listening(fiber)) return body(undefined, fiber)
    const open = fiber.currentSpan
    if (open !== undefined && open._tag === "Span" && callSpans.has(open)) {
      if (reuse === "annotate") set(open, attributes())
      return body(open, fiber)
    }
    return Effect.useSpan(name, { attributes: attributes(), captureStackTrace: false }, (span) => {
      callSpans.add(span)
      return Effect.withParentSpan(body(span, fiber), span)
    })
  })

/**
 * `step` for an effect that needs no span handle: what an adapter wraps its whole call in.
 *
 * @internal
 */
export const wrap = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  name: string,
  attributes: () => Attributes = noAttributes
): Effect.Effect<A, E, R> => step(name, attributes, () => effect)

const noAttributes = (): Attributes => ({})
