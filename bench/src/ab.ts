// Quick A/B helper for local perf work: times N warm calls of one candidate in this process and
// prints min / median / p90. Compare runs before and after a change, interleaved (same machine state):
//   npx tsx bench/src/ab.ts [requiresPayment|httpHandler|interceptor][-1MB] [calls]
import { argumentsOf } from "./fixtures.js"
import { agentCoreCandidates, httpCandidates, interceptorCandidates } from "./overhead.js"

const [target, size] = (process.argv[2] ?? "requiresPayment").split("-")
const big = size === "1MB" ? argumentsOf(1024 * 1024) : undefined
const n = Number(process.argv[3] ?? 5000)
const candidate = target === "interceptor"
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
