/**
 * Sections 1 and 4: what one warm invocation costs with payment protection, against a
 * hand-written baseline, `@x402/core` and the bare handler, all with a facilitator that answers at
 * once; then how that cost grows with the request's size and with the number of plans.
 */
import * as FacilitatorModule from "@effect-x402/core/Facilitator"
import * as HttpHandler from "@effect-x402/lambda/HttpHandler"
import * as Interceptor from "@effect-x402/lambda/Interceptor"
import * as LambdaRuntime from "@effect-x402/lambda/LambdaRuntime"
import * as RequiresPayment from "@effect-x402/lambda/RequiresPayment"
import { AgentCoreEvents } from "@effect-x402/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import {
  AGENT_ID,
  agentCoreEvent,
  argumentsOf,
  ENDPOINT,
  HTTP_RESULT,
  httpEvent,
  httpRoute,
  immediateFacilitator,
  immediatePlainFacilitator,
  lambdaContext,
  mcpTool,
  NETWORK,
  PLAN_ID,
  planIdsOf,
  SETTLED,
  TOKEN,
  VERIFIED
} from "./fixtures.js"
import * as Floor from "./floor.js"
import * as Handwritten from "./handwritten.js"
import { type Budget, type Candidate, check, gc, measure, type Stats } from "./harness.js"
import * as Otel from "./otel.js"
import * as PyRef from "./pyref.js"
import * as X402Core from "./x402core.js"

const agentCoreHeaders = (answer: unknown): Record<string, string> =>
  (answer as { mcp: { transformedGatewayResponse: { headers: Record<string, string> } } }).mcp
    .transformedGatewayResponse.headers

const paidAgentCore = (answer: unknown) => {
  const headers = agentCoreHeaders(answer)
  return typeof headers["payment-response"] === "string" || typeof headers["PAYMENT-RESPONSE"] === "string"
}
const paidHttp = (answer: unknown) => {
  const headers = (answer as { headers: Record<string, string> }).headers
  return (answer as { statusCode: number }).statusCode === 200 &&
    (typeof headers["payment-response"] === "string" || typeof headers["PAYMENT-RESPONSE"] === "string")
}

export const OURS_AGENTCORE = "effect-x402 requiresPayment"
export const OURS_HTTP = "effect-x402 httpHandler"
export const HANDWRITTEN = "hand-written (no framework)"
export const X402_CORE = "@x402/core HTTP resource server"
export const BARE = "bare handler (no payment)"
export const RUNTIME_ONLY = "LambdaRuntime only (no payment)"
export const OURS_DISABLED = "tracing disabled: effect-x402 requiresPayment"
export const OURS_OTEL = "OTel tracer: effect-x402 requiresPayment"
export const FLOOR_OTEL = `OTel tracer: ${Floor.FLOOR_ONE_SPAN}`
export const OURS_INTERCEPTOR = "effect-x402 interceptor REQUEST+RESPONSE"

const config = (planIds: ReadonlyArray<string>): Handwritten.Config => ({
  planIds,
  agentId: AGENT_ID,
  endpoint: ENDPOINT,
  network: NETWORK,
  credits: 1
})

/** The candidates of an AgentCore tool call, over a given event body and plan list. */
export const agentCoreCandidates = async (options: {
  readonly planIds?: ReadonlyArray<string>
  readonly arguments?: Record<string, unknown>
  readonly suffix?: string
  readonly only?: ReadonlyArray<string>
} = {}): Promise<ReadonlyArray<Candidate>> => {
  const planIds = options.planIds ?? [PLAN_ID]
  const suffix = options.suffix ?? ""
  const event = agentCoreEvent({ token: TOKEN, ...(options.arguments ? { arguments: options.arguments } : {}) })
  const ours = RequiresPayment.requiresPayment({
    planIds,
    agentId: AGENT_ID,
    endpoint: ENDPOINT,
    credits: 1,
    layer: immediateFacilitator
  })(mcpTool)
  const handwritten = Handwritten.agentCore(config(planIds), immediatePlainFacilitator, mcpTool)
  const core = await X402Core.make({ planIds, agentId: AGENT_ID, network: NETWORK, endpoint: ENDPOINT })
  const coreEvent = agentCoreEvent({
    token: core.paymentSignature,
    ...(options.arguments ? { arguments: options.arguments } : {})
  })
  const coreHandler = X402Core.agentCore(core, ENDPOINT, mcpTool)
  const runtimeOnly = LambdaRuntime.toHandler({
    layer: immediateFacilitator,
    handler: (e: unknown) => Effect.promise(() => mcpTool(e)),
    fallback: () => undefined
  })
  const all: Array<Candidate & { readonly paid?: boolean }> = [
    { name: OURS_AGENTCORE + suffix, run: () => ours(event, lambdaContext), paid: true },
    { name: HANDWRITTEN + suffix, run: () => handwritten(event), paid: true },
    { name: X402_CORE + suffix, run: () => coreHandler(coreEvent), paid: true },
    { name: RUNTIME_ONLY + suffix, run: () => runtimeOnly(event, lambdaContext) },
    { name: BARE + suffix, run: () => mcpTool(event) }
  ]
  if (options.only === undefined) {
    // The same handler with tracing switched off, and with a real tracer exporting every span; the
    // Effect floors, the second of them under the same tracer.
    const disabled = RequiresPayment.requiresPayment({
      planIds,
      agentId: AGENT_ID,
      endpoint: ENDPOINT,
      credits: 1,
      layer: Layer.merge(immediateFacilitator, Layer.setTracerEnabled(false))
    })(mcpTool)
    const traced = RequiresPayment.requiresPayment({
      planIds,
      agentId: AGENT_ID,
      endpoint: ENDPOINT,
      credits: 1,
      layer: Layer.merge(immediateFacilitator, Otel.layer)
    })(mcpTool)
    const floor = Floor.make(mcpTool, Otel.layer)
    all.push(
      { name: OURS_DISABLED + suffix, run: () => disabled(event, lambdaContext), paid: true },
      { name: Floor.FLOOR_NO_SPAN + suffix, run: () => floor.noSpan(event), paid: true },
      { name: OURS_OTEL + suffix, run: () => traced(event, lambdaContext), paid: true },
      { name: FLOOR_OTEL + suffix, run: () => floor.oneSpan(event), paid: true }
    )
  }
  const chosen = all.filter((c) => options.only === undefined || options.only.some((o) => c.name.startsWith(o)))
  for (const candidate of chosen) {
    if (candidate.paid === true) await check(candidate, paidAgentCore)
  }
  return chosen
}

