/**
 * One candidate in a loop, for `node --cpu-prof`: `pnpm bench --profile <target> [seconds]` bundles
 * this file and runs it, so the profile shows the shipped JavaScript and no TypeScript loader.
 */
import * as Http from "node:http"
import { agentCoreCandidates, httpCandidates, interceptorCandidates } from "./overhead.js"
import * as Wire from "./wire.js"

export const TARGETS = [
  "requiresPayment",
  "httpHandler",
  "interceptor",
  "x402core",
  "handwritten",
  "wire",
  "wire-handwritten"
] as const

const target = process.argv[2] ?? "requiresPayment"
const seconds = Number(process.argv[3] ?? 10)

const pick = async () => {
  switch (target) {
    case "requiresPayment":
      return (await agentCoreCandidates({ only: ["effect-x402"] }))[0]
    case "httpHandler":
      return (await httpCandidates({ only: ["effect-x402"] }))[0]
    case "interceptor":
      return (await interceptorCandidates())[0]
    case "x402core":
      return (await agentCoreCandidates({ only: ["@x402/core"] }))[0]
    case "handwritten":
      return (await agentCoreCandidates({ only: ["hand-written"] }))[0]
    default:
      throw new Error(`unknown profile target ${target}; one of ${TARGETS.join(", ")}`)
  }
}

// Over the wire: the agent, the fake backend and the load generator (16 connections) in this process.
if (target === "wire" || target === "wire-handwritten") {
  const setup = await Wire.setup(target === "wire" ? "ours" : "handwritten")
  const agent = new Http.Agent({ keepAlive: true, maxSockets: 16 })
  const end = performance.now() + seconds * 1000
  let calls = 0
  while (performance.now() < end) calls += (await Wire.load(setup, agent, 200, 16)).latencies.length
  agent.destroy()
  await setup.close()
  process.stdout.write(`${setup.name}: ${calls} calls in ${seconds} s, ${(calls / seconds).toFixed(0)} calls/s\n`)
  process.exit(0)
}

const candidate = await pick()
const end = performance.now() + seconds * 1000
let calls = 0
while (performance.now() < end) {
  await candidate.run()
  calls++
}
process.stdout.write(
  `${candidate.name}: ${calls} calls in ${seconds} s, ${(seconds * 1e6 / calls).toFixed(1)} µs per call\n`
)
