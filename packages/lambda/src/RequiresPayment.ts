/**
 * The Python SDK's `@requires_payment` for TypeScript: wraps an agent's Lambda handler (behind the
 * AgentCore Gateway) so that each billable call is verified, run and settled in one invocation.
 *
 * @since 0.1.0
 */
import * as CallSpan from "@effect-x402/core/CallSpan"
import type * as Credits from "@effect-x402/core/Credits"
import type { Facilitator } from "@effect-x402/core/Facilitator"
import * as Idempotency from "@effect-x402/core/Idempotency"
import * as Paywall from "@effect-x402/core/Paywall"
import type * as X402 from "@effect-x402/core/X402"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Fiber from "effect/Fiber"
import type * as Tracer from "effect/Tracer"
import * as AgentCore from "./AgentCore.js"
import {
  handlerFailureOutput,
  internalFailureOutput,
  invalidEventOutput,
  paymentFailureOutput,
  settingsOf
} from "./internal/answers.js"
import { type HandlerFailed, invoke } from "./internal/handler.js"
import { idempotencyFailureOutput, keyedProtector, keyOfCall, withId } from "./internal/idempotency.js"
import { tokenOfCall, withReceipt } from "./internal/inBand.js"
import * as Json from "./internal/json.js"
import { lambdaDeadlineAt } from "./internal/lambdaDeadline.js"
import { paywallOf } from "./internal/paywalls.js"
import { requestIdOf } from "./internal/redact.js"
import * as LambdaRuntime from "./LambdaRuntime.js"

/**
 * What the wrapped handler receives: the gateway event exactly as it came, and the Lambda context.
 * It may return an Effect, a Promise or a plain value, in any of the four formats of docs/protocol.md §4.
 *
 * @since 0.1.0
 * @category models
 */
export type Handler = (event: AgentCore.InterceptorInput, context: LambdaRuntime.LambdaContext) => unknown

/**
 * A tool the handler serves, as `tools/list` shows it (MCP's `Tool`), with its price.
 *
 * @since 0.2.0
 * @category models
 */
export interface ToolDeclaration<R = never> {
  readonly title?: string | undefined
  readonly description?: string | undefined
  /** The JSON Schema of the tool's arguments: an object schema (`{ type: "object", ... }`). */
  readonly inputSchema: { readonly type: "object"; readonly [keyword: string]: unknown }
  readonly outputSchema?: { readonly type: "object"; readonly [keyword: string]: unknown } | undefined
  readonly annotations?: { readonly [key: string]: unknown } | undefined
  /**
   * Credits per call of this tool (a number or a function of the event). Default: the options'
   * `credits`. Its services come from the options' `services` (not inferred from here).
   */
  readonly credits?: Credits.Policy<AgentCore.InterceptorInput, NoInfer<R>> | undefined
}

/**
 * The `_meta` key under which `tools/list` shows each tool's price: `{ planIds, agentId?, credits }`
 * for a fixed price, `{ planIds, agentId?, dynamic: true }` when a function sets it per call
 * (docs/protocol.md §3).
 *
 * @since 0.2.0
 * @category constants
 */
export const PRICE_META_KEY = "x402/price"

/**
 * A tool's price as `tools/list` shows it under `_meta["x402/price"]`.
 *
 * @since 0.2.0
 * @category models
 */
export type ToolPrice =
  | { readonly planIds: ReadonlyArray<string>; readonly agentId?: string; readonly credits: number }
  | { readonly planIds: ReadonlyArray<string>; readonly agentId?: string; readonly dynamic: true }

/**
 * The MCP protocol versions `initialize` accepts, newest first; another requested version is
 * answered with the newest.
 *
 * @since 0.2.0
 * @category constants
 */
export const PROTOCOL_VERSIONS: ReadonlyArray<string> = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]

