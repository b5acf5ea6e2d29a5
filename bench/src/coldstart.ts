/**
 * Section 2: cold start. The example AgentCore Lambda, bundled exactly as users ship it (esbuild,
 * minified single-file ESM), against a floor bundle built in the same run with the same options
 * (a minimal Effect program with Schema + HttpClient + ManagedRuntime doing the same three backend
 * calls). Size, gzip size, module init time and first invocation, each in a fresh Node process.
 *
 * `npx tsx bench/src/coldstart.ts [runs] [modules] [Schema.js,...]` runs this section alone and prints what the
 * example's bundle holds beyond the floor's, by module and by package (from the esbuild metafile:
 * minified bytes each input contributes), with init wall and CPU time (`process.cpuUsage`, steadier
 * than wall time on a shared machine), and where the import's evaluation goes (`topLevelTimes`; the
 * third argument names more modules to time statement by statement), and the scavenges the import pays
 * (`importScavenges`). BENCHMARKS.md is not written.
 */
import * as FakeNevermined from "@effect-x402/testing/FakeNevermined"
import { Ledger } from "@effect-x402/testing/TestFacilitator"
import * as esbuild from "esbuild"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import * as Url from "node:url"
import * as Zlib from "node:zlib"
import { AGENT_ID, agentCoreEvent, ENDPOINT, lambdaContext, PLAN_ID } from "./fixtures.js"
import { type Stats, statsOf } from "./harness.js"

const here = Path.dirname(Url.fileURLToPath(import.meta.url))
const root = Path.resolve(here, "..", "..")
export const OUT_DIR = Path.join(root, "bench", ".bench-out", "bundles")

/**
 * The build options of `examples/agentcore-lambda/bundle.ts`, copied so that the floor is built
 * the same way. `bundle()` checks that they still produce the example's own bundle, byte for byte.
 */
const buildOptions = (entry: string, outfile: string): esbuild.BuildOptions & { metafile: true } => ({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  minify: true,
  sourcemap: false,
  treeShaking: true,
  metafile: true,
  logLevel: "silent"
})

export interface Bundle {
  readonly name: string
  readonly file: string
  readonly bytes: number
  readonly gzipBytes: number
  /** Minified bytes each input module contributes (esbuild metafile), by module path. */
  readonly modules: ReadonlyMap<string, number>
}

// `node_modules/.pnpm/effect@3.22.4/node_modules/effect/dist/esm/Schema.js` → `effect/dist/esm/Schema.js`,
// `../packages/core/src/X402.ts` → `packages/core/src/X402.ts`: the same module has the same name in
// both bundles.
const moduleName = (input: string): string =>
  input.replace(/^.*node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?/, "").replace(/^(?:\.\.\/)+/, "")

const build = async (name: string, entry: string): Promise<Bundle> => {
  const file = Path.join(OUT_DIR, `${name}.mjs`)
  const result = await esbuild.build(buildOptions(entry, file))
  const content = await Fs.readFile(file)
  const modules = new Map<string, number>()
  for (const output of Object.values(result.metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const key = moduleName(input)
      modules.set(key, (modules.get(key) ?? 0) + bytesInOutput)
    }
  }
  return { name, file, bytes: content.byteLength, gzipBytes: Zlib.gzipSync(content).byteLength, modules }
}

/** One module's share of both bundles, in minified bytes. */
export interface ModuleShare {
  readonly module: string
  readonly example: number
  readonly floor: number
}

/** The package a module belongs to: `effect`, `@effect/platform`, `packages/core`, ... */
export const packageOf = (module: string): string => {
  const parts = module.split("/")
  return parts[0]!.startsWith("@") || parts[0] === "packages" || parts[0] === "examples"
    ? `${parts[0]}/${parts[1]}`
    : parts[0]!
}

/**
 * What the example's bundle holds beyond the floor's, module by module, largest difference first
 * (modules of equal size in both are left out).
 */
