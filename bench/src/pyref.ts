/**
 * payments-py as a candidate of the same run: the Python reference's benchmark script, which lives
 * beside the repository (see bench/README.md), times the Python SDK's own `requires_payment`
 * decorator and two-phase interceptor with the facilitator mocked, and prints one JSON line. Its
 * figures go in the tables next to ours. When the script, python3 or pydantic is missing, the report
 * says so instead.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { Stats } from "./harness.js"

export const PYREF_DECORATOR = "payments-py requires_payment (Python)"
export const PYREF_INTERCEPTOR = "payments-py interceptor REQUEST+RESPONSE (Python)"

interface Figures {
  readonly median_us: number
  readonly p99_us: number
  readonly min_us: number
  readonly mean_us: number
  readonly n: number
  readonly best_block_median_us?: number
}

export type PyRef =
  | {
    readonly _tag: "Measured"
    readonly script: string
    readonly python: string
    readonly version: string
    readonly decorator: Stats
    readonly interceptor: Stats | undefined
    readonly vectorsChecked: boolean
  }
  | { readonly _tag: "Missing"; readonly script: string; readonly reason: string }

const statsOf = (name: string, f: Figures): Stats => ({
  name,
  samples: f.n,
  min: f.min_us * 1000,
  median: f.median_us * 1000,
  p99: f.p99_us * 1000,
  mean: f.mean_us * 1000
})

/** Runs the Python reference (`n` timed calls per scenario). Never throws: a failure is `Missing`. */
export const run = (root: string, n: number): PyRef => {
  const script = Path.resolve(root, "../shared/pyref/run.sh")
  const shown = Path.relative(root, script)
  if (!Fs.existsSync(script)) return { _tag: "Missing", script: shown, reason: `${shown} is absent` }
  const probe = ChildProcess.spawnSync(process.env["PYTHON"] ?? "python3", ["-c", "import pydantic"], {
    encoding: "utf8"
  })
  if (probe.error !== undefined) return { _tag: "Missing", script: shown, reason: "python3 is not installed" }
  if (probe.status !== 0) return { _tag: "Missing", script: shown, reason: "python3 has no pydantic" }
  const out = ChildProcess.spawnSync("bash", [script, "--n", String(n), "--warmup", String(Math.ceil(n / 10))], {
    encoding: "utf8",
    timeout: 600_000
  })
  if (out.status !== 0) {
    return { _tag: "Missing", script: shown, reason: `run.sh failed: ${(out.stderr || "").trim().slice(0, 200)}` }
  }
  try {
    const line = out.stdout.trim().split("\n").pop() ?? ""
    const json = JSON.parse(line) as Figures & {
      readonly python: string
      readonly payments_py_version: string
      readonly vectors_checked: boolean
      readonly variants: Record<string, Figures>
    }
    const both = json.variants["interceptor_request_response"]
    return {
      _tag: "Measured",
      script: shown,
      python: json.python,
      version: json.payments_py_version,
      decorator: statsOf(PYREF_DECORATOR, json),
      interceptor: both !== undefined ? statsOf(PYREF_INTERCEPTOR, both) : undefined,
      vectorsChecked: json.vectors_checked
    }
  } catch (error) {
    return { _tag: "Missing", script: shown, reason: `run.sh printed no JSON figures (${String(error)})` }
  }
}