/**
 * Options of `requiresPayment`.
 *
 * Which calls run the handler (docs/protocol.md §3): a billable method (default `tools/call`) once
 * paid; a method in `freeMethods`, unpaid. `initialize`, `ping` and `tools/list` are answered from
 * `tools` without the handler, notifications are accepted without it, a `tools/call` of an
 * undeclared tool is refused (`-32602`) and any other method gets `-32601`. Methods match exactly.
 *
 * Since 0.2.0 this fails closed where 0.1 ran the handler unpaid for every method that was not
 * billable (a handler that ignores the method handed out its paid output for `tools/list`,
 * `Tools/Call` or `x/anything`). A handler that answers `tools/list` itself keeps working with
 * `freeMethods: ["tools/list"]`; declaring `tools` is the better fix.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<R = never, LE = never, SE = never>
  extends Paywall.Hooks<unknown>, AgentCore.GatewayOptions, LambdaRuntime.RuntimeOptions<R, LE, SE>
{
  /** The plan to pay with; or `planIds` to accept several (one `accepts` entry each). */
  readonly planId?: string | undefined
  readonly planIds?: ReadonlyArray<string> | undefined
  readonly agentId?: string | undefined
  /**
   * Credits per call, for verify and as the default settle amount: a number, or a function of the
   * event (sync, Promise or Effect). Default 1. The handler may override the settle amount with
   * `_meta.creditsToCharge`.
   *
   * An Effect policy's services come from `services`: the options' requirements are what `services`
   * provides, so a policy needing one service and a handler needing another both compile when
   * `services` provides the two, and a policy needing what `services` lacks is refused.
   */
  readonly credits?: Credits.Policy<AgentCore.InterceptorInput, NoInfer<R>> | undefined
  /**
   * The tools the handler serves, by name (exact, case-sensitive; a gateway's `Target___` prefix is
   * dropped before matching). `tools/list` is answered from them, each with its price in
   * `_meta["x402/price"]`; a `tools/call` of any other name is refused (`-32602`) without running
   * the handler or charging. Without `tools`, every `tools/call` is charged the options' `credits`
   * and `tools/list` gets `-32601` unless listed in `freeMethods`.
   *
   * @since 0.2.0
   */
  readonly tools?: { readonly [name: string]: ToolDeclaration<R> } | undefined
  /** What `initialize` answers as `serverInfo`. Default `{ name: "effect-x402", version: "0.2.0" }`. */
  readonly serverInfo?: { readonly name: string; readonly version: string } | undefined
  /** What `initialize` answers as `instructions`. */
  readonly instructions?: string | undefined
  /**
   * Advertised as `resource.url`. Default: the function's ARN from the Lambda context (since 0.3.0;
   * before, an empty URL), as the interceptor does; with neither, a warning says to set it.
   */
  readonly endpoint?: string | undefined
  /**
   * Let a JSON content text item (`{"creditsToCharge": n}`) or the answer's top level set the settle
   * amount, as the Python SDK does. Off by default: a tool that echoes caller text would otherwise
   * let the caller choose its price (see `Paywall.Options.chargeFromContent`).
   *
   * @since 0.2.0
   */
  readonly chargeFromContent?: boolean | undefined
}

/**
 * The `_meta` the library adds to a paid call's result: the receipt for the x402 MCP transport
 * (`x402/payment-response`) and for the Python SDK's clients (`x402`); `x402: true` on a
 * payment-required answer (docs/mcp.md).
 *
 * @since 0.3.0
 * @category models
 */
export interface ResultMeta {
  readonly "x402/payment-response"?: typeof X402.SettleResponse.Encoded | undefined
  readonly x402?: X402.MetaX402 | true | { readonly idempotency: string } | undefined
  readonly [key: string]: unknown
}

/**
 * The error result the library answers itself (payment required, refused, failed; a handler
 * failure): `isError`, one text item holding JSON, and for a payment-required answer the
 * PaymentRequired as `structuredContent` (docs/mcp.md).
 *
 * @since 0.3.0
 * @category models
 */
export interface ErrorResult {
  readonly isError: true
  readonly content: ReadonlyArray<{ readonly type: "text"; readonly text: string }>
  readonly structuredContent?: { readonly [key: string]: unknown } | undefined
  readonly _meta?: ResultMeta | undefined
}

