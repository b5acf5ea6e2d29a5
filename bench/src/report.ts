/**
 * Turns the measurements into a Markdown report (tables, machine, date) and one line per goal.
 */
import * as ChildProcess from "node:child_process"
import * as Os from "node:os"
import type { ColdStartResult } from "./coldstart.js"
import { FLOOR } from "./coldstart.js"
import * as Floor from "./floor.js"
import type { Stats } from "./harness.js"
import type { LedgerResult } from "./ledger.js"
import * as Ledger from "./ledger.js"
import type { OverheadResult, ScalingResult } from "./overhead.js"
import {
  BARE,
  FLOOR_OTEL,
  HANDWRITTEN,
  OURS_AGENTCORE,
  OURS_DISABLED,
  OURS_HTTP,
  OURS_INTERCEPTOR,
  OURS_OTEL,
  X402_CORE
} from "./overhead.js"
import type * as PyRef from "./pyref.js"
import type { LevelResult } from "./wire.js"
import * as Wire from "./wire.js"

export interface Goal {
  readonly name: string
  readonly met: boolean
  /** What was measured, e.g. `x1.62 (target <= x2)`. */
  readonly measured: string
}

export interface Results {
  readonly mode: "full" | "quick"
  readonly startedAt: Date
  readonly seconds: number
  readonly loadBefore: ReadonlyArray<number>
  readonly loadAfter: ReadonlyArray<number>
  readonly overhead?: OverheadResult | undefined
  readonly coldStart?: ColdStartResult | undefined
  readonly wire?: ReadonlyArray<LevelResult> | undefined
  readonly scaling?: ScalingResult | undefined
  readonly ledger?: LedgerResult | undefined
}

const us = (ns: number) => (ns / 1000).toFixed(ns < 10_000 ? 2 : 1)
const ms = (value: number) => value.toFixed(value < 10 ? 2 : 1)
const x = (ratio: number) => `x${ratio.toFixed(2)}`
// Where a target is tight (x1.15), two decimals could print a miss as "x1.15".
const x3 = (ratio: number) => `x${ratio.toFixed(3)}`
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string =>
  [
    `| ${header.join(" | ")} |`,
    `| ${header.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`,
    ...rows.map((row) => `| ${row.join(" | ")} |`)
  ].join("\n")

const find = (stats: ReadonlyArray<Stats>, prefix: string): Stats => {
  const found = stats.find((s) => s.name.startsWith(prefix))
  if (found === undefined) throw new Error(`report: no measurement for ${prefix}`)
  return found
}

const git = (args: ReadonlyArray<string>): string => {
  try {
    return ChildProcess.execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    return "unknown"
  }
}

export const machine = (results: Results): string => {
  const cpus = Os.cpus()
  const commit = git(["rev-parse", "--short", "HEAD"])
  const dirty = git(["status", "--porcelain", "--untracked-files=no"]).length > 0 ? " (with uncommitted changes)" : ""
  const load = (l: ReadonlyArray<number>) => l.map((v) => v.toFixed(2)).join(" / ")
  return [
    `- date: ${results.startedAt.toISOString()} (${results.mode} run, ${results.seconds.toFixed(0)} s)`,
    `- machine: ${cpus.length} x ${cpus[0]?.model ?? "unknown CPU"}, ${
      (Os.totalmem() / 2 ** 30).toFixed(1)
    } GiB, ${Os.type()} ${Os.release()} ${Os.arch()}`,
    `- node ${process.version}, commit ${commit}${dirty}`,
    `- load average (1/5/15 min) before: ${load(results.loadBefore)}, after: ${load(results.loadAfter)}`,
    // What the uncommitted changes were, when the run was made with some (e.g. a patch under review).
    ...(process.env["BENCH_NOTE"] ? [`- note: ${process.env["BENCH_NOTE"]}`] : [])
  ].join("\n")
}

const overheadTable = (measured: ReadonlyArray<Stats>, ours: string, python?: Stats): string => {
  const handwritten = find(measured, HANDWRITTEN).median
  const bare = find(measured, BARE).median
  const stats = python !== undefined ? [...measured, python] : measured
  return table(
    ["candidate", "min µs", "median µs", "p99 µs", "median vs hand-written", "overhead over bare µs", "calls timed"],
    stats.map((s) => [
      s.name.startsWith(ours) ? `**${s.name}**` : s.name,
      us(s.min),
      us(s.median),
      us(s.p99),
      x(s.median / handwritten),
      us(Math.max(0, s.median - bare)),
      String(s.samples)
    ])
  )
}

