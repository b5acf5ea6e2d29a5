import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Layer, Logger } from "effect"

// Traces through OpenTelemetry (e.g. a BatchSpanProcessor over an OTLP exporter to the ADOT
// collector / X-Ray), logs as one JSON object per line for CloudWatch Logs Insights.
export const observability = (spanProcessor: SpanProcessor) =>
  Layer.mergeAll(
    NodeSdk.layer(() => ({ resource: { serviceName: "weather-agent" }, spanProcessor })),
    Logger.json
  )

export const makeHandler = (spanProcessor: SpanProcessor) =>
  requiresPayment({
    planId: process.env.NVM_PLAN_ID ?? "plan-123",
    tools: { forecast: { description: "Tomorrow's weather", inputSchema: { type: "object" }, credits: 2 } },
    services: observability(spanProcessor)
  })(() => ({ content: [{ type: "text", text: "Sunny" }] }))
