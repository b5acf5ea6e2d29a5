/**
 * The timing harness: candidates run interleaved in round-robin batches (the machine is small and
 * noisy, so every candidate sees the same noise), each call timed with `process.hrtime.bigint()`
 * after a warm-up, and reported as min / median / p99 against a baseline measured in the same run.
 */
import * as V8 from "node:v8"
import * as Vm from "node:vm"

/** One thing to time: a call that answers (or resolves) when its work is done. */
export interface Candidate {
  readonly name: string
  readonly run: () => unknown
}

/** Per-call timings of a candidate, in nanoseconds. */
export interface Stats {
  readonly name: string
  readonly samples: number
  readonly min: number
  readonly median: number
  readonly p99: number
  readonly mean: number
}

export interface Budget {
  /** Wall time to spend per candidate, warm-up excluded. */
  readonly millisPerCandidate: number
  /** Number of round-robin rounds the budget is split into. */
  readonly rounds: number
  /** Warm-up time per candidate (interleaved too), before anything is recorded. */
  readonly warmupMillis: number
  /** And at least this many warm-up calls per candidate (default 400). */
  readonly warmupCalls?: number
}

V8.setFlagsFromString("--expose-gc")
const collect = Vm.runInNewContext("gc") as (() => void) | undefined

/** Forces a full collection, so that one phase does not pay for the garbage of the previous one. */
export const gc = (): void => {
  collect?.()
}

const isThenable = (u: unknown): u is PromiseLike<unknown> =>
  typeof u === "object" && u !== null && typeof (u as { then?: unknown }).then === "function"

const now = () => process.hrtime.bigint()

const WARMUP_CALLS = 400

/** Runs a candidate for about `millis`, returning the number of calls made. */
const runFor = async (candidate: Candidate, millis: number): Promise<number> => {
  const end = now() + BigInt(Math.round(millis * 1e6))
  let calls = 0
  do {
    const out = candidate.run()
    if (isThenable(out)) await out
    calls++
  } while (now() < end)
  return calls
}

const quantile = (sorted: Float64Array, q: number): number => {
  if (sorted.length === 0) return Number.NaN
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[index]
}

export const statsOf = (name: string, values: ReadonlyArray<number> | Float64Array): Stats => {
  const sorted = Float64Array.from(values).sort()
  let sum = 0
  for (const v of sorted) sum += v
  return {
    name,
    samples: sorted.length,
    min: sorted[0] ?? Number.NaN,
    median: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    mean: sorted.length > 0 ? sum / sorted.length : Number.NaN
  }
}

/**
 * Times candidates interleaved: a warm-up, a calibration of each candidate's cost, then `rounds`
 * rounds in which every candidate runs one batch (the order rotates each round). Every call is
 * timed on its own, so p99 sees GC pauses and the like.
 */
export const measure = async (
  candidates: ReadonlyArray<Candidate>,
  budget: Budget
): Promise<ReadonlyArray<Stats>> => {
  // Warm-up by time and by count: a slow candidate needs its calls too before the JIT settles.
  const warmSlice = budget.warmupMillis / 4
  for (let i = 0; i < 4; i++) {
    for (const candidate of candidates) {
      await runFor(candidate, warmSlice)
      for (let n = 0; n < (budget.warmupCalls ?? WARMUP_CALLS) / 4; n++) {
        const out = candidate.run()
        if (isThenable(out)) await out
      }
    }
  }
  gc()
  // Calibrate: the batch size that makes one batch last about its share of the budget.
  const batchMillis = budget.millisPerCandidate / budget.rounds
  const batches = new Map<string, number>()
  for (const candidate of candidates) {
    const start = now()
    const calls = await runFor(candidate, Math.min(50, batchMillis))
    const perCall = Number(now() - start) / 1e6 / calls
    batches.set(candidate.name, Math.max(1, Math.round(batchMillis / perCall)))
  }
  const samples = new Map<string, Array<number>>(candidates.map((c) => [c.name, []]))
  gc()
  for (let round = 0; round < budget.rounds; round++) {
    for (let k = 0; k < candidates.length; k++) {
      const candidate = candidates[(round + k) % candidates.length]
      const batch = batches.get(candidate.name) ?? 1
      const into = samples.get(candidate.name)!
      for (let i = 0; i < batch; i++) {
        const t0 = now()
        const out = candidate.run()
        if (isThenable(out)) await out
        into.push(Number(now() - t0))
      }
    }
  }
  return candidates.map((c) => statsOf(c.name, samples.get(c.name)!))
}

/** Runs a candidate once and checks its answer, so a broken setup fails loudly before timing. */
export const check = async (candidate: Candidate, ok: (answer: unknown) => boolean): Promise<void> => {
  const out = candidate.run()
  const answer = isThenable(out) ? await out : out
  if (!ok(answer)) {
    throw new Error(`bench setup: ${candidate.name} answered unexpectedly: ${JSON.stringify(answer).slice(0, 400)}`)
  }
}
