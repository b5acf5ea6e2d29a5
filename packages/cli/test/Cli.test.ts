// The CLI run in-process with NodeContext, its console captured: decode, balance and pay against
// FakeNevermined and a LocalGateway (interceptor in front of an MCP target) on loopback.
import { Cli } from "@effect-x402/cli"
import { X402 } from "@effect-x402/core"
import { Adapter } from "@effect-x402/core"
import type { LocalGateway } from "@effect-x402/testing"
import { NodeContext } from "@effect/platform-node"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Console, Effect, Exit } from "effect"
import * as PayingGateway from "../../testing/test/fixtures/payingGateway.js"

/** Runs `effect-x402 ...args`, returning what it printed and how it ended. */
const cli = (...args: ReadonlyArray<string>) => {
  const lines: Array<string> = []
  const write = (...parts: ReadonlyArray<unknown>) => Effect.sync(() => void lines.push(parts.map(String).join(" ")))
  const unsafeWrite = (...parts: ReadonlyArray<unknown>) => void lines.push(parts.map(String).join(" "))
  const unsafe = new Proxy({} as Console.UnsafeConsole, { get: () => unsafeWrite })
  const console = new Proxy({} as Console.Console, {
    get: (_, key) => key === Console.TypeId ? Console.TypeId : key === "unsafe" ? unsafe : write
  })
  return Cli.run(["node", "effect-x402", ...args]).pipe(
    Effect.provide(NodeContext.layer),
    Effect.withConsole(console),
    Effect.exit,
    Effect.map((exit) => ({ exit, output: lines.join("\n") }))
  )
}

const PLAN = "plan-cli"
const saved = { ...process.env }
let paying: PayingGateway.PayingGateway
let fake: PayingGateway.PayingGateway["fake"]
let gateway: PayingGateway.PayingGateway["gateway"]

const target: LocalGateway.Target = ({ body }) => ({
  statusCode: 200,
  headers: { "Content-Type": "application/json" },
  body: {
    jsonrpc: "2.0",
    id: Adapter.own(body, "id") ?? null,
    result: {
      content: [{
        type: "text",
        text: `Sunny in ${String(Adapter.own(Adapter.own(Adapter.own(body, "params"), "arguments"), "city"))}`
      }]
    }
  }
})

beforeAll(async () => {
  paying = await PayingGateway.start({ planId: PLAN, agentId: "agent-cli", credits: 2, target })
  fake = paying.fake
  gateway = paying.gateway
  Object.assign(process.env, paying.subscriberEnv)
})

afterAll(async () => {
  process.env = saved
  await paying?.close()
})

describe("effect-x402 decode", () => {
  it.effect("reads a payment-required and a payment-response header", () =>
    Effect.gen(function*() {
      const required = X402.PaymentRequiredHeader.encode(X402.paymentRequired({
        planIds: ["plan-1"],
        network: "eip155:84532",
        endpoint: "https://agent.example/mcp"
      }))
      const decoded = yield* cli("decode", required)
      assert.isTrue(Exit.isSuccess(decoded.exit))
      assert.strictEqual(JSON.parse(decoded.output).kind, "payment-required")
      assert.strictEqual(JSON.parse(decoded.output).value.accepts[0].planId, "plan-1")
      const receipt = X402.SettleResponseHeader.encode({
        success: true,
        transaction: "0xabc",
        network: "eip155:84532",
        creditsRedeemed: "2"
      })
      assert.strictEqual(JSON.parse((yield* cli("decode", receipt)).output).value.creditsRedeemed, "2")
    }))

  it.effect("shows a token without its secret parts: no signature, no session keys, never the token", () =>
    Effect.gen(function*() {
      const b64url = (json: unknown) => Buffer.from(JSON.stringify(json)).toString("base64url")
      const jwt = `${b64url({ alg: "ES256" })}.${
        b64url({ sub: "0xabc", sessionKey: "sk-live-123" })
      }.c2lnbmF0dXJlLXNlY3JldA`
      const shown = yield* cli("decode", jwt)
      const parsed = JSON.parse(shown.output)
      assert.strictEqual(parsed.format, "JWT")
      assert.strictEqual(parsed.value.claims.sub, "0xabc")
      for (const secret of ["sk-live-123", "c2lnbmF0dXJlLXNlY3JldA", jwt]) assert.notInclude(shown.output, secret)

      const opaque = fake.ledger.mintToken({ planId: PLAN, subscriber: fake.subscriber })
      const plain = yield* cli("decode", opaque)
      assert.strictEqual(JSON.parse(plain.output).format, "opaque")
      assert.notInclude(plain.output, opaque)
    }))
})

describe("effect-x402 balance and pay", () => {
  it.live("balance: the subscriber's credits on a plan", () =>
    Effect.gen(function*() {
      const { exit, output } = yield* cli("balance", PLAN)
      assert.isTrue(Exit.isSuccess(exit), output)
      assert.include(output, `${fake.ledger.balance(fake.subscriber, PLAN)} credits on plan ${PLAN}`)
    }))

  it.live("pay --tool: 402 → balance → token → paid → receipt, charged once, the token never shown", () =>
    Effect.gen(function*() {
      const before = fake.ledger.balance(fake.subscriber, PLAN)
      const { exit, output } = yield* cli("pay", gateway.url, "--tool", "forecast", "--args", "{\"city\":\"Lisbon\"}")
      assert.isTrue(Exit.isSuccess(exit), output)
      const steps = output.split("\n").map((line) => line.split(" ")[0]).filter((word) => word.length > 0)
      assert.deepStrictEqual(steps.filter((s) => ["402", "balance", "token", "paid", "receipt"].includes(s)), [
        "402",
        "balance",
        "token",
        "paid",
        "receipt"
      ])
      assert.include(output, "Sunny in Lisbon")
      assert.include(output, "2 credit(s) redeemed")
      assert.strictEqual(fake.ledger.balance(fake.subscriber, PLAN), before - 2)
      assert.strictEqual(fake.ledger.settlements.length, 1)
      for (const token of fake.ledger.tokens.keys()) assert.notInclude(output, token)
    }))

  it.live("pay without NVM_API_KEY fails naming the variable, before any request", () =>
    Effect.gen(function*() {
      const key = process.env.NVM_API_KEY
      delete process.env.NVM_API_KEY
      const settled = fake.ledger.settlements.length
      const { exit } = yield* cli("pay", gateway.url, "--tool", "forecast").pipe(
        Effect.ensuring(Effect.sync(() => process.env.NVM_API_KEY = key))
      )
      assert(Exit.isFailure(exit))
      assert.include(String(exit.cause), "NVM_API_KEY is not set")
      assert.strictEqual(fake.ledger.settlements.length, settled)
    }))

  it.effect("--help names every subcommand and the pay options", () =>
    Effect.gen(function*() {
      const top = yield* cli("--help")
      for (const name of ["decode", "pay", "balance"]) assert.include(top.output, name)
      const payHelp = yield* cli("pay", "--help")
      for (const option of ["--tool", "--args", "--delegation"]) assert.include(payHelp.output, option)
    }))
})
