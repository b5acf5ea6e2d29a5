// README.md quotes these snippets verbatim; here that is checked, and every snippet is run: the
// live-layer ones against FakeNevermined on loopback, the others on the in-memory ledger.
import { Subscriber, X402 } from "@effect-x402/core"
import type * as AgentCore from "@effect-x402/lambda/AgentCore"
import { AgentCoreEvents, FakeNevermined, LocalGateway } from "@effect-x402/testing"
import { FetchHttpClient } from "@effect/platform"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda"
import { Console, Effect, Either, Layer } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"

/** A Console that keeps each printed line in `lines` instead of printing it. */
const capturingConsole = (lines: Array<string>): Console.Console => {
  const unsafeWrite = (...parts: ReadonlyArray<unknown>) => void lines.push(parts.map(String).join(" "))
  const write = (...parts: ReadonlyArray<unknown>) => Effect.sync(() => unsafeWrite(...parts))
  const unsafe = new Proxy({} as Console.UnsafeConsole, { get: () => unsafeWrite })
  return new Proxy({} as Console.Console, {
    get: (_, key) => key === Console.TypeId ? Console.TypeId : key === "unsafe" ? unsafe : write
  })
}

const root = join(import.meta.dirname, "..", "..", "..")
const snippets = join(import.meta.dirname, "..", "snippets")

