import type * as Credits from "@effect-x402/core/Credits"
import * as Paywall from "@effect-x402/core/Paywall"
import type * as AgentCore from "../AgentCore.js"
import { redactedPolicy } from "./redact.js"

/** What the AgentCore adapters' options say about pricing (the rest of `Paywall.Options`, less `httpVerb`). */
export type PricingOptions<R> = Omit<Paywall.Options<AgentCore.InterceptorInput, R, unknown>, "httpVerb" | "mimeType">

/** What a declared tool may set for itself. */
export interface ToolPricing<R> {
  readonly planId?: string | undefined
  readonly planIds?: ReadonlyArray<string> | undefined
  readonly agentId?: string | undefined
  readonly credits?: Credits.Policy<AgentCore.InterceptorInput, R> | undefined
  readonly chargeFromContent?: boolean | undefined
}

/**
 * The paywall of one tool of an AgentCore adapter (or of every call, with no tool): the tool's own
 * plans replace the options' plans (a tool accepts exactly the plans it names), its price, agent and
 * `chargeFromContent` override the options'; everything else comes from the options. Throws a
 * `RangeError` at cold start on a bad plan or price.
 */
export const paywallOf = <R>(
  options: PricingOptions<R>,
  tool: ToolPricing<R> = {}
): Paywall.Paywall<AgentCore.InterceptorInput, R, unknown> => {
  const ownPlans = tool.planId !== undefined || tool.planIds !== undefined
  return Paywall.make({
    planId: ownPlans ? tool.planId : options.planId,
    planIds: ownPlans ? tool.planIds : options.planIds,
    agentId: tool.agentId ?? options.agentId,
    // Its failures reach spans and errors as `InvalidCredits` details: redacted first.
    credits: redactedPolicy(tool.credits ?? options.credits),
    chargeFromContent: tool.chargeFromContent ?? options.chargeFromContent,
    endpoint: options.endpoint,
    network: options.network,
    scheme: options.scheme,
    description: options.description,
    // MCP over HTTP is always a POST: advertised on every 402, so single-use tokens bind to it.
    httpVerb: "POST",
    onSettleFailure: options.onSettleFailure,
    onBeforeVerify: options.onBeforeVerify,
    onAfterVerify: options.onAfterVerify,
    onAfterSettle: options.onAfterSettle,
    onPaymentError: options.onPaymentError
  })
}
