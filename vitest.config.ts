import { defineConfig } from "vitest/config"

// The AWS SDK warns once per process that Node 20 support is ending; the DynamoDB ledger tests
// would print it in every run. Set here so every test worker inherits it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true"

export default defineConfig({
  test: {
    projects: ["packages/*", "examples/*"],
    reporters: process.env.CI ? ["default", ["json", { outputFile: ".ci/results.json" }]] : ["default"]
  }
})
