import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import type { MetricReader } from "@opentelemetry/sdk-metrics"

// The payment metrics (x402_calls_paid, x402_calls_refused{reason}, x402_settle_outcome_unknown,
// x402_credits_settled, x402_facilitator_duration_ms{operation}) through the same SDK as traces:
// give it a metric reader, e.g. a PeriodicExportingMetricReader over an OTLP exporter.
export const makeHandler = (metricReader: MetricReader) =>
  requiresPayment({
    planId: process.env.NVM_PLAN_ID ?? "plan-123",
    tools: { forecast: { description: "Tomorrow's weather", inputSchema: { type: "object" }, credits: 2 } },
    services: NodeSdk.layer(() => ({ resource: { serviceName: "weather-agent" }, metricReader }))
  })(() => ({ content: [{ type: "text", text: "Sunny" }] }))