export const breakdown = (example: Bundle, floor: Bundle): ReadonlyArray<ModuleShare> =>
  [...new Set([...example.modules.keys(), ...floor.modules.keys()])]
    .map((module) => ({ module, example: example.modules.get(module) ?? 0, floor: floor.modules.get(module) ?? 0 }))
    .filter((share) => share.example !== share.floor)
    .sort((a, b) => (b.example - b.floor) - (a.example - a.floor))

/** {@link breakdown} as text: totals by package, then the `top` modules. */
export const renderBreakdown = (example: Bundle, floor: Bundle, top: number): string => {
  const shares = breakdown(example, floor)
  const byPackage = new Map<string, { example: number; floor: number }>()
  for (const share of shares) {
    const total = byPackage.get(packageOf(share.module)) ?? { example: 0, floor: 0 }
    total.example += share.example
    total.floor += share.floor
    byPackage.set(packageOf(share.module), total)
  }
  const row = (name: string, a: number, b: number) =>
    `${String(a - b).padStart(8)} ${String(a).padStart(8)} ${String(b).padStart(8)}  ${name}`
  return [
    `example ${example.bytes} B, floor ${floor.bytes} B (x${(example.bytes / floor.bytes).toFixed(3)}); ` +
    `x1.15 of the floor is ${Math.floor(floor.bytes * 1.15)} B`,
    `   extra  example    floor  package (minified bytes, esbuild metafile)`,
    ...[...byPackage].sort((a, b) => (b[1].example - b[1].floor) - (a[1].example - a[1].floor))
      .map(([name, t]) => row(name, t.example, t.floor)),
    `   extra  example    floor  module`,
    ...shares.slice(0, top).map((share) => row(share.module, share.example, share.floor))
  ].join("\n")
}

export const EXAMPLE = "example agentcore-lambda handler"
export const FLOOR = "floor (Effect + Schema + HttpClient + ManagedRuntime)"

export const bundles = async (options: { readonly checkDrift: boolean }): Promise<
  { readonly example: Bundle; readonly floor: Bundle; readonly drift?: string }
> => {
  await Fs.mkdir(OUT_DIR, { recursive: true })
  const example = await build("example", Path.join(root, "examples", "agentcore-lambda", "src", "handler.ts"))
  const floor = await build("floor", Path.join(root, "bench", "floor", "handler.ts"))
  if (!options.checkDrift) return { example, floor }
  // The example's own build script: if its options changed, say so rather than measure the wrong thing.
  const own = await import(Url.pathToFileURL(Path.join(root, "examples", "agentcore-lambda", "bundle.ts")).href) as {
    readonly bundle: (outfile: string) => Promise<{ readonly bytes: number }>
  }
  const ownBytes = (await own.bundle(Path.join(OUT_DIR, "example-own.mjs"))).bytes
  const drift = ownBytes === example.bytes
    ? undefined
    : `examples/agentcore-lambda/bundle.ts now builds ${ownBytes} bytes, the bench's copy of its options ${example.bytes}`
  return { example, floor, ...(drift !== undefined ? { drift } : {}) }
}

// What the Lambda Node.js runtime does: import the ESM file, then call `handler(event, context)`.
const RUNNER = `
const t0 = performance.now()
const c0 = process.cpuUsage()
const { handler } = await import(process.env.BUNDLE_URL)
const t1 = performance.now()
const cpu = process.cpuUsage(c0)
const event = JSON.parse(process.env.EVENT)
const context = JSON.parse(process.env.CONTEXT)
const first = await handler(event, context)
const t2 = performance.now()
await handler(event, context)
const t3 = performance.now()
const ok = JSON.stringify(first).includes("payment-response")
process.stdout.write(JSON.stringify({ init: t1 - t0, initCpu: (cpu.user + cpu.system) / 1000, first: t2 - t1, second: t3 - t2, ok }))
`

interface Run {
  readonly init: number
  readonly initCpu: number
  readonly first: number
  readonly second: number
  readonly ok: boolean
}

