import { assert, describe, it } from "@effect/vitest"
import { parseArgs, USAGE } from "../main.js"

describe("pnpm demo's command line", () => {
  it("--help and -h print the usage, naming every flag", () => {
    assert.deepStrictEqual(parseArgs(["--help"]), { _tag: "Help" })
    assert.deepStrictEqual(parseArgs(["--interceptor", "-h"]), { _tag: "Help" })
    for (const flag of ["--interceptor", "--http-target", "--json", "--exhaust", "--help"]) assert.include(USAGE, flag)
  })

  it("an unknown flag is a usage error that names it, never a run", () => {
    const parsed = parseArgs(["--interceptr", "--json"])
    assert(parsed._tag === "Usage")
    assert.strictEqual(parsed.message, "unknown argument: --interceptr")
    assert.strictEqual(parseArgs(["decorator"])._tag, "Usage")
  })

  it("known flags choose the flavour and the output", () => {
    assert.deepStrictEqual(parseArgs([]), {
      _tag: "Run",
      options: { flavour: "decorator", json: false, exhaust: undefined }
    })
    assert.deepStrictEqual(parseArgs(["--interceptor", "--json"]), {
      _tag: "Run",
      options: { flavour: "interceptor", json: true, exhaust: undefined }
    })
    assert.deepStrictEqual(parseArgs(["--http-target"]), {
      _tag: "Run",
      options: { flavour: "http-target", json: false, exhaust: undefined }
    })
  })

  it("--interceptor and --http-target together are a usage error", () => {
    assert.strictEqual(parseArgs(["--interceptor", "--http-target"])._tag, "Usage")
  })
})
