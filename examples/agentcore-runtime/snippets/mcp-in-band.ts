import { McpPayment, Paywall } from "@effect-x402/core"
import { Effect } from "effect"

const paywall = Paywall.make<unknown, never, McpPayment.ToolResult>({ planId: "plan-1", credits: 1 })

// In any MCP server's `tools/call` handler: pass the request's `params._meta` (and its HTTP headers,
// if any). The result carries the receipt in `_meta["x402/payment-response"]`, or is the
// payment-required result when the caller did not pay.
export const weather = (params: { readonly arguments: unknown; readonly _meta?: unknown }) =>
  McpPayment.protect(
    paywall,
    { request: params.arguments, meta: params._meta, toolName: "weather" },
    Effect.succeed({ content: [{ type: "text", text: "sunny" }] })
  )