/**
 * The body of an answer: a JSON-RPC response whose `result` is the handler's result (with the
 * receipt in `_meta`) or the library's `ErrorResult`; a JSON-RPC `error` for a refused method; the
 * `{ error, requestId }` of an internal failure; `null` for an accepted notification.
 *
 * @since 0.3.0
 * @category models
 */
export type AnswerBody<A> = {
  readonly jsonrpc?: string | undefined
  readonly id?: AgentCore.JsonRpcId | undefined
  readonly result?:
    | (A & { readonly isError?: boolean | undefined; readonly _meta?: ResultMeta | undefined })
    | ErrorResult
    | undefined
  readonly error?: { readonly code: number; readonly message: string } | string | undefined
  readonly requestId?: string | undefined
} | null

/**
 * What a handler's result is once run: an Effect's success, a Promise's value, or the value.
 *
 * @since 0.3.0
 * @category type-level
 */
export type HandlerResult<H extends Handler> = SuccessOf<ReturnType<H>>

// Distributes over a union of return types (an Effect on one path, a Promise on another).
type SuccessOf<T> = T extends Effect.Effect<infer A, infer _E, infer _R> ? A : Awaited<T>

/**
 * The body of `requiresPayment`'s answers for a handler: typed as `AnswerBody` when the handler
 * returns an MCP result; `unknown` when it may return an `InterceptorOutput` or a JSON-RPC response
 * of its own (the library passes their body through), or is typed `unknown` or `any`.
 *
 * @since 0.3.0
 * @category type-level
 */
export type BodyOf<H extends Handler> = unknown extends HandlerResult<H> ? unknown
  : [Extract<HandlerResult<H>, { readonly interceptorOutputVersion: unknown } | { readonly jsonrpc: unknown }>] extends
    [never] ? AnswerBody<HandlerResult<H>>
  : unknown