const pyrefLine = (pyref: PyRef.PyRef, ours: Stats, which: "decorator" | "interceptor"): string => {
  if (pyref._tag === "Missing") return `payments-py: not measured (${pyref.reason}).`
  const theirs = which === "decorator" ? pyref.decorator : pyref.interceptor
  if (theirs === undefined) return "payments-py: its output has no interceptor_request_response figures."
  return `payments-py ${pyref.version} on ${pyref.python} (\`${pyref.script}\`${
    pyref.vectorsChecked ? ", outputs checked against its vectors" : ""
  }): median ${us(theirs.median)} µs; ours ${us(ours.median)} µs, x${
    (ours.median / theirs.median).toFixed(2)
  } its time.`
}

export const goals = (results: Results): ReadonlyArray<Goal> => {
  const out: Array<Goal> = []
  if (results.overhead) {
    const o = results.overhead
    const mine = find(o.agentCore, OURS_AGENTCORE).median
    const http = find(o.http, OURS_HTTP).median
    const interceptor = find(o.interceptor, OURS_INTERCEPTOR).median
    const faster = (name: string, theirs: number, ours: number, target: number) =>
      out.push({
        name,
        met: theirs / ours >= target,
        measured: `${(theirs / ours).toFixed(2)}x as fast (median ${us(ours)} vs ${
          us(theirs)
        } µs), target >= ${target}x`
      })
    if (o.pyref._tag === "Measured") {
      faster("agentcore-vs-payments-py", o.pyref.decorator.median, mine, 1)
      if (o.pyref.interceptor !== undefined) {
        faster("interceptor-vs-payments-py", o.pyref.interceptor.median, interceptor, 1)
      }
    } else {
      out.push({ name: "agentcore-vs-payments-py", met: false, measured: `not measured: ${o.pyref.reason}` })
      out.push({ name: "interceptor-vs-payments-py", met: false, measured: `not measured: ${o.pyref.reason}` })
    }
    faster("agentcore-vs-x402-core", find(o.agentCore, X402_CORE).median, mine, 2)
    faster("http-vs-x402-core", find(o.http, X402_CORE).median, http, 2)
    const vsFloor = mine / find(o.agentCore, Floor.FLOOR_NO_SPAN).median
    out.push({
      name: "agentcore-vs-effect-floor",
      met: vsFloor <= 1.3,
      measured: `${x(vsFloor)} the no-span floor, no tracer installed, target <= x1.3`
    })
    const traced = find(o.agentCore, OURS_OTEL).median / find(o.agentCore, FLOOR_OTEL).median
    // The minimums too: under a tracer the medians carry the collections of the exported spans the
    // in-memory exporter keeps (bench/README.md), the minimums the call's own work.
    const tracedMin = find(o.agentCore, OURS_OTEL).min / find(o.agentCore, FLOOR_OTEL).min
    out.push({
      name: "agentcore-traced-vs-effect-floor",
      met: traced <= 1.3,
      measured: `${x(traced)} the 1-span floor, both with an OpenTelemetry tracer, target <= x1.3 (minimums: ${
        x(tracedMin)
      })`
    })
    const disabled = find(o.agentCore, OURS_DISABLED).median / mine
    out.push({
      name: "tracing-disabled-not-slower",
      met: disabled <= 1.05,
      measured: `${x(disabled)} the call with no tracer installed, target <= x1.05 (noise)`
    })
    for (
      const [stats, name] of [[o.agentCore, OURS_AGENTCORE], [o.http, OURS_HTTP], [
        o.interceptor,
        OURS_INTERCEPTOR
      ]] as const
    ) {
      const s = find(stats, name)
      // The same ratio of the baselines timed in the same rounds: how much of the tail is the
      // machine's (GC of every candidate's garbage, preemption on two shared cores), not ours.
      const context = [Floor.FLOOR_NO_SPAN, HANDWRITTEN].map((baseline) => {
        const b = stats.find((c) => c.name === baseline)
        return b === undefined ? undefined : `${baseline} ${x(b.p99 / b.median)}`
      }).filter((c) => c !== undefined)
      out.push({
        name: `p99-${name.split(" ")[1]}`,
        met: s.p99 <= 5 * s.median,
        measured: `p99 ${x(s.p99 / s.median)} the median (${us(s.p99)} / ${us(s.median)} µs), target <= x5${
          context.length > 0 ? `; same rounds: ${context.join(", ")}` : ""
        }`
      })
    }
  }
  if (results.coldStart) {
    const c = results.coldStart
    const size = c.example.bytes / c.floor.bytes
    const init = c.init.example.median / c.init.floor.median
    out.push({ name: "bundle-size-vs-floor", met: size <= 1.15, measured: `${x3(size)}, target <= x1.15` })
    out.push({
      name: "bundle-size-under-500KB",
      met: c.example.bytes < 500 * 1024,
      measured: `${kb(c.example.bytes)}, target < 500 KiB`
    })
    // Wall time on two shared cores swings with the load (x0.94 to x1.34 in back-to-back runs); the
    // import's CPU time is steadier and is what a Lambda's single-tenant init spends: both shown.
    const initCpu = c.initCpu === undefined ? undefined : c.initCpu.example.median / c.initCpu.floor.median
    out.push({
      name: "init-time-vs-floor",
      met: init <= 1.15,
      measured: `${x3(init)} (wall medians)${initCpu === undefined ? "" : `, CPU ${x3(initCpu)}`}, target <= x1.15`
    })
  }
  if (results.wire) {
    for (const level of results.wire) {
      const ours = level.rows.find((r) => r.name === Wire.OURS)
      const hand = level.rows.find((r) => r.name === Wire.HANDWRITTEN)
      const floor = level.rows.find((r) => r.name === Wire.FLOOR)
      if (ours !== undefined && hand !== undefined) {
        const throughput = ours.callsPerSecond / hand.callsPerSecond
        const cpu = ours.cpuMicrosPerCall / hand.cpuMicrosPerCall
        // What the Effect runtime alone costs over the wire, from the same rounds.
        const sameRounds = (of: (row: NonNullable<typeof hand>) => number, what: string) =>
          floor === undefined ? "" : `; same rounds: Effect floor ${x(of(floor) / of(hand))} the hand-written ${what}`
        out.push({
          name: `wire-throughput-c${level.concurrency}`,
          met: throughput >= 0.95,
          measured: `${x(throughput)} the hand-written agent's calls/s, target >= x0.95${
            sameRounds((r) => r.callsPerSecond, "calls/s")
          }`
        })
        out.push({
          name: `wire-cpu-c${level.concurrency}`,
          met: cpu <= 1.1,
          measured: `${x(cpu)} the hand-written agent's CPU per call (${us(ours.cpuMicrosPerCall * 1000)} vs ${
            us(hand.cpuMicrosPerCall * 1000)
          } µs), target <= x1.1${sameRounds((r) => r.cpuMicrosPerCall, "CPU per call")}`
        })
      }
      const conns = ours?.backendConnectionsInWindow
      if (conns === undefined) continue
      const limit = 2 * level.concurrency + 2
      out.push({
        name: `keep-alive-c${level.concurrency}`,
        met: conns <= limit,
        measured: `${conns} backend connections in ${level.window} paid calls, target <= ${limit}`
      })
    }
  }
  if (results.scaling) {
    const growth = (values: ReadonlyArray<{ readonly unit: number; readonly cost: number }>) => {
      // Linear or better: the cost per unit past the middle point is no more than twice the one
      // before it (or the whole growth is within noise).
      const [a, b, c] = values
      const first = Math.max(0, b.cost - a.cost) / (b.unit - a.unit)
      const second = Math.max(0, c.cost - b.cost) / (c.unit - b.unit)
      const flat = c.cost <= a.cost * 1.25
      return { met: flat || second <= 2 * first, flat, first, second, total: c.cost / a.cost }
    }
    const bytes = growth(results.scaling.bytes.map((s) => ({
      unit: s.bytes,
      cost: Math.max(1, find(s.stats, OURS_AGENTCORE).median - find(s.stats, BARE).median)
    })))
    out.push({
      name: "scaling-bytes-linear",
      met: bytes.met,
      measured: `overhead x${bytes.total.toFixed(2)} from 1 KB to 1 MB${bytes.flat ? " (flat)" : ""}`
    })
    const onePlan = find(results.scaling.plans[0].stats, OURS_AGENTCORE).median
    const hundred = find(results.scaling.plans[results.scaling.plans.length - 1].stats, OURS_AGENTCORE).median
    out.push({
      name: "scaling-100-plans-vs-1",
      met: hundred <= 2 * onePlan,
      measured: `${x(hundred / onePlan)} the cost of 1 plan, target <= x2`
    })
    const plans = growth(results.scaling.plans.map((s) => ({
      unit: s.plans,
      cost: find(s.stats, OURS_AGENTCORE).median
    })))
    out.push({
      name: "scaling-plans-linear",
      met: plans.met,
      measured: `x${plans.total.toFixed(2)} from 1 to 100 plans; ${us(plans.first)} µs per plan (1→10), ${
        us(plans.second)
      } µs per plan (10→100)`
    })
  }
  if (results.ledger) {
    const cost = ledgerCost(results.ledger)
    out.push({
      name: "ledger-memory-under-2us",
      met: cost < 2000,
      measured: `${us(cost)} µs per paid call (record + claim + finish, median less the three-op floor), target < 2 µs`
    })
  }
  return out
}