describe("README.md", () => {
  it("quotes every snippet verbatim, and every TypeScript block is a snippet", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8")
    const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```\n/g)]
    const quoted = [...readme.matchAll(/<!-- file: (\S+) -->\n```ts\n([\s\S]*?)```\n/g)]
    assert.isAbove(quoted.length, 0)
    assert.strictEqual(quoted.length, blocks.length, "a ts block without a <!-- file: --> marker")
    for (const [, path, code] of quoted) {
      assert.strictEqual(code, readFileSync(join(root, path), "utf8"), `${path} is not quoted verbatim`)
    }
    const paths = new Set(quoted.map(([, path]) => path))
    for (const file of readdirSync(snippets)) {
      assert.isTrue(paths.has(`examples/readme/snippets/${file}`), `${file} is not quoted in README.md`)
    }
  })
})

const outputOf = (out: AgentCore.InterceptorOutput) => {
  const response = out.mcp.transformedGatewayResponse
  const body = response?.body as { result?: { isError?: boolean; content?: Array<{ text: string }> } }
  return { headers: response?.headers ?? {}, result: body?.result }
}

const receiptOf = (out: AgentCore.InterceptorOutput) =>
  Either.getOrThrow(X402.ReceiptHeader.decodeEither(outputOf(out).headers["payment-response"] ?? ""))

describe("response formats", () => {
  it("every format is enriched with the receipt, and the override burns 5", async () => {
    const formats = await import("../snippets/response-formats.js")
    formats.ledger.fund("0xme", "plan-1", 20)
    const token = formats.ledger.mintToken({ planId: "plan-1", subscriber: "0xme" })
    for (const handler of [formats.bare, formats.jsonRpc, formats.complete]) {
      const out = await handler(AgentCoreEvents.request({ tool: "hello", token }), AgentCoreEvents.context())
      assert.strictEqual(receiptOf(out).creditsRedeemed, "1")
      assert.strictEqual(outputOf(out).result?.content?.[0].text, "Hello!")
    }
    const out = await formats.expensive(AgentCoreEvents.request({ tool: "hello", token }), AgentCoreEvents.context())
    assert.strictEqual(receiptOf(out).creditsRedeemed, "5")
    assert.strictEqual(formats.ledger.balance("0xme", "plan-1"), 12)
  })
})

describe("against the Nevermined wire (FakeNevermined on loopback)", () => {
  let fake: Awaited<ReturnType<typeof FakeNevermined.start>>
  const saved = { ...process.env }

  beforeAll(async () => {
    fake = await FakeNevermined.start()
    fake.ledger.addPlan({ planId: "plan-123" })
    fake.ledger.addPlan({ planId: "plan-premium" })
    fake.ledger.fund(fake.subscriber, "plan-123", 50)
    Object.assign(process.env, {
      NVM_API_KEY: fake.apiKey,
      NVM_BACKEND_URL: fake.url,
      NVM_PLAN_ID: "plan-123",
      NVM_AGENT_ID: "agent-7"
    })
  })
  afterAll(async () => {
    process.env = saved
    await fake.close()
  })

  const token = () => fake.ledger.mintToken({ planId: "plan-123", subscriber: fake.subscriber })
  const balance = () => fake.ledger.balance(fake.subscriber, "plan-123")

  it("quick start: 402 without a token, then a paid answer with its receipt", async () => {
    const { handler } = await import("../snippets/quick-start.js")
    const unpaid = await handler(AgentCoreEvents.request({ tool: "getPatient" }), AgentCoreEvents.context())
    const required = Either.getOrThrow(
      X402.PaymentRequiredHeader.decodeEither(outputOf(unpaid).headers["payment-required"] ?? "")
    )
    assert.deepStrictEqual(required.accepts[0].planId, "plan-123")
    assert.strictEqual(required.accepts[0].extra?.agentId, "agent-7")
    assert.strictEqual(required.resource.url, "https://gateway.bedrock-agentcore.amazonaws.com/mcp")
    const before = balance()
    const paid = await handler(
      AgentCoreEvents.request({ tool: "getPatient", token: token(), arguments: { patient_id: "123" } }),
      AgentCoreEvents.context()
    )
    assert.include(outputOf(paid).result?.content?.[0].text, "\"patient\":\"123\"")
    assert.strictEqual(receiptOf(paid).creditsRedeemed, "1")
    assert.strictEqual(balance(), before - 1)
  })

  it("quick start behind LocalGateway: a real MCP client lists the priced tools, is asked to pay, pays once", async () => {
    const { handler } = await import("../snippets/quick-start.js")
    const gateway = await LocalGateway.start({ handler })
    /** An MCP SDK client over Streamable HTTP that keeps the headers of the last answer. */
    const connect = async (headers: Record<string, string> = {}) => {
      let last: Headers | undefined
      const client = new Client({ name: "readme-quick-start", version: "1.0.0" })
      await client.connect(
        new StreamableHTTPClientTransport(new URL(gateway.url), {
          requestInit: { headers },
          fetch: async (input, init) => {
            const response = await fetch(input, init)
            last = response.headers
            return response
          }
        })
      )
      return { client, header: (name: string) => last?.get(name) ?? undefined }
    }
    try {
      const settled = fake.ledger.settlements.length
      const before = balance()
      const unpaid = await connect()
      const listed = await unpaid.client.listTools()
      assert.deepStrictEqual(
        listed.tools.map((tool) => [tool.name, tool._meta?.["x402/price"]]),
        [
          ["getPatient", { planIds: ["plan-123"], agentId: "agent-7", credits: 1 }],
          ["getHistory", { planIds: ["plan-123"], agentId: "agent-7", credits: 5 }]
        ]
      )
      assert.deepStrictEqual(listed.tools[0].inputSchema.required, ["patient_id"])

      const refused = await unpaid.client.callTool({ name: "getPatient", arguments: { patient_id: "123" } })
      assert.isTrue(refused.isError)
      const text = (refused.content as Array<{ text: string }>)[0].text
      assert.strictEqual(JSON.parse(text).code, 402)
      assert.notInclude(text, "stable")
      const required = Either.getOrThrow(X402.PaymentRequiredHeader.decodeEither(unpaid.header("payment-required")!))
      assert.strictEqual(required.accepts[0].planId, "plan-123")
      await unpaid.client.close()

      const paying = await connect({ "payment-signature": token() })
      const paid = await paying.client.callTool({ name: "getPatient", arguments: { patient_id: "123" } })
      assert.notStrictEqual(paid.isError, true)
      assert.include((paid.content as Array<{ text: string }>)[0].text, "\"patient\":\"123\"")
      const receipt = Either.getOrThrow(X402.ReceiptHeader.decodeEither(paying.header("payment-response")!))
      assert.isTrue(receipt.success)
      assert.strictEqual(receipt.creditsRedeemed, "1")
      // An undeclared tool is refused before payment: nothing runs, nothing is charged.
      const unknown = await paying.client.callTool({ name: "GetPatient", arguments: {} }).then(
        () => "answered",
        (error: { code?: number }) => error.code
      )
      assert.strictEqual(unknown, -32602)
      await paying.client.close()
      assert.strictEqual(fake.ledger.settlements.length, settled + 1)
      assert.strictEqual(balance(), before - 1)
    } finally {
      await gateway.close()
    }
  })

  it("configuration: dynamic credits, custom token headers, hooks, the error hook's replacement", async () => {
    const config = await import("../snippets/configuration.js")
    const context = AgentCoreEvents.context()
    const before = balance()
    const detailed = await config.dynamic(
      AgentCoreEvents.request({ tool: "report", token: token(), arguments: { detailed: true } }),
      context
    )
    assert.strictEqual(receiptOf(detailed).creditsRedeemed, "10")
    const viaHeader = await config.customHeader(
      AgentCoreEvents.request({ tool: "report", token: token(), tokenHeader: "x-payment" }),
      context
    )
    assert.strictEqual(receiptOf(viaHeader).creditsRedeemed, "1")
    assert.strictEqual(balance(), before - 11)
    const replaced = await config.withHooks(AgentCoreEvents.request({ tool: "report" }), context)
    assert.strictEqual(outputOf(replaced).result?.content?.[0].text, "Buy credits at https://example.com/plans")
    for (const handler of [config.basic, config.withAgent]) {
      const out = await handler(AgentCoreEvents.request({ tool: "report", token: token() }), context)
      assert.strictEqual(receiptOf(out).success, true)
    }
  })

  it("interceptor: the REQUEST phase verifies each tool at its own price", async () => {
    const { handler } = await import("../snippets/interceptor.js")
    const out = await handler(
      AgentCoreEvents.request({ tool: "getPatient", token: token() }),
      AgentCoreEvents.context()
    )
    assert.isDefined(out.mcp.transformedGatewayRequest, "a verified call is forwarded to the target")
    const verify = fake.requests.filter((r) => r.route === "verify").at(-1)
    assert.strictEqual(JSON.parse(verify?.body ?? "{}").maxAmount, "2")
  })

  it("the paying client pays an HTTP Lambda and reads its receipt", async () => {
    const { handler } = await import("../snippets/http-lambda.js")
    const { callAgent } = await import("../snippets/client.js")
    // the HTTP Lambda behind a Node server that speaks API Gateway v2 events
    const server: Server = createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", async () => {
        const event: APIGatewayProxyEventV2 = AgentCoreEvents.apiGatewayV2({
          method: req.method ?? "POST",
          path: req.url ?? "/",
          headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
          body: Buffer.concat(chunks).toString("utf8")
        })
        const answer = await handler(event, AgentCoreEvents.context()) as APIGatewayProxyStructuredResultV2
        res.writeHead(answer.statusCode ?? 200, answer.headers as Record<string, string>)
        res.end(answer.body ?? "")
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/agent`
    const before = balance()
    // What the client prints is kept (not printed) and checked.
    const printed: Array<string> = []
    const body = await Effect.runPromise(
      callAgent(url).pipe(
        Effect.provide(
          Subscriber.layer({ apiKey: fake.subscriberApiKey, backendUrl: fake.url }).pipe(
            Layer.provideMerge(FetchHttpClient.layer)
          )
        ),
        Effect.withConsole(capturingConsole(printed))
      )
    )
    await new Promise<void>((resolve) => server.close(() => resolve()))
    assert.deepStrictEqual(body, { answer: "You asked for /agent" })
    assert.strictEqual(balance(), before - 1)
    assert.include(printed, `Balance: ${before} credits`)
    assert.include(printed, "Credits redeemed: 1")
    assert.isAbove(fake.calls("delegationCreate"), 0)
  })
})
