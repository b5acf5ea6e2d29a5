// Quick A/B helper for the wire section: the three-process setup of `wire.ts` at one concurrency,
// printing calls/s and the agent process's CPU per call for ours and the hand-written agent.
//   npx tsx bench/src/abWire.ts [concurrency] [rounds]
import * as Wire from "./wire.js"

const concurrency = Number(process.argv[2] ?? 16)
const rounds = Number(process.argv[3] ?? 6)
const [level] = await Wire.wire({ concurrencies: [concurrency], window: 500, rounds, chunk: 500, warmupCalls: 500 })
const [ours, hand, floor] = level.rows
for (const row of level.rows) {
  console.log(
    `${row.name.padEnd(52)} ${row.callsPerSecond.toFixed(0).padStart(6)} calls/s  cpu ${
      row.cpuMicrosPerCall.toFixed(0).padStart(5)
    } µs/call  p50 ${(row.latency.median / 1000).toFixed(0)} µs  failures ${row.failures}`
  )
}
console.log(
  `ours/hand: throughput x${(ours.callsPerSecond / hand.callsPerSecond).toFixed(2)}, cpu x${
    (ours.cpuMicrosPerCall / hand.cpuMicrosPerCall).toFixed(2)
  }; floor/hand: cpu x${(floor.cpuMicrosPerCall / hand.cpuMicrosPerCall).toFixed(2)}; ours/floor: cpu x${
    (ours.cpuMicrosPerCall / floor.cpuMicrosPerCall).toFixed(2)
  }`
)
process.exit(0)
