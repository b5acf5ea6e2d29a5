// docs/servers.md quotes the snippets verbatim; here they are checked to be quoted exactly, and run.
import { McpPayment, type X402 } from "@effect-x402/core"
import { TestFacilitator } from "@effect-x402/testing"
import { HttpApiBuilder, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Context, Effect, Layer } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { createServer } from "node:http"
import { join } from "node:path"
import { ApiLive } from "../snippets/http-api.js"
import { router } from "../snippets/http-app.js"
import { weather } from "../snippets/mcp-in-band.js"
import { McpLive } from "../snippets/paid-mcp-tool.js"

const root = join(import.meta.dirname, "..", "..", "..")

describe("docs/servers.md", () => {
  it("quotes every snippet verbatim", () => {
    const doc = readFileSync(join(root, "docs", "servers.md"), "utf8")
    const quoted = [...doc.matchAll(/<!-- file: (\S+) -->\n```ts\n([\s\S]*?)```\n/g)]
    assert.isAbove(quoted.length, 0)
    for (const [, path, code] of quoted) {
      assert.strictEqual(code, readFileSync(join(root, path), "utf8"), `${path} is not quoted verbatim`)
    }
    const paths = new Set(quoted.map(([, path]) => path))
    for (const file of readdirSync(join(import.meta.dirname, "..", "snippets"))) {
      assert.isTrue(paths.has(`examples/agentcore-runtime/snippets/${file}`), `${file} is not quoted`)
    }
  })
})

const serve = <E, R>(layer: Layer.Layer<never, E, R>) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      layer.pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })))
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    return address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : ""
  })

const post = (url: string, body: unknown, token?: string) =>
  Effect.promise(async () => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token !== undefined ? { "payment-signature": token } : {}) },
      body: JSON.stringify(body)
    })
    const receipt = response.headers.get("payment-response")
    return {
      status: response.status,
      json: await response.json() as unknown,
      receipt: receipt === null
        ? undefined
        : JSON.parse(Buffer.from(receipt, "base64").toString()) as X402.SettleResponse
    }
  })

describe("the snippets run", () => {
  const seeded = () => TestFacilitator.seeded({ credits: 20, agentId: "agent-1" })

  it.scopedLive("http-app: fixed and request-derived prices", () => {
    const { ledger, token } = seeded()
    return Effect.gen(function*() {
      const url = yield* serve(HttpServer.serve(router))
      assert.strictEqual((yield* post(`${url}/summarize`, {})).status, 402)
      assert.strictEqual((yield* post(`${url}/summarize`, {}, token)).receipt?.creditsRedeemed, "2")
      const translated = yield* post(`${url}/translate`, { text: "hola", pages: 3 }, token)
      assert.strictEqual(translated.receipt?.creditsRedeemed, "3")
      assert.strictEqual(ledger.totalSettled, 5)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)))
  })

  it.scopedLive("http-api: paid endpoints at two prices", () => {
    const { ledger, subscriber, token } = seeded()
    return Effect.gen(function*() {
      const url = yield* serve(HttpApiBuilder.serve().pipe(Layer.provide(ApiLive)))
      const answer = yield* post(`${url}/answer`, { question: "6 x 7" }, token)
      assert.deepStrictEqual(answer.json, { answer: `6 x 7? 42, for ${subscriber}` })
      assert.strictEqual(answer.receipt?.creditsRedeemed, "2")
      const research = yield* post(`${url}/research`, { question: "Why" }, token)
      assert.strictEqual(research.receipt?.creditsRedeemed, "10")
      assert.strictEqual(ledger.totalSettled, 12)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)))
  })

  it.effect("mcp-in-band: a tool call paid in _meta", () => {
    const { ledger, token } = seeded()
    return Effect.gen(function*() {
      const unpaid = yield* weather({ arguments: {} })
      assert.isTrue(unpaid.isError)
      const paid = yield* weather({ arguments: {}, _meta: { [McpPayment.PAYMENT_META_KEY]: token } })
      assert.strictEqual(
        (paid._meta?.[McpPayment.PAYMENT_RESPONSE_META_KEY] as X402.SettleResponse).creditsRedeemed,
        "1"
      )
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)))
  })

  it.scopedLive("paid-mcp-tool: the paid tool through the MCP SDK client", () => {
    const { ledger, token } = seeded()
    return Effect.gen(function*() {
      const url = yield* serve(McpLive)
      const client = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const client = new Client({ name: "snippet", version: "1.0.0" })
          await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`)))
          return client
        }),
        (client) => Effect.promise(() => client.close())
      )
      const result = yield* Effect.promise(() =>
        client.callTool({ name: "search", arguments: { query: "x402" }, _meta: { "x402/payment": token } })
      )
      const receipt = (result._meta as Record<string, X402.SettleResponse>)[McpPayment.PAYMENT_RESPONSE_META_KEY]
      assert.strictEqual(receipt.creditsRedeemed, "2")
      const echo = yield* Effect.promise(() => client.callTool({ name: "echo", arguments: { text: "free" } }))
      assert.isUndefined((echo._meta as Record<string, unknown> | undefined)?.[McpPayment.PAYMENT_RESPONSE_META_KEY])
      assert.strictEqual(ledger.totalSettled, 2)
    }).pipe(Effect.provide(TestFacilitator.layer(ledger)))
  })
})
