/**
 * Captures everything a program says about itself (log lines with their causes and annotations,
 * spans with their attributes, events and exits) so tests can assert on it, e.g. that no secret
 * ever appears in it.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import * as Inspectable from "effect/Inspectable"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"

/**
 * A span as it was recorded.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordedSpan {
  readonly name: string
  readonly attributes: Map<string, unknown>
  readonly events: Array<{ readonly name: string; readonly attributes: Record<string, unknown> | undefined }>
  exit: Exit.Exit<unknown, unknown> | undefined
}

/**
 * What was captured.
 *
 * @since 0.1.0
 * @category models
 */
export interface Captured {
  /** Each log line, rendered with its level, message, cause and annotations. */
  readonly logs: Array<string>
  readonly spans: Array<RecordedSpan>
  /** Logs and spans (names, attributes, events, failures) rendered as one text, for searching. */
  readonly text: () => string
  /** Logger and tracer layers that feed this capture. */
  readonly layer: Layer.Layer<never>
}

let ids = 0

class CapturingSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly spanId: string
  readonly traceId: string
  readonly sampled = true
  status: Tracer.SpanStatus
  readonly attributes = new Map<string, unknown>()
  readonly links: Array<Tracer.SpanLink>
  constructor(
    readonly record: RecordedSpan,
    readonly name: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Context.Context<never>,
    links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind
  ) {
    ids += 1
    this.spanId = `span${ids}`
    this.traceId = Option.match(parent, { onNone: () => `trace${ids}`, onSome: (p) => p.traceId })
    this.status = { _tag: "Started", startTime }
    this.links = [...links]
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
    this.record.exit = exit
  }
  attribute(key: string, value: unknown): void {
    this.attributes.set(key, value)
    this.record.attributes.set(key, value)
  }
  event(name: string, _startTime: bigint, attributes?: Record<string, unknown>): void {
    this.record.events.push({ name, attributes })
  }
  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.links.push(...links)
  }
}

const render = (u: unknown): string => {
  if (typeof u === "string") return u
  try {
    return Inspectable.format(u)
  } catch {
    return String(u)
  }
}

/**
 * Starts a capture. Provide `captured.layer` to the program under test.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (): Captured => {
  const logs: Array<string> = []
  const spans: Array<RecordedSpan> = []
  const logger = Logger.make(({ annotations, cause, logLevel, message }) => {
    const parts = [logLevel.label, ...(Array.isArray(message) ? message : [message]).map(render)]
    if (!Cause.isEmpty(cause)) parts.push(Cause.pretty(cause, { renderErrorCause: true }))
    for (const [key, value] of HashMap.toEntries(annotations)) parts.push(`${key}=${render(value)}`)
    logs.push(parts.join(" "))
  })
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const record: RecordedSpan = { name, attributes: new Map(), events: [], exit: undefined }
      spans.push(record)
      return new CapturingSpan(record, name, parent, context, links, startTime, kind)
    },
    context: (f) => f()
  })
  const text = () =>
    [
      ...logs,
      ...spans.map((span) =>
        [
          span.name,
          ...[...span.attributes].map(([k, v]) => `${k}=${render(v)}`),
          ...span.events.map((e) => `${e.name} ${render(e.attributes)}`),
          span.exit && Exit.isFailure(span.exit) ? Cause.pretty(span.exit.cause, { renderErrorCause: true }) : ""
        ].join(" ")
      )
    ].join("\n")
  return {
    logs,
    spans,
    text,
    layer: Layer.mergeAll(Logger.replace(Logger.defaultLogger, logger), Layer.setTracer(tracer))
  }
}
