/**
 * Sections 1, 4 and 5's in-memory ledger (per-invocation overhead, scaling, ledger) as users run the library: `pnpm bench` bundles
 * this file with esbuild (as it bundles the profile target) and runs it in a child process, so every
 * candidate (ours, the floors, the hand-written agent, `@x402/core`) runs as plain JavaScript, as
 * shipped. Under `tsx` every function created per call is wrapped by the loader's `__name` helper
 * (esbuild's `keepNames`): it charged code that makes closures per call (ours) ~5 µs per warm call
 * that no user pays, and the Effect floor next to nothing.
 *
 * Arguments: `<overhead|scaling> <budget JSON> <options JSON> <result file>`; the result is written
 * as JSON to the file (stdout and stderr stay the run's log).
 */
import * as Fs from "node:fs/promises"
import { memoryLedger } from "./ledger.js"
import { overhead, scaling } from "./overhead.js"

const [section, budget, options, out] = process.argv.slice(2)
const result = section === "overhead"
  ? await overhead(JSON.parse(budget), JSON.parse(options))
  : section === "scaling"
  ? await scaling(JSON.parse(budget))
  : section === "ledger"
  ? await memoryLedger(JSON.parse(budget))
  : undefined
if (result === undefined) throw new Error(`inProcess: unknown section ${section}`)
await Fs.writeFile(out, JSON.stringify(result))
// Servers and pools may linger a moment after their close: the section is over, so is the process.
process.exit(0)