const runOnce = (file: string, env: Record<string, string>): Promise<Run> =>
  new Promise((resolve, reject) => {
    ChildProcess.execFile(
      process.execPath,
      ["--input-type=module", "-e", RUNNER],
      { env: { PATH: process.env.PATH ?? "", BUNDLE_URL: Url.pathToFileURL(file).href, ...env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`cold start run failed: ${error.message}\n${stderr}`))
        else resolve(JSON.parse(stdout) as Run)
      }
    )
  })

export interface ColdStartResult {
  readonly example: Bundle
  readonly floor: Bundle
  readonly drift?: string | undefined
  readonly runs: number
  /** Milliseconds, per bundle: import, first invocation (runtime build + plan, verify, settle), second. */
  readonly init: { readonly example: Stats; readonly floor: Stats }
  /** CPU milliseconds (user + system) of the import: steadier than `init` when the machine is shared. */
  readonly initCpu: { readonly example: Stats; readonly floor: Stats }
  readonly first: { readonly example: Stats; readonly floor: Stats }
  readonly second: { readonly example: Stats; readonly floor: Stats }
}

export const coldStart = async (runs: number, options: { readonly checkDrift: boolean }): Promise<ColdStartResult> => {
  const built = await bundles(options)
  const ledger = new Ledger()
  const backend = await FakeNevermined.start({ ledger })
  try {
    ledger.addPlan({ planId: PLAN_ID, agentId: AGENT_ID })
    ledger.fund(backend.subscriber, PLAN_ID, 1_000_000)
    const token = ledger.mintToken({ planId: PLAN_ID, subscriber: backend.subscriber, agentId: AGENT_ID })
    const env = {
      EVENT: JSON.stringify(agentCoreEvent({ token })),
      CONTEXT: JSON.stringify({ ...lambdaContext }),
      NVM_API_KEY: backend.apiKey,
      NVM_BACKEND_URL: backend.url,
      NVM_PLAN_ID: PLAN_ID,
      NVM_AGENT_ID: AGENT_ID,
      NVM_ENDPOINT: ENDPOINT
    }
    const samples = { example: [] as Array<Run>, floor: [] as Array<Run> }
    // One throwaway run each: the first process pays for the page cache.
    await runOnce(built.example.file, env)
    await runOnce(built.floor.file, env)
    for (let i = 0; i < runs; i++) {
      // Interleaved, alternating who goes first.
      const order = i % 2 === 0 ? (["example", "floor"] as const) : (["floor", "example"] as const)
      for (const which of order) {
        const run = await runOnce(built[which].file, env)
        if (!run.ok) throw new Error(`cold start: the ${which} bundle did not answer a paid call`)
        samples[which].push(run)
      }
    }
    const stats = (key: "init" | "initCpu" | "first" | "second") => ({
      example: statsOf(EXAMPLE, samples.example.map((r) => r[key])),
      floor: statsOf(FLOOR, samples.floor.map((r) => r[key]))
    })
    return {
      example: built.example,
      floor: built.floor,
      drift: built.drift,
      runs,
      init: stats("init"),
      initCpu: stats("initCpu"),
      first: stats("first"),
      second: stats("second")
    }
  } finally {
    await backend.close()
  }
}

/**
 * Where the import's evaluation goes: both entries bundled unminified (otherwise as shipped), with a
 * clock read at each module's start (and, in our packages, at each top-level statement), imported in
 * `runs` fresh processes. Medians in ms of the time from one mark to the next: a module's
 * top-level code, including V8 compiling the functions it calls for the first time (parsing the
 * file is before the first mark). A diagnostic: the marks cost time of their own.
 *
 * `measure: "heap"` reads the V8 heap instead (KiB allocated from one mark to the next, bytecode
 * included), in processes whose young generation is large enough that no scavenge runs during the
 * import: what a module allocates decides how many scavenges (a few ms each) a cold start pays.
 */
