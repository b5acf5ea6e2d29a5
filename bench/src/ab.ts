// Quick A/B helper for local perf work: times N warm calls of one candidate in this process and
// prints min / median / p90. Compare runs before and after a change, interleaved (same machine state):
//   npx tsx bench/src/ab.ts [requiresPayment|httpHandler|interceptor][-1MB] [calls]
//   npx tsx bench/src/ab.ts [wireOurs|wireFloor|wireHand] [calls]   (the wire agents over a stub fetch)
//   npx tsx bench/src/ab.ts [traced|tracedFloor] [calls]   (requiresPayment / the 1-span floor, OTel tracer)
// It bundles itself with esbuild and runs the bundle with plain node (as `pnpm bench` runs sections 1
// and 4): under `tsx` every closure made per call pays the loader's `__name` wrapper, which no user
// pays. `AB_TSX=1` times it under tsx instead.
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import * as Url from "node:url"

const run = async () => {
  const { argumentsOf } = await import("./fixtures.js")
  const { agentCoreCandidates, httpCandidates, interceptorCandidates } = await import("./overhead.js")
  const [target, size] = (process.argv[2] ?? "requiresPayment").split("-")
  const big = size === "1MB" ? argumentsOf(1024 * 1024) : undefined
  const n = Number(process.argv[3] ?? 5000)
  const wire = { wireOurs: "ours", wireFloor: "floor", wireHand: "handwritten" } as const
  // Under the OpenTelemetry tracer (every span exported to memory): ours, and the 1-span floor.
  const traced = { traced: "OTel tracer: effect-x402", tracedFloor: "OTel tracer: Effect floor" } as const
  const candidate = target in traced
    ? (await agentCoreCandidates({})).find((c) => c.name.startsWith(traced[target as keyof typeof traced]))!
    : target in wire
    ? { run: (await import("./wireStub.js")).candidate(wire[target as keyof typeof wire]) }
    : target === "interceptor"
    ? (await interceptorCandidates())[0]
    : target === "httpHandler"
    ? (await httpCandidates({ only: ["effect-x402"], ...(big ? { body: JSON.stringify(big) } : {}) }))[0]
    : (await agentCoreCandidates({ only: ["effect-x402"], ...(big ? { arguments: big } : {}) }))[0]
  for (let i = 0; i < Math.min(2000, n); i++) await candidate.run()
  const times: Array<number> = []
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint()
    await candidate.run()
    times.push(Number(process.hrtime.bigint() - start) / 1000)
  }
  times.sort((a, b) => a - b)
  const at = (q: number) => times[Math.floor(n * q)].toFixed(1)
  console.log(`${process.argv[2]}: min ${at(0)} µs, median ${at(0.5)} µs, p90 ${at(0.9)} µs`)
  process.exit(0)
}

if (process.env.AB_BUNDLED === "1" || process.env.AB_TSX === "1") {
  await run()
} else {
  const { bundle } = await import("./bundle.js")
  const here = Path.dirname(Url.fileURLToPath(import.meta.url))
  const outfile = await bundle(Url.fileURLToPath(import.meta.url), Path.join(here, "..", ".bench-out", "ab.mjs"))
  ChildProcess.execFileSync(process.execPath, [outfile, ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, AB_BUNDLED: "1" }
  })
}
