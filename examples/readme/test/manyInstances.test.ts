// README "Running on many instances": the snippet, run as two instances (two imports of it, each its
// own runtime and DynamoDB client) against dynalite on loopback and FakeNevermined, configured only
// through the environment variables the section names. REQUEST on one instance, RESPONSE on the
// other: settled once; the RESPONSE replayed on either instance: the same receipt, nothing charged;
// the store down: nothing forwarded, no output, nothing charged.
import { X402 } from "@effect-x402/core"
import type * as AgentCore from "@effect-x402/lambda/AgentCore"
import { AgentCoreEvents, FakeNevermined } from "@effect-x402/testing"
import { afterAll, assert, beforeAll, describe, it, vi } from "@effect/vitest"
import { Either } from "effect"
import { join } from "node:path"

/** The part of packages/lambda/test/dynamoDbServer.ts this test uses. */
interface DynamoDbServer {
  readonly endpoint: string
  readonly proxyEndpoint: string
  readonly tableName: string
  readonly requests: Map<string, number>
  readonly resetCount: () => void
  readonly closeProxy: () => Promise<void>
  readonly close: () => Promise<void>
}

// dynalite is a devDependency of @effect-x402/lambda, whose test helper starts it on 127.0.0.1; it
// is imported by path at run time (outside this project's sources, so tsc does not follow it).
const serverModule = join(import.meta.dirname, "..", "..", "..", "packages", "lambda", "test", "dynamoDbServer.ts")
const startStore = async (tableName: string): Promise<DynamoDbServer> =>
  ((await import(/* @vite-ignore */ serverModule)) as { start: (t: string) => Promise<DynamoDbServer> }).start(
    tableName
  )

const outputOf = (out: AgentCore.InterceptorOutput) => {
  const response = out.mcp.transformedGatewayResponse
  const body = response?.body as { result?: { isError?: boolean; content?: Array<{ text: string }> } }
  return { headers: response?.headers ?? {}, result: body?.result }
}

const receiptOf = (out: AgentCore.InterceptorOutput) =>
  Either.getOrThrow(X402.ReceiptHeader.decodeEither(outputOf(out).headers["payment-response"] ?? ""))

type Handler = (event: unknown, context: unknown) => Promise<AgentCore.InterceptorOutput>

/** One Lambda instance: a fresh import of the snippet (its own runtime, its own DynamoDB client). */
const instance = async (): Promise<Handler> => {
  vi.resetModules()
  return (await import("../snippets/many-instances.js")).handler as Handler
}

describe("README: running on many instances (dynalite and FakeNevermined on loopback)", () => {
  let fake: Awaited<ReturnType<typeof FakeNevermined.start>>
  let store: DynamoDbServer
  const saved = { ...process.env }
  // The snippet logs through Effect's default logger (to the console): kept here, not printed, and
  // checked for tokens.
  const logged: Array<string> = []
  const keep = (...args: Array<unknown>) => {
    logged.push(args.map(String).join(" "))
  }

  beforeAll(async () => {
    for (const level of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation(keep)
    }
    store = await startStore("x402-ledger-readme")
    fake = await FakeNevermined.start()
    fake.ledger.addPlan({ planId: "plan-123" })
    fake.ledger.fund(fake.subscriber, "plan-123", 50)
    Object.assign(process.env, {
      NVM_API_KEY: fake.apiKey,
      NVM_BACKEND_URL: fake.url,
      NVM_PLAN_ID: "plan-123",
      X402_LEDGER_TABLE: store.tableName,
      X402_REQUEST_SEAL_KEY: "readme-seal-key-the-same-on-every-instance",
      // Where the AWS SDK finds DynamoDB (here dynalite), as it would find the real one on Lambda.
      AWS_ENDPOINT_URL_DYNAMODB: store.endpoint,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test"
    })
  }, 30_000)
  afterAll(async () => {
    vi.restoreAllMocks()
    process.env = saved
    await fake?.close()
    await store?.close()
  })

  const token = () => fake.ledger.mintToken({ planId: "plan-123", subscriber: fake.subscriber })
  const balance = () => fake.ledger.balance(fake.subscriber, "plan-123")

  it("REQUEST on one instance, RESPONSE on another: settled once; a replay answers the same receipt", async () => {
    const [a, b] = [await instance(), await instance()]
    assert.notStrictEqual(a, b)
    const paying = token()
    const before = balance()
    store.resetCount()
    const forwarded = await a(AgentCoreEvents.request({ tool: "report", token: paying }), AgentCoreEvents.context())
    const headers = forwarded.mcp.transformedGatewayRequest?.headers
    assert.isDefined(headers, "a verified call is forwarded to the target")
    assert.isUndefined(headers!["payment-signature"], "without the token")
    // The REQUEST phase's cost: one conditional write.
    assert.deepStrictEqual(Object.fromEntries(store.requests), { PutItem: 1 })
    const response = AgentCoreEvents.response({
      tool: "report",
      token: paying,
      forwardedHeaders: headers as Record<string, string>,
      result: { content: [{ type: "text", text: "the report" }] }
    })
    const paid = await b(response, AgentCoreEvents.context())
    assert.strictEqual(outputOf(paid).result?.content?.[0].text, "the report")
    const receipt = receiptOf(paid)
    assert.strictEqual(receipt.success, true)
    assert.strictEqual(balance(), before - 1)
    // The RESPONSE phase's: the claim and the finish, no re-record (3 writes per paid call, as the
    // README says).
    assert.deepStrictEqual(Object.fromEntries(store.requests), { PutItem: 1, UpdateItem: 2 })

    // The gateway (or anyone who can invoke the Lambda) delivers the RESPONSE again, to both.
    for (
      const replayed of await Promise.all([
        a(response, AgentCoreEvents.context()),
        b(response, AgentCoreEvents.context())
      ])
    ) {
      assert.strictEqual(outputOf(replayed).result?.content?.[0].text, "the report")
      assert.strictEqual(receiptOf(replayed).transactionHash, receipt.transactionHash)
    }
    assert.strictEqual(balance(), before - 1, "charged once")
    assert.strictEqual(fake.ledger.settlements.length, 1)
    assert.isTrue(logged.some((line) => line.includes("a replayed RESPONSE was answered from the ledger")))
    for (const line of logged) assert.notInclude(line, paying)
  })

  it("the store down: the call is not forwarded (fail closed), nothing is charged", async () => {
    // A fresh instance whose DynamoDB is a closed port.
    await store.closeProxy()
    process.env.AWS_ENDPOINT_URL_DYNAMODB = store.proxyEndpoint
    try {
      const down = await instance()
      const before = balance()
      const out = await down(AgentCoreEvents.request({ tool: "report", token: token() }), AgentCoreEvents.context())
      assert.isUndefined(out.mcp.transformedGatewayRequest, "nothing reaches the target")
      assert.strictEqual(out.mcp.transformedGatewayResponse?.statusCode, 500)
      assert.notInclude(JSON.stringify(out), "the report")
      assert.strictEqual(balance(), before)
      assert.isTrue(logged.some((line) => line.includes("verified call not forwarded")))
    } finally {
      process.env.AWS_ENDPOINT_URL_DYNAMODB = store.endpoint
    }
  }, 20_000)
})
