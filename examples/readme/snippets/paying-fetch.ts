import { Subscriber, X402Client, X402Fetch } from "@effect-x402/core"
import { FetchHttpClient } from "@effect/platform"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Layer } from "effect"

// A fetch that pays, for code outside Effect: the subscriber's NVM_API_KEY, NVM_ENVIRONMENT and
// NVM_DELEGATION_ID (the delegation that funds the tokens) come from the environment.
export const payingFetch = X402Fetch.fromLayer(
  X402Client.layer().pipe(
    Layer.provide(Subscriber.layerConfig()),
    Layer.provide(FetchHttpClient.layer)
  )
)

// The MCP TypeScript SDK's client, paying for its tool calls through the gateway.
export const connectPaid = async (gatewayUrl: string) => {
  const client = new Client({ name: "my-agent", version: "1.0.0" })
  await client.connect(new StreamableHTTPClientTransport(new URL(gatewayUrl), { fetch: payingFetch }))
  return client
}
