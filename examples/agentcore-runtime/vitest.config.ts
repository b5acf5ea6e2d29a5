import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "example-agentcore-runtime",
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000
  }
})
