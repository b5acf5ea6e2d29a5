// Quick A/B helper for local perf work: times N warm requiresPayment calls in this process and
// prints min / median. Compare two runs of it before and after a change (same machine state).
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { AgentCoreEvents } from "@effect-x402/testing"
import { immediateFacilitator } from "./fixtures.js"

const n = Number(process.argv[2] ?? 5000)
const handler = requiresPayment({ planId: "plan-1", agentId: "agent-1", credits: 1, layer: immediateFacilitator })(
  () => ({ content: [{ type: "text", text: "ok" }] })
)
const event = AgentCoreEvents.request({ tool: "weather", token: "nvm_tok_00000001.k3y0f4cc3ss" })
const context = AgentCoreEvents.context()
for (let i = 0; i < 2000; i++) await handler(event, context)
const times: Array<number> = []
for (let i = 0; i < n; i++) {
  const start = process.hrtime.bigint()
  await handler(event, context)
  times.push(Number(process.hrtime.bigint() - start) / 1000)
}
times.sort((a, b) => a - b)
const at = (q: number) => times[Math.floor(n * q)].toFixed(1)
console.log(`requiresPayment: min ${at(0)} µs, median ${at(0.5)} µs, p90 ${at(0.9)} µs`)
