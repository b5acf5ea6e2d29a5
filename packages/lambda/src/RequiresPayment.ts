/**
 * The seed's `@requires_payment` for TypeScript: wraps an agent's Lambda handler (behind the
 * AgentCore Gateway) so that each billable call is verified, run and settled in one invocation.
 *
 * @since 0.1.0
 */
import * as CallSpan from "@effect-x402/core/CallSpan"
import type * as Credits from "@effect-x402/core/Credits"
import type { Facilitator } from "@effect-x402/core/Facilitator"
import * as Idempotency from "@effect-x402/core/Idempotency"
import * as Paywall from "@effect-x402/core/Paywall"
import * as SettlementLedger from "@effect-x402/core/SettlementLedger"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as AgentCore from "./AgentCore.js"
import { handlerFailureOutput, internalFailureOutput, paymentFailureOutput, settingsOf } from "./internal/answers.js"
import { handlerFailed, invoke } from "./internal/handler.js"
import { answerCodec, idempotencyFailureOutput, keyOfCall, withId } from "./internal/idempotency.js"
import { lambdaDeadline } from "./internal/lambdaDeadline.js"
import { redactedPolicy, requestIdOf } from "./internal/redact.js"
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
  /** Credits per call of this tool (a number or a function of the event). Default: the options' `credits`. */
  readonly credits?: Credits.Policy<AgentCore.InterceptorInput, R> | undefined
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
   */
  readonly credits?: Credits.Policy<AgentCore.InterceptorInput, R> | undefined
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
  /** Advertised as `resource.url`. */
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

const PAYMENT_REQUIRED_MESSAGE = "Payment required to access this resource"

const paywallOptions = <R>(
  options: Options<R, unknown, unknown>,
  credits: Credits.Policy<AgentCore.InterceptorInput, R> | undefined
): Paywall.Options<
  AgentCore.InterceptorInput,
  R,
  unknown