/**
 * What `requiresPayment`'s Lambda answers: an `InterceptorOutput` that always carries a
 * `transformedGatewayResponse`, whose body is typed where the handler's result type says what it is.
 * It is an `AgentCore.InterceptorOutput`.
 *
 * @example
 * ```ts
 * const output = await handler(event, context)
 * const text = output.mcp.transformedGatewayResponse.body?.result?.content[0]?.text
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface Output<Body = unknown> extends AgentCore.InterceptorOutput {
  readonly mcp: {
    readonly transformedGatewayResponse: {
      readonly statusCode: number
      readonly headers?: { readonly [name: string]: string } | undefined
      readonly body: Body
    }
  }
}

const PAYMENT_REQUIRED_MESSAGE = "Payment required to access this resource"

const answerOf = (outcome: Idempotency.Outcome<AgentCore.Answer>, id: AgentCore.JsonRpcId): AgentCore.Answer => {
  switch (outcome._tag) {
    case "Replayed":
      // An earlier attempt's answer under this idempotency key: nothing run or charged now.
      return withReceipt(withId(outcome.value, id), outcome.settlement)
    case "Settled":
      return withReceipt(outcome.value, outcome.settlement)
    case "NotCharged":
      return outcome.value
    case "Released":
      // The reference's behaviour: a receipt that says `success: false` when the facilitator
      // answered, none when the call itself failed.
      return outcome.error.settlement !== undefined
        ? withReceipt(outcome.value, outcome.error.settlement)
        : outcome.value
  }
}

type AnyPaywall<R> = Paywall.Paywall<AgentCore.InterceptorInput, R, unknown>

interface DeclaredTool<R> {
  readonly paywall: AnyPaywall<R>
}

const isObjectSchema = (u: unknown): boolean => Json.isRecord(u) && Json.own(u, "type") === "object"

// The `tools/list` result, built once per cold start: it only depends on the options.
const listingOf = <R>(
  declared: ReadonlyArray<readonly [string, ToolDeclaration<R>, AnyPaywall<R>]>,
  agentId: string | undefined
) => ({
  tools: declared.map(([name, tool, paywall]) => {
    const base = { planIds: paywall.planIds, ...(agentId !== undefined ? { agentId } : {}) }
    const price: ToolPrice = typeof paywall.credits === "number"
      ? { ...base, credits: paywall.credits }
      : { ...base, dynamic: true }
    return {
      name,
      ...(tool.title !== undefined ? { title: tool.title } : {}),
      ...(tool.description !== undefined ? { description: tool.description } : {}),
      inputSchema: tool.inputSchema,
      ...(tool.outputSchema !== undefined ? { outputSchema: tool.outputSchema } : {}),
      ...(tool.annotations !== undefined ? { annotations: tool.annotations } : {}),
      _meta: { [PRICE_META_KEY]: price }
    }
  })
})

/**
 * The paid handler as an Effect handler: what `requiresPayment` runs, for use with another Lambda
 * runtime such as `@effect-aws/lambda`'s `LambdaHandler.make({ handler, layer })`. Its answer is
 * always an `InterceptorOutput`: every failure is already an answer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const effectHandler = <R = never, LE = never, SE = never>(options: Options<R, LE, SE>) => {
  // Validated now: a tool declared or priced wrongly should stop the cold start, not its first call.
  const paywall = paywallOf<R>(options)
  const { billable, free, tokenHeaders } = settingsOf(options, [])
  const declarations = options.tools === undefined ? undefined : Object.entries(options.tools).map(
    ([name, tool]): readonly [string, ToolDeclaration<R>, AnyPaywall<R>] => {
      if (name.length === 0) throw new RangeError("tools: a tool needs a name")
      if (!Json.isRecord(tool) || !isObjectSchema(tool.inputSchema)) {
        throw new RangeError(`tools.${name}: inputSchema must be a JSON Schema of type "object"`)
      }
      return [
        name,
        tool,
        tool.credits === undefined ? paywall : paywallOf<R>(options, { credits: tool.credits })
      ]
    }
  )
  const tools = declarations === undefined
    ? undefined
    : new Map(declarations.map(([name, , toolPaywall]): [string, DeclaredTool<R>] => [name, { paywall: toolPaywall }]))
  const listing = declarations === undefined ? undefined : listingOf(declarations, options.agentId)
  const serverInfo = options.serverInfo ?? { name: "effect-x402", version: "0.2.0" }
  // Idempotent retries use the context's SettlementLedger, else one of its own (one per cold start).
  const protectKeyed = keyedProtector()
  // Without an `endpoint` the resource URL is the function's ARN (as the interceptor, and the
  // Python SDK's interceptor, advertise); with neither, the 402 would name no resource: said once.
  let unnamedResourceWarned = options.endpoint !== undefined
  const resourceUrlOf = (context: LambdaRuntime.LambdaContext): string | undefined => {
    if (options.endpoint !== undefined) return undefined
    const arn = Json.own(context, "invokedFunctionArn")
    return typeof arn === "string" && arn.length > 0 ? arn : undefined
  }
  const warnUnnamedResource = Effect.suspend(() => {
    unnamedResourceWarned = true
    return Effect.logWarning(
      "x402: requiresPayment has no `endpoint` and the Lambda context no function ARN: the 402 names no " +
        "resource URL. Set `endpoint` to the URL callers use (e.g. the gateway's MCP URL)."
    )
  })

  // What the library answers itself, without the handler (`undefined`: not one of these).
  const builtIn = (call: AgentCore.Call): AgentCore.Answer | undefined => {
    switch (call.method) {
      case "initialize": {
        const requested = Json.own(call.request.params, "protocolVersion")
        return AgentCore.resultAnswer(call.id, {
          protocolVersion: typeof requested === "string" && PROTOCOL_VERSIONS.includes(requested)
            ? requested
            : PROTOCOL_VERSIONS[0],
          capabilities: { tools: { listChanged: false } },
          serverInfo,
          ...(options.instructions !== undefined ? { instructions: options.instructions } : {})
        })
      }
      case "ping":
        return AgentCore.resultAnswer(call.id, {})
      case "tools/list":
        return listing === undefined ? undefined : AgentCore.resultAnswer(call.id, listing)
    }
    // A notification has no id and wants no answer: accepted, nothing run.
    return call.method.startsWith("notifications/") && call.request.id === undefined
      ? AgentCore.acceptedAnswer
      : undefined
  }

  // The one call: its routing, token and deadline are plain code run inside the call's single
  // `withFiberRuntime` (the fiber gives the clock and whether a tracer listens); the Effects left
  // are the handler, the facilitator's two answers and the answer's mapping, each one operation.
  const callOf = <RH>(
    run: (
      call: AgentCore.Call,
      context: LambdaRuntime.LambdaContext
    ) => Effect.Effect<AgentCore.Answer, HandlerFailed, RH>,
    event: unknown,
    context: LambdaRuntime.LambdaContext,
    span: Tracer.Span | undefined,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R | RH> => {
    const decoded = AgentCore.decodeCall(event)
    if (Either.isLeft(decoded)) return invalidEventOutput(decoded.left)
    const call = decoded.right
    CallSpan.set(span, { "mcp.method": call.method, "mcp.tool": call.toolName ?? "" })
    // With declared tools, a call of any other tool runs nothing and charges nothing.
    let priced = paywall
    if (tools !== undefined && call.method === "tools/call") {
      const full = AgentCore.fullToolNameOf(call.method, call.request.params)
      const tool = (full !== undefined ? tools.get(full) : undefined) ??
        (call.toolName !== undefined ? tools.get(call.toolName) : undefined)
      if (tool === undefined) return Effect.succeed(AgentCore.respond(AgentCore.unknownToolAnswer(call.id, full)))
      priced = tool.paywall
    }
    if (!billable.has(call.method)) {
      if (!free.has(call.method)) {
        // Fail closed: what is neither billable nor declared free never reaches the handler.
        return Effect.succeed(AgentCore.respond(builtIn(call) ?? AgentCore.methodNotFoundAnswer(call.id)))
      }
      return Effect.matchEffect(run(call, context), {
        onFailure: (error) => handlerFailureOutput(call.id, error, requestIdOf(context)),
        onSuccess: (answer) => Effect.succeed(AgentCore.respond(answer))
      })
    }
    // From `params._meta["x402/payment"]` or a token header (docs/mcp.md). A malformed in-band
    // payment, or one that disagrees with the header, is answered "payment required" with the
    // reason, the facilitator never asked: no token is verified that another would settle.
    const token = tokenOfCall(call, tokenHeaders)
    const resourceUrl = resourceUrlOf(context)
    const paid: Paywall.Call<AgentCore.InterceptorInput> = {
      request: call.event,
      token: token._tag === "Token" ? token.token : undefined,
      paymentRequiredMessage: token._tag === "Refused" ? token.message : PAYMENT_REQUIRED_MESSAGE,
      resourceUrl,
      deadline: lambdaDeadlineAt(context, CallSpan.nowOf(fiber))
    }
    const key = Idempotency.validateKey(keyOfCall(call))
    if (Either.isLeft(key)) return idempotencyFailureOutput(call.id, key.left, requestIdOf(context))
    // Without a key, exactly the paywall: no ledger, nothing else on the hot path.
    const work = () => run(call, context)
    const protect = key.right === undefined
      ? Paywall.protect(priced, paid, work, protectOptions)
      : protectKeyed(priced, paid, key.right, work, protectOptions)
    const answered = Effect.matchEffect(protect, {
      onFailure: (error) =>
        error._tag === "HandlerFailed"
          ? handlerFailureOutput(call.id, error, requestIdOf(context))
          : error._tag === "IdempotencyError"
          ? idempotencyFailureOutput(call.id, error, requestIdOf(context))
          : paymentFailureOutput(priced, call.id, error, requestIdOf(context)),
      onSuccess: (outcome) => Effect.succeed(AgentCore.respond(answerOf(outcome, call.id)))
    })
    return resourceUrl === undefined && !unnamedResourceWarned
      ? Effect.zipRight(warnUnnamedResource, answered)
      : answered
  }

  return <H extends Handler>(handler: H) => {
    type RH = R | LambdaRuntime.RequirementsOf<ReturnType<H>>
    // The handler, run and its result read as an answer: one failure type, one operation.
    const run = (call: AgentCore.Call, context: LambdaRuntime.LambdaContext) =>
      invoke<AgentCore.Answer, RH>(
        () => handler(call.event, context),
        (value) => AgentCore.normalize(value, call.id),
        "The handler returned an invalid result"
      )
    return (
      event: unknown,
      context: LambdaRuntime.LambdaContext
    ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | RH> =>
      Effect.catchAllCause(
        // One span per call when a tracer listens (Paywall sets its attributes on it), none otherwise.
        CallSpan.withCall("RequiresPayment.handle", noAttributes, (span, fiber) =>
          callOf(run, event, context, span, fiber)),
        (cause) =>
          internalFailureOutput(cause, requestIdOf(context))
      )
  }
}

const noAttributes = () => ({})

const protectOptions: Paywall.ProtectOptions<AgentCore.Answer> = {
  isError: (answer) => !AgentCore.isChargeable(answer),
  chargeOf: (answer) => AgentCore.chargeSource(answer, { headers: false })
}

/**
 * Wraps an agent's Lambda handler with x402 payment: the Python SDK's `@requires_payment`.
 *
 * - `initialize`, `ping` and `tools/list` are answered from the options (the tools and their
 *   prices), notifications accepted, unknown methods and tools refused, all without the handler;
 * - no token: the 402-style answer, the facilitator not called;
 * - a token the facilitator refuses: the 402-style answer, nothing settled;
 * - the handler fails, throws or answers `isError`: an error result, nothing settled (a failure's
 *   message goes to the log, redacted; the caller gets a generic one and the request id);
 * - otherwise the credits are settled (`_meta.creditsToCharge` may override the amount) and the
 *   answer carries the `payment-response` receipt header, `_meta["x402/payment-response"]` and
 *   `_meta.x402`;
 * - the token comes from the token header or `params._meta["x402/payment"]` (docs/mcp.md); both,
 *   disagreeing, are refused as ambiguous without asking the facilitator. A payment-required answer
 *   carries the PaymentRequired in the `payment-required` header and as the result's
 *   `structuredContent`, so a client that reads only JSON-RPC bodies can pay.
 *
 * The runtime (facilitator, HTTP pool, services) is built on the first invocation and reused.
 *
 * @example
 * ```ts
 * import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
 *
 * export const handler = requiresPayment({
 *   planId: process.env.NVM_PLAN_ID!,
 *   credits: 1,
 *   tools: { hello: { description: "Says hello", inputSchema: { type: "object" } } }
 * })(async (event) => ({ content: [{ type: "text", text: "Hello!" }] }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const requiresPayment = <R = never, LE = never, SE = never>(options: Options<R, LE, SE>) => {
  const make = effectHandler(options)
  const layer = LambdaRuntime.layerOf(options)
  return <H extends Handler>(
    handler: LambdaRuntime.Checked<H, R>
  ): LambdaRuntime.Handler<unknown, Output<BodyOf<H>>> & {
    readonly runtime: LambdaRuntime.LambdaRuntime<Facilitator | R>
  } => {
    // `Checked` proved that the handler needs nothing beyond `R`.
    const effect = make(handler) as (
      event: unknown,
      context: LambdaRuntime.LambdaContext
    ) => Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R>
    const runtime = LambdaRuntime.make(layer, { memoMap: options.memoMap })
    // Every answer is `respond(...)` of a body built from the handler's result or by the library
    // (`AnswerBody`), so it is an `Output`: the types only name what the runtime already holds.
    const lambda = (event: unknown, context: LambdaRuntime.LambdaContext): Promise<Output<BodyOf<H>>> =>
      runtime.run(
        // Building the program runs nothing (it starts in `withCall`): no suspension needed.
        effect(event, context),
        () => AgentCore.respond(AgentCore.internalErrorAnswerFor(requestIdOf(context)))
      ) as Promise<Output<BodyOf<H>>>
    return Object.assign(lambda, { runtime })
  }
}