const ledgerCost = (result: LedgerResult) =>
  Math.max(0, find(result.memory, Ledger.MEMORY).median - find(result.memory, Ledger.EMPTY).median)

const perCallText = (counts: Readonly<Record<string, number>>) => {
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  const parts = Object.entries(counts).map(([op, n]) => `${n.toFixed(2)} ${op}`)
  return `${total.toFixed(2)} (${parts.join(", ")})`
}

export const goalLines = (list: ReadonlyArray<Goal>): string =>
  list.map((g) => `goal ${g.name}: ${g.met ? "met" : "MISSED"} (${g.measured})`).join("\n")

export const render = (results: Results): string => {
  const parts: Array<string> = [
    "# Benchmarks",
    "",
    "What payment protection costs in time, against baselines measured in the same run (`pnpm bench`;",
    "`pnpm bench --quick` is the short version). Benchmarks are not tests: nothing here fails a build.",
    "Candidates run interleaved in round-robin batches, after a warm-up, and every call is timed with",
    "`process.hrtime.bigint()`; ratios compare medians taken in the same run.",
    "",
    "## Machine",
    "",
    machine(results),
    "",
    "## Goals",
    "",
    "```",
    goalLines(goals(results)),
    "```"
  ]
  if (results.overhead) {
    parts.push(
      "",
      "## 1. Per-invocation overhead, warm",
      "",
      "A paid `tools/call` with a facilitator that answers at once (constant verify and settle answers:",
      "an Effect `Facilitator` for us, a resolved Promise for the others), so only the pipeline's own work",
      "is timed. The hand-written baseline does the same work with no framework (header lookup,",
      "PaymentRequired, verify, run, settle, base64 JSON receipt, result wrapping); `@x402/core` runs",
      "`processHTTPRequest` + `processSettlement` on its `x402HTTPResourceServer` with a mocked facilitator",
      "client; `LambdaRuntime only` runs the handler through our Lambda runtime with no payment.",
      "",
      "",
      "Also timed: the Effect floors (a `ManagedRuntime` built once and one generator per call that",
      "decodes the event with a Schema, verifies through a Layer service, runs the handler, settles and",
      "answers with a base64 receipt; \"1 span\" wraps it in one `Effect.withSpan`); our handler with",
      "`Layer.setTracerEnabled(false)`; and ours and the 1-span floor with an `@effect/opentelemetry`",
      "tracer installed (every span exported to an in-memory exporter). payments-py is the Python SDK's",
      "own `requires_payment` / interceptor with the facilitator mocked, timed by its script in the same",
      "run (its figures, not interleaved with ours: see the pyref line below).",
      "",
      "### AgentCore gateway event (`requiresPayment`)",
      "",
      overheadTable(
        results.overhead.agentCore,
        OURS_AGENTCORE,
        results.overhead.pyref._tag === "Measured" ? results.overhead.pyref.decorator : undefined
      ),
      "",
      pyrefLine(results.overhead.pyref, find(results.overhead.agentCore, OURS_AGENTCORE), "decorator"),
      "",
      "### API Gateway v2 / Function URL event (`httpHandler`)",
      "",
      overheadTable(results.overhead.http, OURS_HTTP),
      "",
      "### Two-phase interceptor, REQUEST + RESPONSE in one sample",
      "",
      "One sample is a REQUEST (verify, forward with a sealed request id, recorded in the in-memory",
      "settlement ledger) followed by its RESPONSE (claim, settle, receipt), as the gateway calls it.",
      "",
      table(
        ["candidate", "min µs", "median µs", "p99 µs", "calls timed"],
        [
          ...results.overhead.interceptor,
          ...(results.overhead.pyref._tag === "Measured" && results.overhead.pyref.interceptor !== undefined
            ? [results.overhead.pyref.interceptor]
            : [])
        ].map((s) => [
          s.name.startsWith(OURS_INTERCEPTOR) ? `**${s.name}**` : s.name,
          us(s.min),
          us(s.median),
          us(s.p99),
          String(s.samples)
        ])
      ),
      "",
      pyrefLine(results.overhead.pyref, find(results.overhead.interceptor, OURS_INTERCEPTOR), "interceptor")
    )
  }
  if (results.coldStart) {
    const c = results.coldStart
    const row = (name: string, bundle: typeof c.example, which: "example" | "floor") => [
      name,
      `${bundle.bytes} (${kb(bundle.bytes)})`,
      `${bundle.gzipBytes} (${kb(bundle.gzipBytes)})`,
      `${ms(c.init[which].median)} (min ${ms(c.init[which].min)})`,
      `${ms(c.first[which].median)} (min ${ms(c.first[which].min)})`,
      `${ms(c.second[which].median)}`
    ]
    parts.push(
      "",
      "## 2. Cold start",
      "",
      "The example `examples/agentcore-lambda` handler bundled as users ship it (esbuild, minified",
      "single-file ESM, node20) and a floor bundle built in the same run with the same options: a",
      `minimal Effect program (Schema + \`HttpClient\` over fetch + \`ManagedRuntime\`) making the same three`,
      "backend calls (plan, verify, settle) and nothing of ours. Each run is a fresh Node process that",
      "imports the bundle (init) and answers one paid call, then a second one, against `FakeNevermined`",
      `on loopback; ${c.runs} runs each, interleaved; medians in ms.`,
      "",
      table(["bundle", "bytes", "gzip bytes", "init ms", "first invocation ms", "second invocation ms"], [
        row("example agentcore-lambda handler", c.example, "example"),
        row(FLOOR, c.floor, "floor"),
        [
          "ratio",
          x3(c.example.bytes / c.floor.bytes),
          x3(c.example.gzipBytes / c.floor.gzipBytes),
          x3(c.init.example.median / c.init.floor.median),
          x(c.first.example.median / c.first.floor.median),
          x(c.second.example.median / c.second.floor.median)
        ]
      ])
    )
    if (c.drift !== undefined) parts.push("", `Note: ${c.drift}.`)
  }
  if (results.wire) {
    const rows: Array<ReadonlyArray<string>> = []
    for (const level of results.wire) {
      const hand = level.rows.find((r) => r.name === Wire.HANDWRITTEN)
      for (const r of level.rows) {
        rows.push([
          String(level.concurrency),
          r.name === Wire.OURS ? `**${r.name}**` : r.name,
          r.callsPerSecond.toFixed(0),
          hand && r.name !== Wire.BARE ? x(r.callsPerSecond / hand.callsPerSecond) : "",
          ms(r.latency.median / 1e6),
          ms(r.latency.p99 / 1e6),
          r.backendConnectionsInWindow === undefined ? "–" : String(r.backendConnectionsInWindow),
          r.backendConnections === undefined ? "–" : String(r.backendConnections),
          String(r.clientConnections),
          us(r.cpuMicrosPerCall * 1000),
          hand && r.name !== Wire.BARE ? x(r.cpuMicrosPerCall / hand.cpuMicrosPerCall) : "",
          `${r.calls}${r.failures > 0 ? ` (${r.failures} failed)` : ""}`
        ])
      }
    }
    const window = results.wire[0]?.window ?? 0
    parts.push(
      "",
      "## 3. Over the wire",
      "",
      "A paid agent behind a Node HTTP server on 127.0.0.1 (`httpHandler`, the live Nevermined layer over",
      "`FetchHttpClient`, the Lambda default) against `FakeNevermined` on loopback, driven by a keep-alive",
      "load generator, in three processes: the fake backends in one, each agent in its own, the load",
      "generator in the parent (the two cores are still shared by all of them). The hand-written agent",
      "makes the same two backend calls with `fetch`; the Effect floor does the hand-written agent's work",
      "as the least Effect program (a `ManagedRuntime`, one generator per request, each `fetch` in one",
      "`Effect.async`): its excess over the hand-written agent is what the Effect runtime itself costs over",
      "the wire. Agent CPU is the agent process's `process.cpuUsage()` (user + system) over its timed",
      "calls, per call. Connections are the TCP connections the backend",
      `accepted (server-side): from a cold pool through the warm-up and the first ${window} paid calls, and`,
      "over the whole run.",
      "",
      table([
        "concurrency",
        "agent",
        "calls/s",
        "vs hand-written",
        "median ms",
        "p99 ms",
        `backend conns, first ${window} calls`,
        "backend conns, all",
        "client conns",
        "agent CPU µs per call",
        "CPU vs hand-written",
        "calls"
      ], rows)
    )
  }
  if (results.scaling) {
    const s = results.scaling
    const sizeRows = (groups: ScalingResult["bytes"], ours: string) =>
      groups.map((g) => {
        const mine = find(g.stats, ours).median
        const hand = find(g.stats, HANDWRITTEN).median
        const bare = find(g.stats, BARE).median
        return [g.label, us(mine), us(hand), us(bare), us(Math.max(0, mine - bare)), us(Math.max(0, hand - bare))]
      })
    parts.push(
      "",
      "## 4. Scaling",
      "",
      "The same warm paid call as in section 1 as the request grows (tool arguments, or an HTTP body, of",
      "about 1 KB, 64 KB and 1 MB of JSON) and as the number of plans in `accepts` grows. Medians in µs.",
      "",
      "### Request size, AgentCore (`arguments` of the tool call, an object as the gateway sends it)",
      "",
      table(
        ["arguments", "requiresPayment", "hand-written", "bare", "our overhead", "hand-written overhead"],
        sizeRows(s.bytes, OURS_AGENTCORE)
      ),
      "",
      "### Request size, HTTP (JSON body as a string, as API Gateway sends it)",
      "",
      table(
        ["body", "httpHandler", "hand-written", "bare", "our overhead", "hand-written overhead"],
        sizeRows(s.httpBytes, OURS_HTTP)
      ),
      "",
      "### Plans in `accepts` (AgentCore)",
      "",
      table(
        ["plans", "requiresPayment", "hand-written", "@x402/core", "ours vs hand-written", "@x402/core vs ours"],
        s.plans.map((g) => {
          const mine = find(g.stats, OURS_AGENTCORE).median
          const hand = find(g.stats, HANDWRITTEN).median
          const core = find(g.stats, X402_CORE).median
          return [String(g.plans), us(mine), us(hand), us(core), x(mine / hand), x(core / mine)]
        })
      )
    )
  }
  if (results.ledger) {
    const l = results.ledger
    parts.push(
      "",
      "## 5. Settlement ledger",
      "",
      "One paid call's ledger work (`record` → `claim` → `finish` settled) on `SettlementLedger.makeMemory()`",
      "(default bound of 10,000 entries, so records also evict), 100 calls per timed run in one fiber (an",
      "adapter runs the ledger inside its own fiber); the floor is the same three steps as no-op",
      "`Effect.sync`s, i.e. what any three Effect operations cost here. µs per paid call.",
      "",
      table(
        ["candidate", "min", "median", "p99"],
        l.memory.map((s) => [s.name, us(s.min), us(s.median), us(s.p99)])
      ),
      "",
      `Ledger cost per paid call (median less the floor): ${us(ledgerCost(l))} µs.`,
      "",
      "### DynamoDB layer: requests per paid call",
      "",
      l.dynamo.available
        ? [
          `Counted at a dynalite server on loopback (\`X-Amz-Target\`), ${l.dynamo.calls} paid calls each:`,
          "",
          table(["paid call", "requests per call"], [
            ["without idempotency key", perCallText(l.dynamo.perCall)],
            ["with an idempotency key", perCallText(l.dynamo.perCallKeyed)]
          ]),
          "",
          `Median ${ms(l.dynamo.medianMillis)} ms per paid call against dynalite (its speed, not DynamoDB's).`
        ].join("\n")
        : `Not measured: ${l.dynamo.reason}.`
    )
  }
  parts.push(
    "",
    "## Reproduce, profile",
    "",
    "- `pnpm bench` (this file), `pnpm bench --quick` (stdout and `bench/.bench-out/BENCHMARKS.quick.md`).",
    "- `pnpm bench --only overhead,coldstart,wire,scaling,ledger` runs some sections (not written here).",
    "- `pnpm bench --profile requiresPayment|httpHandler|x402core|handwritten [seconds]` bundles one",
    "  candidate, runs it under `node --cpu-prof` and prints where the time goes (the `.cpuprofile` is",
    "  kept in `bench/.bench-out/profiles/` for Chrome DevTools)."
  )
  return parts.join("\n") + "\n"
}