// Verify hands out a fresh request id each time, as the backend does: the interceptor records each
// one in its settlement ledger, and RESPONSE settles it once.
let issued = 0
const issuingFacilitator: Layer.Layer<FacilitatorModule.Facilitator> = Layer.succeed(
  FacilitatorModule.Facilitator,
  FacilitatorModule.Facilitator.of({
    verify: () => Effect.sync(() => ({ ...VERIFIED, agentRequestId: `areq_${++issued}` })),
    settle: () => Effect.succeed(SETTLED),
    networkFor: () => Effect.succeed(NETWORK),
    // As the live layer with a warm plan cache (see `immediateFacilitator`).
    cachedNetworks: (planIds) => planIds.map(() => NETWORK),
    honoursDeadline: true
  })
)

/** The two-phase interceptor: one sample is a REQUEST (verify, forward) then its RESPONSE (settle). */
export const interceptorCandidates = async (): Promise<ReadonlyArray<Candidate>> => {
  const handler = Interceptor.interceptor({
    planId: PLAN_ID,
    agentId: AGENT_ID,
    endpoint: ENDPOINT,
    credits: 1,
    layer: issuingFacilitator
  })
  // What the gateway sends, built once: the REQUEST event, and the RESPONSE event's parts (the
  // original request and the target's answer); only the forwarded headers (the issued request id
  // and its seal, new on every call) are merged in per call, as the gateway does.
  const request = AgentCoreEvents.request({ tool: "weather", token: TOKEN })
  const template = AgentCoreEvents.response({ tool: "weather", token: TOKEN })
  const { gatewayRequest, gatewayResponse } = template.mcp
  const requestHeaders = gatewayRequest.headers as Record<string, string>
  const roundTrip = async () => {
    const forwarded = await handler(request, lambdaContext) as {
      readonly mcp: { readonly transformedGatewayRequest?: { readonly headers?: Record<string, string> } }
    }
    return handler({
      interceptorInputVersion: template.interceptorInputVersion,
      mcp: {
        gatewayRequest: {
          ...gatewayRequest,
          headers: { ...requestHeaders, ...forwarded.mcp.transformedGatewayRequest?.headers }
        },
        gatewayResponse
      }
    }, lambdaContext)
  }
  const candidate: Candidate = { name: OURS_INTERCEPTOR, run: roundTrip }
  await check(candidate, paidAgentCore)
  return [candidate]
}

