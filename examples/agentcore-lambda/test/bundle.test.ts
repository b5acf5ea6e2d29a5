import { X402 } from "@effect-x402/core"
import { AgentCoreEvents, FakeNevermined, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"
import { bundle } from "../bundle.js"

// What the Lambda Node.js runtime does: import the ESM file, call `handler(event, context)`.
const RUNNER = `
const { handler } = await import(process.env.BUNDLE_URL)
const events = JSON.parse(process.env.EVENTS)
const context = JSON.parse(process.env.CONTEXT)
const outputs = []
for (const event of events) outputs.push(await handler(event, context))
process.stdout.write(JSON.stringify(outputs))
`

const runInNode = (env: Record<string, string>) =>
  Effect.async<string, Error>((resume) => {
    const child = ChildProcess.execFile(
      process.execPath,
      ["--input-type=module", "-e", RUNNER],
      // A clean environment: nothing of the test runner leaks into the plain Node process.
      { env: { PATH: process.env.PATH ?? "", ...env }, timeout: 20_000 },
      (error, stdout, stderr) =>
        resume(error ? Effect.fail(new Error(`${error.message}\n${stderr}`)) : Effect.succeed(stdout))
    )
    return Effect.sync(() => child.kill())
  })

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any

const receiptOf = (output: Json) =>
  Either.getOrThrow(X402.ReceiptHeader.decodeEither(output.mcp.transformedGatewayResponse.headers["payment-response"]))

describe("example: AgentCore Lambda bundle", () => {
  it.effect("bundles to a single ESM file that runs in plain Node against a Nevermined backend", () => {
    const ledger = new TestFacilitator.Ledger()
    return Effect.gen(function*() {
      const dir = yield* Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "x402-bundle-")))
      const { bytes, outfile } = yield* Effect.promise(() => bundle(Path.join(dir, "handler.mjs")))
      assert.deepStrictEqual(yield* Effect.promise(() => Fs.readdir(dir)), ["handler.mjs"])
      assert.isAbove(bytes, 0)
      const source = yield* Effect.promise(() => Fs.readFile(outfile, "utf8"))
      assert.notMatch(source, /from\s*["'](effect|@effect|@effect-x402)/, "every dependency is inlined")

      const backend = yield* FakeNevermined.FakeNevermined
      ledger.addPlan({ planId: "plan-1", agentId: "agent-1" })
      ledger.fund(backend.subscriber, "plan-1", 10)
      const token = ledger.mintToken({ planId: "plan-1", subscriber: backend.subscriber, agentId: "agent-1" })
      const events = [
        AgentCoreEvents.request({ tool: "getPatient", arguments: { patient_id: "123" } }),
        AgentCoreEvents.request({ token, tool: "getPatient", arguments: { patient_id: "123" } }),
        AgentCoreEvents.request({ token, tool: "getPatient", arguments: { patient_id: "7", detailed: true } }),
        AgentCoreEvents.request({ token, tool: "getPatient", arguments: {} }),
        AgentCoreEvents.request({ method: "tools/list" })
      ]
      const stdout = yield* runInNode({
        BUNDLE_URL: Url.pathToFileURL(outfile).href,
        EVENTS: JSON.stringify(events),
        CONTEXT: JSON.stringify({ functionName: "paid-agent", awsRequestId: "r-1" }),
        NVM_API_KEY: backend.apiKey,
        NVM_BACKEND_URL: backend.url,
        NVM_PLAN_ID: "plan-1",
        NVM_AGENT_ID: "agent-1",
        NVM_ENDPOINT: "https://gateway.example/mcp"
      })
      const [required, paid, detailed, invalid, listed]: Array<Json> = JSON.parse(stdout)

      const requiredHeader = required.mcp.transformedGatewayResponse.headers["payment-required"]
      const paymentRequired = Either.getOrThrow(X402.PaymentRequiredHeader.decodeEither(requiredHeader))
      assert.strictEqual(paymentRequired.resource.url, "https://gateway.example/mcp")
      assert.strictEqual(paymentRequired.accepts[0].extra?.agentId, "agent-1")

      assert.include(paid.mcp.transformedGatewayResponse.body.result.content[0].text, "Patient 123")
      assert.isTrue(receiptOf(paid).success)
      assert.strictEqual(receiptOf(detailed).creditsRedeemed, "2")
      assert.strictEqual(invalid.mcp.transformedGatewayResponse.body.result.isError, true)
      assert.isUndefined(invalid.mcp.transformedGatewayResponse.headers["payment-response"])
      assert.strictEqual(listed.mcp.transformedGatewayResponse.statusCode, 200)
      assert.strictEqual(listed.mcp.transformedGatewayResponse.body.result.tools[0].name, "getPatient")

      assert.deepStrictEqual(ledger.settlements.map((s) => s.credits), [1, 2])
      assert.strictEqual(ledger.balance(backend.subscriber, "plan-1"), 7)
      assert.strictEqual(backend.calls("verify"), 3)
      assert.strictEqual(backend.calls("settle"), 2)
      yield* Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
    }).pipe(Effect.provide(FakeNevermined.layer({ ledger })))
  })
})