export const topLevelTimes = async (
  runs: number,
  env: Record<string, string>,
  /** Modules whose top-level statements are marked one by one (besides ours), e.g. `Schema.js`. */
  detail: ReadonlyArray<string> = [],
  measure: "time" | "heap" = "time"
): Promise<{ readonly example: ReadonlyMap<string, number>; readonly floor: ReadonlyMap<string, number> }> => {
  const time = async (name: string, entry: string) => {
    const file = Path.join(OUT_DIR, `${name}-marked.mjs`)
    await esbuild.build({ ...buildOptions(entry, file), minify: false })
    const lines = (await Fs.readFile(file, "utf8")).split("\n")
    const out = ["globalThis.__marks = [];"]
    const read = measure === "time" ? "performance.now()" : "process.memoryUsage().heapUsed / 1024"
    const mark = (label: string) => out.push(`__marks.push([${JSON.stringify(label)}, ${read}]);`)
    let module = ""
    let statementStart = true
    for (const line of lines) {
      const header = /^\/\/ (.+\.[jt]s)$/.exec(line)
      if (header !== null) {
        module = moduleName(header[1]!)
        mark(module)
      } else if (
        statementStart &&
        (module.startsWith("packages/") || detail.some((suffix) => module.endsWith(suffix))) &&
        /^(?:var|let|const|class|function|async) /.test(line)
      ) {
        mark(`${module}: ${line.slice(0, 48)}`)
      }
      out.push(line)
      statementStart = line.trim() === "" || /[;}]\s*$/.test(line) || line.startsWith("//")
    }
    mark("(end)")
    await Fs.writeFile(file, out.join("\n"))
    const samples = new Map<string, Array<number>>()
    const script = `await import(process.env.BUNDLE_URL); const m = globalThis.__marks; ` +
      `process.stdout.write(JSON.stringify(m.slice(0, -1).map(([l, t], i) => [l, m[i + 1][1] - t])))`
    for (let i = 0; i < runs; i++) {
      const stdout = await new Promise<string>((resolve, reject) =>
        ChildProcess.execFile(
          process.execPath,
          [...(measure === "heap" ? ["--min-semi-space-size=64"] : []), "--input-type=module", "-e", script],
          { env: { PATH: process.env.PATH ?? "", BUNDLE_URL: Url.pathToFileURL(file).href, ...env }, timeout: 30_000 },
          (error, stdout, stderr) => error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)
        )
      )
      const totals = new Map<string, number>()
      for (const [label, ms] of JSON.parse(stdout) as Array<[string, number]>) {
        totals.set(label, (totals.get(label) ?? 0) + ms)
      }
      for (const [label, ms] of totals) samples.set(label, [...(samples.get(label) ?? []), ms])
    }
    return new Map([...samples].map(([label, values]) => [label, statsOf(label, values).median] as const))
  }
  return {
    example: await time("example", Path.join(root, "examples", "agentcore-lambda", "src", "handler.ts")),
    floor: await time("floor", Path.join(root, "bench", "floor", "handler.ts"))
  }
}

/**
 * The young-generation collections (scavenges) a bundle's import pays: `--trace-gc` in `runs` fresh
 * processes, the scavenges before the import returns counted and their pauses summed. Medians of
 * the count and of the ms. A diagnostic of what the import allocates: each scavenge is a pause of a
 * few ms on this machine, and one more of them is a visible share of the init ratio.
 */
