/**
 * The seed's `@requires_payment` for TypeScript: wraps an agent's Lambda handler (behind the
 * AgentCore Gateway) so that each billable call is verified, run and settled in one invocation.
 *
 * @since 0.1.0
 */
import type * as Credits from "@effect-x402/core/Credits"
import type { Facilitator } from "@effect-x402/core/Facilitator"
import * as Paywall from "@effect-x402/core/Paywall"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as AgentCore from "./AgentCore.js"
import { handlerFailureOutput, paymentFailureOutput, settingsOf } from "./internal/answers.js"
import { HandlerFailed, invoke } from "./internal/handler.js"
import * as LambdaRuntime from "./LambdaRuntime.js"

/**
 * What the wrapped handler receives: the gateway event exactly as it came, and the Lambda context.
 * It may return an Effect, a Promise or a plain value, in any of the four formats of wire.md §4.
 *
 * @since 0.1.0
 * @category models
 */
export type Handler = (event: AgentCore.InterceptorInput, context: LambdaRuntime.LambdaContext) => unknown

/**
 * Options of `requiresPayment`.
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

const paywallOptions = <R>(options: Options<R, unknown, unknown>): Paywall.Options<
  AgentCore.InterceptorInput,
  R,
  unknown
> => ({
  planId: options.planId,
  planIds: options.planIds,
  agentId: options.agentId,
  credits: options.credits,
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

const answerOf = (outcome: Paywall.Outcome<AgentCore.Answer>): AgentCore.Answer => {
  switch (outcome._tag) {
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

/**
 * The paid handler as an Effect handler: what `requiresPayment` runs, for use with another Lambda
 * runtime such as `@effect-aws/lambda`'s `LambdaHandler.make({ handler, layer })`. Its answer is
 * always an `InterceptorOutput`: every failure is already an answer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const effectHandler = <R = never, LE = never, SE = never>(options: Options<R, LE, SE>) => {
  const paywall = Paywall.make(paywallOptions(options))
  const { billable, tokenHeaders } = settingsOf(options)
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
      yield* Effect.annotateCurrentSpan({ "mcp.method": call.method, "mcp.tool": call.toolName ?? "" })
      const run = invoke<R | LambdaRuntime.RequirementsOf<ReturnType<H>>>(() => handler(call.event, context)).pipe(
        Effect.flatMap((value) =>
          Either.match(AgentCore.normalize(value, call.id), {
            onLeft: (reason) =>
              Effect.fail(
                new HandlerFailed({ message: "The handler returned an invalid result", cause: causeOf(reason) })
              ),
            onRight: Effect.succeed
          })
        )
      )
      if (!billable.has(call.method)) {
        return yield* run.pipe(
          Effect.map(AgentCore.respond),
          Effect.catchTag("HandlerFailed", (error) => handlerFailureOutput(call.id, error))
        )
      }
      return yield* Paywall.protect(
        paywall,
        {
          request: call.event,
          token: AgentCore.tokenOf(call.headers, tokenHeaders),
          paymentRequiredMessage: PAYMENT_REQUIRED_MESSAGE
        },
        () => run,
        {
          isError: (answer) => !AgentCore.isChargeable(answer),
          chargeOf: (answer) => AgentCore.chargeSource(answer, { headers: false })
        }
      ).pipe(
        Effect.map((outcome) => AgentCore.respond(answerOf(outcome))),
        Effect.catchAll((error) =>
          error._tag === "HandlerFailed"
            ? handlerFailureOutput(call.id, error)
            : paymentFailureOutput(paywall, call.id, error)
        )
      )
    }).pipe(
      Effect.catchAllCause((cause) =>
        Effect.as(Effect.logError("x402: internal failure", cause), AgentCore.respond(AgentCore.internalErrorAnswer))
      ),
      Effect.withSpan("RequiresPayment.handle", { captureStackTrace: false })
    )
}

const causeOf = (reason: string) => Cause.die(new Error(reason))

/**
 * Wraps an agent's Lambda handler with x402 payment: the seed's `@requires_payment`.
 *
 * - no token: the 402-style answer, the facilitator not called;
 * - a token the facilitator refuses: the 402-style answer, nothing settled;
 * - the handler fails, throws or answers `isError`: its error result, nothing settled;
 * - otherwise the credits are settled (`_meta.creditsToCharge` may override the amount) and the
 *   answer carries the `payment-response` receipt and `_meta.x402`.
 *
 * The runtime (facilitator, HTTP pool, services) is built on the first invocation and reused.
 *
 * @example
 * ```ts
 * import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
 *
 * export const handler = requiresPayment({ planId: process.env.NVM_PLAN_ID!, credits: 1 })(
 *   async (event) => ({ content: [{ type: "text", text: "Hello!" }] })
 * )
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
  } =>
    LambdaRuntime.toHandler({
      layer,
      // `Checked` proved that the handler needs nothing beyond `R`.
      handler: make(handler) as (
        event: unknown,
        context: LambdaRuntime.LambdaContext
      ) => Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R>,
      fallback: () => AgentCore.respond(AgentCore.internalErrorAnswer),
      memoMap: options.memoMap
    })
}
