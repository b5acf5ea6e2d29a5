/**
 * `pnpm bench`: measures what payment protection costs in time against baselines measured in the
 * same run, prints a table and one line per goal, and writes `BENCHMARKS.md`.
 *
 * - `pnpm bench --quick`: a short run for CI; stdout and `bench/.bench-out/BENCHMARKS.quick.md` only.
 * - `pnpm bench --only overhead,coldstart,wire,scaling,ledger`: some sections (BENCHMARKS.md untouched).
 * - `pnpm bench --profile <target> [seconds]`: a CPU profile of one candidate and where its time goes.
 *
 * Missing a goal is reported, never a failure exit: benchmarks are not tests. A crash is.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"
import { bundle } from "./src/bundle.js"
import { coldStart } from "./src/coldstart.js"
import * as CpuProfile from "./src/cpuprofile.js"
import { gc, type Stats } from "./src/harness.js"
import { dynamoLedger } from "./src/ledgerDynamo.js"
import * as Report from "./src/report.js"
import { wire } from "./src/wire.js"

const here = Path.dirname(Url.fileURLToPath(import.meta.url))
const root = Path.resolve(here, "..")
const outDir = Path.join(here, ".bench-out")

const SECTIONS = ["overhead", "coldstart", "wire", "scaling", "ledger"] as const
type Section = typeof SECTIONS[number]

const args = process.argv.slice(2).filter((a) => a !== "--")
const flag = (name: string) => args.includes(name)
const valueOf = (name: string) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}

const bundleOf = (entry: string, outfile: string) => bundle(Path.join(here, "src", entry), outfile)

// Sections 1 and 4 run from a bundle in a child process (see `src/inProcess.ts`).
let inProcessBundle: Promise<string> | undefined
const inProcess = async <A>(
  section: "overhead" | "scaling" | "ledger",
  budget: unknown,
  options: unknown = {}
): Promise<A> => {
  await Fs.mkdir(outDir, { recursive: true })
  const bundle = await (inProcessBundle ??= bundleOf("inProcess.ts", Path.join(outDir, "inProcess.mjs")))
  const out = Path.join(outDir, `${section}.json`)
  ChildProcess.execFileSync(
    process.execPath,
    [bundle, section, JSON.stringify(budget), JSON.stringify(options), out],
    { stdio: "inherit" }
  )
  return JSON.parse(await Fs.readFile(out, "utf8")) as A
}

const profile = async (target: string, seconds: number) => {
  const dir = Path.join(outDir, "profiles")
  await Fs.mkdir(dir, { recursive: true })
  const bundle = await bundleOf("profileTarget.ts", Path.join(dir, "target.mjs"))
  const before = new Set(await Fs.readdir(dir))
  ChildProcess.execFileSync(
    process.execPath,
    ["--cpu-prof", `--cpu-prof-dir=${dir}`, bundle, target, String(seconds)],
    {
      stdio: "inherit"
    }
  )
  const created = (await Fs.readdir(dir)).filter((f) => f.endsWith(".cpuprofile") && !before.has(f))
  const file = Path.join(dir, created[0] ?? "")
  const summary = CpuProfile.summarize(
    JSON.parse(await Fs.readFile(file, "utf8")),
    30,
    CpuProfile.bundleModules(bundle)
  )
  console.log(`\n${CpuProfile.render(summary)}\n\nprofile: ${Path.relative(process.cwd(), file)}`)
}

const main = async () => {
  const target = valueOf("--profile")
  if (target !== undefined) {
    const seconds = Number(args[args.indexOf("--profile") + 2] ?? 10)
    return profile(target, Number.isFinite(seconds) ? seconds : 10)
  }
  const quick = flag("--quick")
  const only = valueOf("--only")?.split(",").map((s) => s.trim())
  for (const s of only ?? []) {
    if (!(SECTIONS as ReadonlyArray<string>).includes(s)) {
      throw new Error(`unknown section ${s}: ${SECTIONS.join(", ")}`)
    }
  }
  const run = (section: Section) => only === undefined || only.includes(section)
  const startedAt = new Date()
  const t0 = performance.now()
  const loadBefore = Os.loadavg()
  const step = (name: string) =>
    process.stderr.write(`bench: ${name}... (${((performance.now() - t0) / 1000).toFixed(0)} s so far)\n`)

  const results: {
    -readonly [K in keyof Report.Results]: Report.Results[K]
  } = {
    mode: quick ? "quick" : "full",
    startedAt,
    seconds: 0,
    loadBefore,
    loadAfter: loadBefore
  }
  if (run("overhead")) {
    step("1. per-invocation overhead")
    results.overhead = await inProcess<Report.Results["overhead"]>(
      "overhead",
      quick
        ? { millisPerCandidate: 300, rounds: 10, warmupMillis: 150, warmupCalls: 200 }
        : { millisPerCandidate: 3000, rounds: 30, warmupMillis: 800 },
      { root, pyrefCalls: quick ? 2000 : 20000 }
    )
  }
  if (run("coldstart")) {
    step("2. cold start")
    gc()
    results.coldStart = await coldStart(quick ? 2 : 12, { checkDrift: !quick })
  }
  if (run("wire")) {
    step("3. over the wire")
    gc()
    results.wire = await wire(
      quick
        ? { concurrencies: [16], window: 200, rounds: 0, chunk: 0, warmupCalls: 50 }
        : { concurrencies: [1, 16, 64], window: 1000, rounds: 2, chunk: 250, warmupCalls: 300 }
    )
  }
  if (run("scaling")) {
    step("4. scaling")
    gc()
    results.scaling = await inProcess<Report.Results["scaling"]>(
      "scaling",
      quick
        ? { millisPerCandidate: 100, rounds: 5, warmupMillis: 40, warmupCalls: 60 }
        : { millisPerCandidate: 1500, rounds: 20, warmupMillis: 300 }
    )
  }
  if (run("ledger")) {
    step("5. settlement ledger")
    gc()
    const budget = quick
      ? { millisPerCandidate: 200, rounds: 5, warmupMillis: 100, warmupCalls: 2000, dynamoCalls: 20 }
      : { millisPerCandidate: 2000, rounds: 20, warmupMillis: 500, warmupCalls: 20000, dynamoCalls: 300 }
    results.ledger = {
      memory: await inProcess<ReadonlyArray<Stats>>("ledger", budget),
      dynamo: await dynamoLedger(budget.dynamoCalls)
    }
  }
  results.seconds = (performance.now() - t0) / 1000
  results.loadAfter = Os.loadavg()

  const report = Report.render(results)
  // The report holds the tables and, in its Goals section, one `goal <name>: met|MISSED (...)` line each.
  console.log(report)
  await Fs.mkdir(outDir, { recursive: true })
  if (quick || only !== undefined) {
    const file = Path.join(outDir, quick ? "BENCHMARKS.quick.md" : "BENCHMARKS.partial.md")
    await Fs.writeFile(file, report)
    process.stderr.write(`bench: written ${Path.relative(process.cwd(), file)} (BENCHMARKS.md untouched)\n`)
  } else {
    await Fs.writeFile(Path.join(root, "BENCHMARKS.md"), report)
    process.stderr.write(`bench: written BENCHMARKS.md in ${results.seconds.toFixed(0)} s\n`)
  }
}

main().then(
  // Servers and pools may linger a moment after their close: the run is over, so is the process.
  () => process.exit(0),
  (error: unknown) => {
    console.error("bench crashed:", error)
    process.exit(1)
  }
)