export const importScavenges = async (
  file: string,
  runs: number,
  env: Record<string, string>
): Promise<{ readonly count: number; readonly ms: number }> => {
  const script = `await import(process.env.BUNDLE_URL); process.stdout.write("\\n(imported)\\n")`
  const counts: Array<number> = []
  const pauses: Array<number> = []
  for (let i = 0; i < runs; i++) {
    const stdout = await new Promise<string>((resolve, reject) =>
      ChildProcess.execFile(
        process.execPath,
        ["--trace-gc", "--input-type=module", "-e", script],
        { env: { PATH: process.env.PATH ?? "", BUNDLE_URL: Url.pathToFileURL(file).href, ...env }, timeout: 30_000 },
        (error, stdout, stderr) => error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)
      )
    )
    const lines = stdout.slice(0, stdout.indexOf("(imported)")).split("\n").filter((line) => line.includes("Scavenge"))
    counts.push(lines.length)
    // `... Scavenge 5.9 (6.1) -> 5.6 (7.1) MB, 4.79 / 0.01 ms ...`: the pause is the first figure after "MB, ".
    pauses.push(lines.reduce((sum, line) => sum + Number(/MB, ([\d.]+)/.exec(line)?.[1] ?? 0), 0))
  }
  return { count: statsOf("scavenges", counts).median, ms: statsOf("scavenge ms", pauses).median }
}

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === Url.fileURLToPath(import.meta.url)) {
  const runs = Number(process.argv[2] ?? 12)
  const top = Number(process.argv[3] ?? 30)
  const detail = (process.argv[4] ?? "").split(",").filter((suffix) => suffix.length > 0)
  const result = await coldStart(runs, { checkDrift: true })
  const line = (label: string, s: { readonly example: Stats; readonly floor: Stats }) =>
    `${label}: example median ${s.example.median.toFixed(1)} (min ${s.example.min.toFixed(1)}), ` +
    `floor median ${s.floor.median.toFixed(1)} (min ${s.floor.min.toFixed(1)}), ` +
    `x${(s.example.median / s.floor.median).toFixed(3)} medians, x${(s.example.min / s.floor.min).toFixed(3)} mins`
  console.log(renderBreakdown(result.example, result.floor, top))
  if (result.drift !== undefined) console.log(`drift: ${result.drift}`)
  console.log(`${runs} runs each, interleaved, ms`)
  console.log(line("init wall", result.init))
  console.log(line("init cpu ", result.initCpu))
  console.log(line("first    ", result.first))
  // Where the evaluation goes (a backend only for the API key's shape: nothing is called).
  const backend = await FakeNevermined.start({})
  try {
    const env = { NVM_API_KEY: backend.apiKey, NVM_BACKEND_URL: backend.url, NVM_PLAN_ID: PLAN_ID }
    const times = await topLevelTimes(Math.max(5, Math.min(runs, 15)), env, detail)
    const sum = (m: ReadonlyMap<string, number>) => [...m.values()].reduce((a, b) => a + b, 0)
    console.log(
      `top-level evaluation (unminified, marked; medians ms): example ${sum(times.example).toFixed(1)}, ` +
        `floor ${sum(times.floor).toFixed(1)}`
    )
    const print = (
      values: { readonly example: ReadonlyMap<string, number>; readonly floor: ReadonlyMap<string, number> }
    ) => {
      for (const [label, value] of [...values.example].sort((a, b) => b[1] - a[1]).slice(0, top)) {
        const floor = values.floor.get(label)
        console.log(
          `${value.toFixed(2).padStart(8)} ${floor === undefined ? "        " : floor.toFixed(2).padStart(8)}  ${label}`
        )
      }
    }
    print(times)
    const scavenges = {
      example: await importScavenges(result.example.file, Math.max(5, Math.min(runs, 15)), env),
      floor: await importScavenges(result.floor.file, Math.max(5, Math.min(runs, 15)), env)
    }
    console.log(
      `scavenges during the import (--trace-gc, medians): example ${scavenges.example.count} ` +
        `(${scavenges.example.ms.toFixed(1)} ms), floor ${scavenges.floor.count} (${scavenges.floor.ms.toFixed(1)} ms)`
    )
    const heap = await topLevelTimes(3, env, detail, "heap")
    console.log(
      `allocated during the import (KiB, no scavenge): example ${sum(heap.example).toFixed(0)}, ` +
        `floor ${sum(heap.floor).toFixed(0)}`
    )
    print(heap)
  } finally {
    await backend.close()
  }
}
