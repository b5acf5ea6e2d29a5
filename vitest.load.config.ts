// The load test (issue 6): `pnpm test:load`. Kept out of `pnpm test` because it takes a while; CI
// runs it as a step of its own. Its node runs with --expose-gc, to measure the heap after a GC.
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["packages/*/test/load/**/*.load.ts"],
    pool: "forks",
    poolOptions: { forks: { execArgv: ["--expose-gc"], singleFork: true } },
    testTimeout: 600_000,
    hookTimeout: 60_000
  }
})
