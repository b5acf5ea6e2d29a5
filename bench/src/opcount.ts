// Counts the Effect operations of one warm paid `requiresPayment` call, and those that run inside
// the call's span, against the 1-span Effect floor:
//   npx tsx bench/src/opcount.ts          (counts)
//   npx tsx bench/src/opcount.ts --list   (also every operation of one call of ours, in order)
// Why it matters: with an OpenTelemetry tracer installed, `@effect/opentelemetry` runs every
// operation of a fiber inside the current span's OTel context (a new context and an
// AsyncLocalStorage frame per operation, ~320 bytes of garbage each): a call's cost under a tracer
// grows with its operations inside the span. Without a tracer an operation is cheap, but not free.
// Counts, not times: the same on a loaded machine.
import * as RequiresPayment from "@effect-x402/lambda/RequiresPayment"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as RuntimeFlags from "effect/RuntimeFlags"
import * as Supervisor from "effect/Supervisor"
import * as Tracer from "effect/Tracer"
import {
  AGENT_ID,
  agentCoreEvent,
  ENDPOINT,
  immediateFacilitator,
  lambdaContext,
  mcpTool,
  PLAN_ID,
  TOKEN
} from "./fixtures.js"
import * as Floor from "./floor.js"

// A tracer whose spans go nowhere and whose `context` (called once per operation) counts.
let ops = 0
let inSpan = 0
const counting = Tracer.make({
  span: (name, parent, context, links, startTime, kind) => {
    let status: Tracer.SpanStatus = { _tag: "Started", startTime }
    const attributes = new Map<string, unknown>()
    return {
      _tag: "Span",
      name,
      spanId: "span",
      traceId: "trace",
      parent,
      context,
      get status() {
        return status
      },
      attributes,
      links,
      sampled: true,
      kind,
      end: (endTime, exit) => {
        status = { _tag: "Ended", endTime, exit, startTime }
      },
      attribute: (key, value) => {
        attributes.set(key, value)
      },
      event: () => undefined,
      addLinks: () => undefined
    }
  },
  context: (execute, fiber) => {
    ops++
    if (fiber.currentSpan !== undefined) inSpan++
    return execute()
  }
})

// Sees every operation (op supervision on), and writes one line per operation while `log` is set.
class Recorder extends Supervisor.AbstractSupervisor<void> {
  log: Array<string> | undefined
  get value() {
    return Effect.void
  }
  override onEffect(fiber: { readonly currentSpan?: unknown }, effect: unknown): void {
    if (this.log === undefined) return
    const op = effect as Record<string, unknown>
    const hint = [op["effect_instruction_i0"], op["effect_instruction_i1"], op["effect_instruction_i2"]]
      .map((f) => typeof f === "function" ? String(f).replace(/\s+/g, " ").slice(0, 80) : "")
      .filter((s) => s.length > 0)
      .join(" | ")
    this.log.push(`${fiber.currentSpan !== undefined ? "in span" : "       "} ${String(op["_op"])} ${hint}`)
  }
}

const event = agentCoreEvent({ token: TOKEN })
const config = { planIds: [PLAN_ID], agentId: AGENT_ID, endpoint: ENDPOINT, credits: 1 }
const tracer = Layer.setTracer(counting)
const ours = RequiresPayment.requiresPayment({ ...config, layer: Layer.merge(immediateFacilitator, tracer) })(mcpTool)
const floor = Floor.make(mcpTool, tracer)

const count = async (name: string, call: () => Promise<unknown>) => {
  for (let i = 0; i < 100; i++) await call()
  ops = 0
  inSpan = 0
  for (let i = 0; i < 100; i++) await call()
  console.log(`${name}: ${ops / 100} operations per call, ${inSpan / 100} inside the call's span`)
}
await count("effect-x402 requiresPayment", () => ours(event, lambdaContext))
await count(Floor.FLOOR_ONE_SPAN, () => floor.oneSpan(event))

if (process.argv.includes("--list")) {
  const recorder = new Recorder()
  const listed = RequiresPayment.requiresPayment({
    ...config,
    layer: Layer.mergeAll(
      immediateFacilitator,
      tracer,
      Supervisor.addSupervisor(recorder),
      RuntimeFlags.enableOpSupervision
    )
  })(mcpTool)
  for (let i = 0; i < 10; i++) await listed(event, lambdaContext)
  recorder.log = []
  await listed(event, lambdaContext)
  console.log(recorder.log.join("\n"))
}
