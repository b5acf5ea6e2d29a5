import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "example-readme",
    include: ["test/**/*.test.ts", "snippets/**/*.test.ts"],
    testTimeout: 30_000
  }
})
