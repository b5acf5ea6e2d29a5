/**
 * A real tracer for the "tracer installed" candidates: `@effect/opentelemetry` over the
 * OpenTelemetry SDK, with a simple processor into an in-memory exporter (spans are kept in memory,
 * then dropped now and then so the run does not grow without bound).
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import type * as Layer from "effect/Layer"

export const exporter = new InMemorySpanExporter()

const timer = setInterval(() => exporter.reset(), 1000)
timer.unref()

/** The tracer layer: every span is exported (sampled), as in production with tracing on. */
export const layer: Layer.Layer<never> = NodeSdk.layer(() => ({
  resource: { serviceName: "effect-x402-bench" },
  spanProcessor: new SimpleSpanProcessor(exporter)
})) as unknown as Layer.Layer<never>