> => ({
  planId: options.planId,
  planIds: options.planIds,
  agentId: options.agentId,
  // Its failures reach spans and errors as `InvalidCredits` details: redacted first.
  credits: redactedPolicy(credits),
  chargeFromContent: options.chargeFromContent,
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

const answerOf = (outcome: Idempotency.Outcome<AgentCore.Answer>, id: AgentCore.JsonRpcId): AgentCore.Answer => {
  switch (outcome._tag) {
    case "Replayed":
      // An earlier attempt's answer under this idempotency key: nothing run or charged now.
      return AgentCore.enrich(withId(outcome.value, id), outcome.settlement)
    case "Settled":
      return AgentCore.enrich(outcome.value, outcome.settlement)
    case "NotCharged":
      return outcome.value
    case "Released":
      // The reference's behaviour: a receipt that says `success: false` when the facilitator
      // answered, none when the call itself failed.
      return outcome.error.settlement !== undefined
        ? AgentCore.enrich(outcome.value, outcome.error.settlement)
        : outcome.value
  }
}

type AnyPaywall<R> = Paywall.Paywall<AgentCore.InterceptorInput, R, unknown>

interface DeclaredTool<R> {
  readonly paywall: AnyPaywall<R>
}

const isObjectSchema = (u: unknown): boolean => AgentCore.isRecord(u) && AgentCore.own(u, "type") === "object"

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
  const paywall = Paywall.make(paywallOptions(options, options.credits))
  const { billable, free, tokenHeaders } = settingsOf(options, [])
  const declarations = options.tools === undefined ? undefined : Object.entries(options.tools).map(
    ([name, tool]): readonly [string, ToolDeclaration<R>, AnyPaywall<R>] => {
      if (name.length === 0) throw new RangeError("tools: a tool needs a name")
      if (!AgentCore.isRecord(tool) || !isObjectSchema(tool.inputSchema)) {
        throw new RangeError(`tools.${name}: inputSchema must be a JSON Schema of type "object"`)
      }
      return [
        name,
        tool,
        tool.credits === undefined ? paywall : Paywall.make(paywallOptions(options, tool.credits))
      ]
    }
  )
  const tools = declarations === undefined
    ? undefined
    : new Map(declarations.map(([name, , toolPaywall]): [string, DeclaredTool<R>] => [name, { paywall: toolPaywall }]))
  const listing = declarations === undefined ? undefined : listingOf(declarations, options.agentId)
  const serverInfo = options.serverInfo ?? { name: "effect-x402", version: "0.2.0" }
  // Idempotent retries use the context's SettlementLedger, else this one (one per cold start).
  const ledger = SettlementLedger.contextOrMemory()

  // What the library answers itself, without the handler (`undefined`: not one of these).
  const builtIn = (call: AgentCore.Call): AgentCore.Answer | undefined => {
    switch (call.method) {
      case "initialize": {
        const requested = AgentCore.own(call.request.params, "protocolVersion")
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

  return <H extends Handler>(handler: H) =>
  (
    event: unknown,
    context: LambdaRuntime.LambdaContext
  ): Effect.Effect<
    AgentCore.InterceptorOutput,
    never,
    Facilitator | R | LambdaRuntime.RequirementsOf<ReturnType<H>>
  > =>
    Effect.gen(function*() {
      const decoded = AgentCore.decodeCall(event)
      if (Either.isLeft(decoded)) {
        yield* Effect.logWarning(`x402: ${decoded.left.message}`)
        return AgentCore.respond(AgentCore.invalidEventAnswer(decoded.left))
      }
      const call = decoded.right
      yield* CallSpan.annotate({ "mcp.method": call.method, "mcp.tool": call.toolName ?? "" })
      // With declared tools, a call of any other tool runs nothing and charges nothing.
      let priced = paywall
      if (tools !== undefined && call.method === "tools/call") {
        const full = AgentCore.fullToolNameOf(call.method, call.request.params)
        const tool = (full !== undefined ? tools.get(full) : undefined) ??
          (call.toolName !== undefined ? tools.get(call.toolName) : undefined)
        if (tool === undefined) return AgentCore.respond(AgentCore.unknownToolAnswer(call.id, full))
        priced = tool.paywall
      }
      const run = invoke<R | LambdaRuntime.RequirementsOf<ReturnType<H>>>(() => handler(call.event, context)).pipe(
        Effect.flatMap((value) =>
          Either.match(AgentCore.normalize(value, call.id), {
            onLeft: (reason) => Effect.fail(handlerFailed("The handler returned an invalid result", causeOf(reason))),
            onRight: Effect.succeed
          })
        )
      )
      if (!billable.has(call.method)) {
        if (!free.has(call.method)) {
          // Fail closed: what is neither billable nor declared free never reaches the handler.
          return AgentCore.respond(builtIn(call) ?? AgentCore.methodNotFoundAnswer(call.id))
        }
        return yield* run.pipe(
          Effect.map(AgentCore.respond),
          Effect.catchTag("HandlerFailed", (error) => handlerFailureOutput(call.id, error, requestIdOf(context)))
        )
      }
      const paid = {
        request: call.event,
        token: AgentCore.tokenOf(call.headers, tokenHeaders),
        paymentRequiredMessage: PAYMENT_REQUIRED_MESSAGE,
        deadline: yield* lambdaDeadline(context)
      }
      const key = Idempotency.validateKey(keyOfCall(call))
      if (Either.isLeft(key)) return yield* idempotencyFailureOutput(call.id, key.left, requestIdOf(context))
      // Without a key, exactly the paywall: no ledger, nothing else on the hot path.
      const protect = key.right === undefined
        ? Paywall.protect(priced, paid, () => run, protectOptions)
        : Idempotency.protect(priced, paid, key.right, () => run, { ...protectOptions, codec: answerCodec, ledger })
      return yield* protect.pipe(
        Effect.map((outcome) => AgentCore.respond(answerOf(outcome, call.id))),
        Effect.catchAll((error) =>
          error._tag === "HandlerFailed"
            ? handlerFailureOutput(call.id, error, requestIdOf(context))
            : error._tag === "IdempotencyError"
            ? idempotencyFailureOutput(call.id, error, requestIdOf(context))
            : paymentFailureOutput(priced, call.id, error, requestIdOf(context))
        )
      )
    }).pipe(
      Effect.catchAllCause((cause) => internalFailureOutput(cause, requestIdOf(context))),
      // One span per call when a tracer listens (Paywall sets its attributes on it), none otherwise.
      (effect) => CallSpan.wrap(effect, "RequiresPayment.handle")
    )
}

const causeOf = (reason: string) => Cause.die(new Error(reason))

const protectOptions: Paywall.ProtectOptions<AgentCore.Answer> = {
  isError: (answer) => !AgentCore.isChargeable(answer),
  chargeOf: (answer) => AgentCore.chargeSource(answer, { headers: false })
}

/**
 * Wraps an agent's Lambda handler with x402 payment: the seed's `@requires_payment`.
 *
 * - `initialize`, `ping` and `tools/list` are answered from the options (the tools and their
 *   prices), notifications accepted, unknown methods and tools refused, all without the handler;
 * - no token: the 402-style answer, the facilitator not called;
 * - a token the facilitator refuses: the 402-style answer, nothing settled;
 * - the handler fails, throws or answers `isError`: an error result, nothing settled (a failure's
 *   message goes to the log, redacted; the caller gets a generic one and the request id);
 * - otherwise the credits are settled (`_meta.creditsToCharge` may override the amount) and the
 *   answer carries the `payment-response` receipt and `_meta.x402`.
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
  ): LambdaRuntime.Handler<unknown, AgentCore.InterceptorOutput> & {
    readonly runtime: LambdaRuntime.LambdaRuntime<Facilitator | R>
  } => {
    // `Checked` proved that the handler needs nothing beyond `R`.
    const effect = make(handler) as (
      event: unknown,
      context: LambdaRuntime.LambdaContext
    ) => Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R>
    const runtime = LambdaRuntime.make(layer, { memoMap: options.memoMap })
    const lambda = (event: unknown, context: LambdaRuntime.LambdaContext): Promise<AgentCore.InterceptorOutput> =>
      runtime.run(
        Effect.suspend(() => effect(event, context)),
        () => AgentCore.respond(AgentCore.internalErrorAnswerFor(requestIdOf(context)))
      )
    return Object.assign(lambda, { runtime })
  }
}