/** The candidates of a paid API Gateway v2 request. */
export const httpCandidates = async (options: {
  readonly body?: string
  readonly suffix?: string
  readonly only?: ReadonlyArray<string>
} = {}): Promise<ReadonlyArray<Candidate>> => {
  const suffix = options.suffix ?? ""
  const body = options.body !== undefined ? { body: options.body } : {}
  const event = httpEvent({ token: TOKEN, ...body })
  const ours = HttpHandler.httpHandler({ planId: PLAN_ID, agentId: AGENT_ID, credits: 1, layer: immediateFacilitator })(
    httpRoute
  )
  const handwritten = Handwritten.http(config([PLAN_ID]), immediatePlainFacilitator, httpRoute)
  const core = await X402Core.make({ planIds: [PLAN_ID], agentId: AGENT_ID, network: NETWORK, endpoint: ENDPOINT })
  const coreEvent = httpEvent({ token: core.paymentSignature, ...body })
  const coreHandler = X402Core.http(core, httpRoute)
  const runtimeOnly = LambdaRuntime.toHandler({
    layer: immediateFacilitator,
    handler: (e: unknown) => Effect.promise(() => httpRoute(e)),
    fallback: () => HTTP_RESULT
  })
  const all: Array<Candidate & { readonly paid?: boolean }> = [
    { name: OURS_HTTP + suffix, run: () => ours(event, lambdaContext), paid: true },
    { name: HANDWRITTEN + suffix, run: () => handwritten(event), paid: true },
    { name: X402_CORE + suffix, run: () => coreHandler(coreEvent), paid: true },
    { name: RUNTIME_ONLY + suffix, run: () => runtimeOnly(event, lambdaContext) },
    { name: BARE + suffix, run: () => httpRoute(event) }
  ]
  const chosen = all.filter((c) => options.only === undefined || options.only.some((o) => c.name.startsWith(o)))
  for (const candidate of chosen) {
    if (candidate.paid === true) await check(candidate, paidHttp)
  }
  return chosen
}

export interface OverheadResult {
  readonly agentCore: ReadonlyArray<Stats>
  readonly http: ReadonlyArray<Stats>
  readonly interceptor: ReadonlyArray<Stats>
  /** payments-py, measured by its own script in the same run. */
  readonly pyref: PyRef.PyRef
}

export const overhead = async (budget: Budget, options: { readonly root: string; readonly pyrefCalls: number }) => {
  gc()
  const agentCore = await measure(await agentCoreCandidates(), budget)
  gc()
  const http = await measure(await httpCandidates(), budget)
  gc()
  const interceptor = await measure(await interceptorCandidates(), {
    ...budget,
    rounds: Math.max(1, budget.rounds / 3)
  })
  // The Python reference runs alone, after ours: the two never share the CPUs.
  process.stderr.write("bench: payments-py (../shared/pyref/run.sh)...\n")
  const pyref = PyRef.run(options.root, options.pyrefCalls)
  return { agentCore, http, interceptor, pyref } satisfies OverheadResult
}

export const SIZES: ReadonlyArray<{ readonly label: string; readonly bytes: number }> = [
  { label: "1 KB", bytes: 1024 },
  { label: "64 KB", bytes: 64 * 1024 },
  { label: "1 MB", bytes: 1024 * 1024 }
]
export const PLAN_COUNTS: ReadonlyArray<number> = [1, 10, 100]

export interface ScalingResult {
  readonly bytes: ReadonlyArray<
    { readonly label: string; readonly bytes: number; readonly stats: ReadonlyArray<Stats> }
  >
  readonly httpBytes: ReadonlyArray<
    { readonly label: string; readonly bytes: number; readonly stats: ReadonlyArray<Stats> }
  >
  readonly plans: ReadonlyArray<{ readonly plans: number; readonly stats: ReadonlyArray<Stats> }>
}

const split = <A>(stats: ReadonlyArray<Stats>, groups: ReadonlyArray<A>, suffixOf: (a: A) => string) =>
  groups.map((group) => ({ group, stats: stats.filter((s) => s.name.endsWith(suffixOf(group))) }))

export const scaling = async (budget: Budget): Promise<ScalingResult> => {
  const only = [OURS_AGENTCORE, HANDWRITTEN, BARE]
  const suffixOfSize = (size: { readonly label: string }) => ` [${size.label}]`
  gc()
  const bySize: Array<Candidate> = []
  for (const size of SIZES) {
    bySize.push(
      ...await agentCoreCandidates({ arguments: argumentsOf(size.bytes), suffix: suffixOfSize(size), only })
    )
  }
  const bytes = split(await measure(bySize, budget), SIZES, suffixOfSize).map(({ group, stats }) => ({
    ...group,
    stats
  }))
  gc()
  const byHttpSize: Array<Candidate> = []
  for (const size of SIZES) {
    byHttpSize.push(
      ...await httpCandidates({
        body: JSON.stringify(argumentsOf(size.bytes)),
        suffix: suffixOfSize(size),
        only: [OURS_HTTP, HANDWRITTEN, BARE]
      })
    )
  }
  const httpBytes = split(await measure(byHttpSize, budget), SIZES, suffixOfSize).map(({ group, stats }) => ({
    ...group,
    stats
  }))
  gc()
  const suffixOfPlans = (n: number) => ` [${n} plan${n === 1 ? "" : "s"}]`
  const byPlans: Array<Candidate> = []
  for (const n of PLAN_COUNTS) {
    byPlans.push(
      ...await agentCoreCandidates({
        planIds: planIdsOf(n),
        suffix: suffixOfPlans(n),
        only: [OURS_AGENTCORE, HANDWRITTEN, X402_CORE]
      })
    )
  }
  const plans = split(await measure(byPlans, budget), PLAN_COUNTS, suffixOfPlans).map(({ group, stats }) => ({
    plans: group,
    stats
  }))
  return { bytes, httpBytes, plans }
}
