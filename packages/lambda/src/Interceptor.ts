/**
 * The two-phase AgentCore Gateway interceptor (the seed's `AgentCoreInterceptor`): a separate
 * Lambda in front of an existing target. The REQUEST phase verifies and forwards; the RESPONSE
 * phase settles and adds the receipt.
 *
 * @since 0.1.0
 */
import * as CallSpan from "@effect-x402/core/CallSpan"
import * as Credits from "@effect-x402/core/Credits"
import type { Facilitator } from "@effect-x402/core/Facilitator"
import { PaymentRequired, SettleFailed } from "@effect-x402/core/PaymentError"
import * as Paywall from "@effect-x402/core/Paywall"
import * as SettlementLedger from "@effect-x402/core/SettlementLedger"
import type * as X402 from "@effect-x402/core/X402"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as AgentCore from "./AgentCore.js"
import { internalFailureOutput, paymentFailureOutput, settingsOf } from "./internal/answers.js"
import { lambdaDeadline } from "./internal/lambdaDeadline.js"
import { redact, redactedPolicy, requestIdOf } from "./internal/redact.js"
import * as RequestSeal from "./internal/requestSeal.js"
import * as LambdaRuntime from "./LambdaRuntime.js"

/**
 * The price of a tool. A tool without a plan uses the default plan of the options.
 *
 * @since 0.1.0
 * @category models
 */
export interface ToolConfig<R = never> {
  readonly planId?: string | undefined
  readonly planIds?: ReadonlyArray<string> | undefined
  /** Credits per call (a number, or a function of the event). Default: the options' `credits`, else 1. */
  readonly credits?: Credits.Policy<AgentCore.InterceptorInput, R> | undefined
  readonly agentId?: string | undefined
  /**
   * Let the target's content text and top-level body set the settle amount, as the Python SDK does
   * (see `Paywall.Options.chargeFromContent`). Off by default: only `_meta.creditsToCharge` and the
   * `X-Credits-To-Charge` header may, since a tool that echoes caller text would let the caller
   * choose its price. A tool's own setting wins over the options'.
   *
   * @since 0.2.0
   */
  readonly chargeFromContent?: boolean | undefined
}

/**
 * Options of `interceptor`. The top-level `planId`/`planIds`/`credits` are the default for tools
 * without their own configuration; without them, such tools are forwarded untouched.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<R = never, LE = never, SE = never>
  extends Paywall.Hooks<unknown>, ToolConfig<R>, AgentCore.GatewayOptions, LambdaRuntime.RuntimeOptions<R, LE, SE>
{
  /** Per-tool prices, by tool name (with or without the `Target___` prefix). */
  readonly tools?: { readonly [toolName: string]: ToolConfig<R> } | undefined
  /** Advertised as `resource.url`; default the Lambda's `invokedFunctionArn`. */
  readonly endpoint?: string | undefined
  /**
   * The key that seals the request id the REQUEST phase issues, so that the RESPONSE phase settles
   * only ids this agent issued, for the token they were issued to. It must be the same on every
   * instance; default `X402_REQUEST_SEAL_KEY`, else a key derived from `NVM_API_KEY`, else a random
   * key per cold start (then only calls whose two phases meet on one instance settle with their id).
   *
   * @since 0.2.0
   */
  readonly requestSealKey?: Redacted.Redacted<string> | undefined
}

type AnyPaywall<R> = Paywall.Paywall<AgentCore.InterceptorInput, R, unknown>

const paywallOf = <R>(options: Options<R, unknown, unknown>, tool: ToolConfig<R>): AnyPaywall<R> => {
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
    httpVerb: "POST",
    onSettleFailure: options.onSettleFailure,
    onBeforeVerify: options.onBeforeVerify,
    onAfterVerify: options.onAfterVerify,
    onAfterSettle: options.onAfterSettle,
    onPaymentError: options.onPaymentError
  })
}

const passThrough = (response: AgentCore.GatewayResponse): AgentCore.InterceptorOutput =>
  AgentCore.respond({
    statusCode: response.statusCode ?? 200,
    headers: AgentCore.copyHeaders(response.headers),
    body: response.body ?? null
  })

/**
 * The interceptor as an Effect handler, for use with another Lambda runtime (e.g.
 * `@effect-aws/lambda`). Its answer is always an `InterceptorOutput`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const effectHandler = <R = never, LE = never, SE = never>(options: Options<R, LE, SE>) => {
  const { billable, free, tokenHeaders } = settingsOf(options, AgentCore.DEFAULT_FREE_METHODS)
  // Validated now: a tool priced wrongly should stop the cold start, not its first call.
  const tools = new Map(Object.entries(options.tools ?? {}).map(([name, tool]) => [name, paywallOf(options, tool)]))
  const fallback = options.planId !== undefined || options.planIds !== undefined
    ? paywallOf(options, {})
    : undefined
  const paywallFor = (call: AgentCore.Call): AnyPaywall<R> | undefined => {
    if (!billable.has(call.method)) return undefined
    const full = AgentCore.fullToolNameOf(call.method, call.request.params)
    return (full !== undefined ? tools.get(full) : undefined) ??
      (call.toolName !== undefined ? tools.get(call.toolName) : undefined) ?? fallback
  }

  const sealKey = RequestSeal.sealKey(options.requestSealKey)
  // The ledger the user provides (e.g. DynamoDB, shared by every instance), else one in memory per
  // cold start: either way a verification settles at most once, and a replayed RESPONSE is answered
  // from what was recorded.
  const ledgerOf = SettlementLedger.contextOrMemory()

  const request = (
    call: AgentCore.Call,
    paywall: AnyPaywall<R>,
    context: LambdaRuntime.LambdaContext
  ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R> =>
    Effect.flatMap(lambdaDeadline(context), (deadline) =>
      Paywall.verify(paywall, {
        request: call.event,
        token: AgentCore.tokenOf(call.headers, tokenHeaders),
        resourceUrl: resourceUrlOf(context),
        deadline,
        paymentRequiredMessage: call.toolName !== undefined
          ? `Payment required for tool: ${call.toolName}`
          : `Payment required for method: ${call.method}`
      }).pipe(
        Effect.flatMap((verified) => {
          const payer = Paywall.fingerprint(verified.token)
          const id = verified.agentRequestId
          const forward = AgentCore.forward({
            // The target gets the caller's headers without the token (it has no use for a credential
            // that spends the caller's credits) and without any request id or seal the caller wrote:
            // only the id this phase issues, sealed for this payer, goes on.
            headers: {
              ...AgentCore.copyHeaders(call.headers, [
                ...tokenHeaders,
                AgentCore.AGENT_REQUEST_ID_HEADER,
                RequestSeal.SEAL_HEADER
              ]),
              ...(id !== undefined
                ? {
                  [AgentCore.AGENT_REQUEST_ID_HEADER]: id,
                  [RequestSeal.SEAL_HEADER]: RequestSeal.seal(sealKey, id, payer)
                }
                : {})
            },
            body: call.rawBody
          })
          if (id === undefined) return Effect.succeed(forward)
          // Recorded before the target runs: a ledger that cannot record means no forward (fail
          // closed). `Conflict` is an id recorded already, e.g. by a retried REQUEST.
          return Effect.flatMap(ledgerOf, (ledger) =>
            withinDeadline(ledger.record({ requestId: id, payer, amount: verified.credits }), "record", deadline).pipe(
              Effect.as(forward),
              Effect.catchAll((error) =>
                error.reason === "Conflict"
                  ? Effect.succeed(forward)
                  : Effect.sync(() =>
                    requestIdOf(context)
                  ).pipe(
                    Effect.tap((requestId) =>
                      Effect.logError(
                        `x402: verified call not forwarded, the settlement ledger failed (request ${requestId}): ${
                          redact(error.message)
                        }`
                      )
                    ),
                    Effect.map((requestId) => AgentCore.respond(AgentCore.internalErrorAnswerFor(requestId)))
                  )
              )
            ))
        }),
        // The reference answers a refused token with the bare `invalidReason`.
        Effect.catchAll((failure) =>
          paymentFailureOutput(paywall, call.id, failure, requestIdOf(context), {
            invalid: (reason) => reason
          })
        )
      ))

  const response = (
    call: AgentCore.Call,
    paywall: AnyPaywall<R> | undefined,
    target: AgentCore.GatewayResponse,
    context: LambdaRuntime.LambdaContext
  ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R> =>
    Effect.gen(function*() {
      const statusCode = target.statusCode ?? 200
      // A gateway filtering the response body out (`payloadFilter`) sends `body: null`: the status is
      // then all there is to judge by.
      const chargeable = target.body === undefined || target.body === null
        ? statusCode === 200
        : AgentCore.isChargeable({ statusCode, body: target.body })
      const token = AgentCore.tokenOf(call.headers, tokenHeaders)
      const offeredIds = [
        ...headerValues(call.headers, AgentCore.AGENT_REQUEST_ID_HEADER),
        ...headerValues(target.headers, AgentCore.AGENT_REQUEST_ID_HEADER)
      ]
      if (paywall === undefined || !chargeable) return passThrough(target)
      if (token === undefined) {
        // A priced call's output without the token cannot be settled, so it is withheld (fail
        // closed): either the gateway does not pass request headers, or the target was reached
        // without the REQUEST phase.
        yield* Effect.logError(
          "x402: output withheld, a priced call came back without its token, so it cannot be settled; " +
            "check that the gateway passes the original request headers to the RESPONSE phase"
        )
        return yield* paymentFailureOutput(
          paywall,
          call.id,
          new PaymentRequired({
            reason: "MissingToken",
            paymentRequired: yield* Paywall.requirements(paywall, resourceUrlOf(context)),
            description: call.toolName !== undefined
              ? `Payment required for tool: ${call.toolName}`
              : `Payment required for method: ${call.method}`
          }),
          requestIdOf(context)
        )
      }
      const payer = Paywall.fingerprint(Redacted.make(token))
      // Only an id this agent issued to this payer: its seal checks out. Any other id (a caller's
      // forgery, a header copied from another call) is never sent to the facilitator.
      const seals = [
        ...headerValues(call.headers, RequestSeal.SEAL_HEADER),
        ...headerValues(target.headers, RequestSeal.SEAL_HEADER)
      ]
      const agentRequestId = offeredIds.find((id) =>
        seals.some((value) => RequestSeal.checks(sealKey, id, payer, value))
      )
      if (agentRequestId === undefined && offeredIds.length > 0) {
        yield* Effect.logWarning("x402: a request id without a valid seal was ignored")
      }
      // Without an issued id, the exchange itself names the call, so that a replayed RESPONSE event
      // (the same request and the same answer) still settles once.
      const ledgerKey = agentRequestId ??
        RequestSeal.exchangeKey(payer, safeJson(call.rawBody), safeJson(target.body))
      const paymentRequired = yield* Paywall.requirements(paywall, resourceUrlOf(context))
      const answer: AgentCore.Answer = {
        statusCode,
        headers: AgentCore.copyHeaders(target.headers),
        body: target.body ?? null
      }
      const credits = yield* Credits.resolve(paywall.credits, call.event).pipe(
        Effect.flatMap((fallback) =>
          Credits.settleAmount(
            AgentCore.chargeSource({ headers: target.headers, body: target.body }, { headers: true }),
            fallback,
            { fromContent: paywall.options.chargeFromContent === true }
          )
        ),
        Effect.mapError((cause) => new SettleFailed({ reason: "InvalidAmount", paymentRequired, credits: 0, cause })),
        Effect.either
      )
      if (Either.isLeft(credits)) {
        return yield* paymentFailureOutput(paywall, call.id, credits.left, requestIdOf(context))
      }
      const withheld = (reason: "Rejected" | "Indeterminate", settlement?: X402.SettleResponse) =>
        paymentFailureOutput(
          paywall,
          call.id,
          new SettleFailed({ reason, paymentRequired, credits: credits.right, settlement }),
          requestIdOf(context)
        )

      const ledger = yield* ledgerOf
      // One deadline for the ledger and the facilitator: a slow store never outlasts the function.
      const deadline = yield* lambdaDeadline(context)
      // Claim first: the REQUEST phase recorded the call, so one conditional write settles who
      // settles. Only a call the ledger does not hold (no issued id, another instance's memory, an
      // expired row) is recorded here, then claimed.
      const claimOnce = withinDeadline(ledger.claim(ledgerKey), "claim", deadline)
      const claim = yield* claimOnce.pipe(
        Effect.flatMap((first) =>
          first._tag !== "Absent" ? Effect.succeed(first) : withinDeadline(
            ledger.record({ requestId: ledgerKey, payer, amount: credits.right }),
            "record",
            deadline
          ).pipe(
            // Recorded meanwhile by a concurrent RESPONSE: the claim below says who won.
            Effect.catchIf((error) => error.reason === "Conflict", () => Effect.void),
            Effect.zipRight(claimOnce)
          )
        ),
        Effect.either
      )
      if (Either.isLeft(claim)) {
        // No record, no settle, no output: the store's trouble is logged, never shown.
        yield* Effect.logError(
          `x402: output withheld, the settlement ledger failed (request ${requestIdOf(context)}): ${
            redact(claim.left.message)
          }`
        )
        return yield* withheld("Indeterminate")
      }
      if (claim.right._tag !== "Claimed") {
        const entry = claim.right._tag === "Taken" ? claim.right.entry : undefined
        if (entry?.state === "settled" && entry.receipt !== undefined && entry.payer === payer) {
          // A replayed RESPONSE: the same answer, the receipt of the one settlement, nothing charged.
          yield* Effect.logInfo("x402: a replayed RESPONSE was answered from the ledger; nothing settled")
          return AgentCore.respond(AgentCore.enrich(answer, entry.receipt))
        }
        yield* Effect.logWarning(
          `x402: output withheld, call ${ledgerKey} is already ${entry?.state ?? "gone"} in the ledger`
        )
        return yield* withheld(entry?.state === "rejected" ? "Rejected" : "Indeterminate")
      }
      if (claim.right.entry.payer !== payer) {
        // The row was recorded for another token: never settled with this one. The row stays
        // `settling`, so no one settles it (fail closed).
        yield* Effect.logWarning(`x402: output withheld, call ${ledgerKey} was recorded for another payer`)
        return yield* withheld("Rejected")
      }

      const settled = yield* Paywall.settle(paywall, {
        paymentRequired,
        token: Redacted.make(token),
        credits: credits.right,
        agentRequestId,
        deadline
      }).pipe(Effect.either)
      const outcome: SettlementLedger.Outcome = Either.isRight(settled)
        ? { _tag: "Settled", receipt: settled.right }
        : settled.left.reason === "Indeterminate"
        ? { _tag: "Unknown" }
        : { _tag: "Rejected" }
      yield* withinDeadline(ledger.finish(ledgerKey, outcome), "finish", deadline).pipe(
        Effect.catchAll((error) =>
          Effect.logError(`x402: the settlement ledger did not record the outcome: ${redact(error.message)}`)
        )
      )
      if (Either.isRight(settled)) return AgentCore.respond(AgentCore.enrich(answer, settled.right))
      if (Paywall.releases(paywall, settled.left)) {
        yield* Effect.logWarning(`x402: settlement failed, output released by policy: ${redact(settled.left.message)}`)
        return AgentCore.respond(
          settled.left.settlement !== undefined ? AgentCore.enrich(answer, settled.left.settlement) : answer
        )
      }
      return yield* paymentFailureOutput(paywall, call.id, settled.left, requestIdOf(context))
    })

  return (
    event: unknown,
    context: LambdaRuntime.LambdaContext
  ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R> =>
    Effect.gen(function*() {
      const decoded = AgentCore.decodeCall(event)
      if (Either.isLeft(decoded)) {
        yield* Effect.logWarning(`x402: ${decoded.left.message}`)
        return AgentCore.respond(AgentCore.invalidEventAnswer(decoded.left))
      }
      const call = decoded.right
      const paywall = paywallFor(call)
      yield* CallSpan.annotate({
        "mcp.method": call.method,
        "mcp.tool": call.toolName ?? "",
        "x402.phase": call.phase,
        "x402.billable": paywall !== undefined
      })
      // Fail closed, in both phases: a method neither billable nor free (`Tools/Call`, `x/anything`)
      // is never forwarded, and its answer (a target reached without the REQUEST phase) never
      // released.
      if (!billable.has(call.method) && !free.has(call.method)) {
        return AgentCore.respond(AgentCore.methodNotFoundAnswer(call.id))
      }
      if (call.phase === "RESPONSE") return yield* response(call, paywall, call.response ?? {}, context)
      if (paywall === undefined) {
        return AgentCore.forward({
          ...(AgentCore.isRecord(call.event.mcp.gatewayRequest.headers)
            ? { headers: AgentCore.copyHeaders(call.headers) }
            : {}),
          body: call.rawBody
        })
      }
      return yield* request(call, paywall, context)
    }).pipe(
      Effect.catchAllCause((cause) => internalFailureOutput(cause, requestIdOf(context))),
      // One span per call when a tracer listens (Paywall sets its attributes on it), none otherwise.
      (effect) => CallSpan.wrap(effect, "Interceptor.handle")
    )
}

/** Every value of a header, whatever the case of its name. */
const headerValues = (headers: unknown, name: string): ReadonlyArray<string> => {
  if (typeof headers !== "object" || headers === null) return []
  const values: Array<string> = []
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() !== name) continue
    const value = (headers as Record<string, unknown>)[key]
    if (typeof value === "string" && value.length > 0) values.push(value.trim())
  }
  return values
}

const safeJson = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? ""
  } catch {
    return ""
  }
}

/**
 * A ledger operation capped by the call's deadline, as verify and settle are: past it, a typed
 * `Unavailable` (the caller fails closed). A write cut off may still land; the states make that
 * safe (a claimed row left `settling` is never settled by anyone else).
 */
const withinDeadline = <A>(
  effect: Effect.Effect<A, SettlementLedger.LedgerError>,
  operation: string,
  deadline: number | undefined
): Effect.Effect<A, SettlementLedger.LedgerError> =>
  deadline === undefined ? effect : Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const left = deadline - now
    const late = () =>
      new SettlementLedger.LedgerError({
        reason: "Unavailable",
        operation,
        detail: "cut off at the call's deadline"
      })
    return left <= 0 ? Effect.fail(late()) : Effect.timeoutFail(effect, { duration: left, onTimeout: late })
  })

const resourceUrlOf = (context: LambdaRuntime.LambdaContext | undefined): string | undefined => {
  const arn = AgentCore.own(context, "invokedFunctionArn")
  return typeof arn === "string" && arn.length > 0 ? arn : undefined
}

/**
 * The two-phase gateway interceptor as a Lambda handler (configure it for both REQUEST and
 * RESPONSE, with `passRequestHeaders: true`):
 *
 * - methods match exactly (MCP names are case-sensitive). One that is neither billable nor in
 *   `freeMethods` (default `AgentCore.DEFAULT_FREE_METHODS`: the handshake, `ping`, the listings,
 *   notifications) is answered JSON-RPC `-32601` in either phase and never forwarded: `Tools/Call`
 *   never reaches the target unpaid. Since 0.2.0; before, every non-billable method was forwarded;
 * - REQUEST: a free method, or a billable call of a tool without a price when the options have no
 *   default plan, is forwarded untouched; otherwise no token or a refused token is answered with
 *   the 402-style result, and a verified call is forwarded without the token, with
 *   `x-nvm-agent-request-id` and its seal;
 * - RESPONSE: a 2xx answer to a priced call that is not an explicit error is settled (with the
 *   verified request id, and `_meta.creditsToCharge` / `X-Credits-To-Charge` overriding the amount)
 *   and gets the `payment-response` receipt and `_meta.x402`; explicit errors and free methods pass
 *   through unchanged;
 * - a failure inside (the ledger, a credits policy, a defect) answers a generic message with the
 *   Lambda request id; the detail is logged under that id, redacted.
 *
 * @example
 * ```ts
 * import { interceptor } from "@effect-x402/lambda/Interceptor"
 *
 * export const handler = interceptor({
 *   planId: process.env.NVM_PLAN_ID!,
 *   tools: { getPatient: { credits: 2 }, search: { planId: "plan-search", credits: 1 } }
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const interceptor = <R = never, LE = never, SE = never>(
  options: Options<R, LE, SE>
): LambdaRuntime.Handler<unknown, AgentCore.InterceptorOutput> & {
  readonly runtime: LambdaRuntime.LambdaRuntime<Facilitator | R>
} => {
  const handler = effectHandler(options)
  const runtime = LambdaRuntime.make(LambdaRuntime.layerOf(options), { memoMap: options.memoMap })
  const lambda = (event: unknown, context: LambdaRuntime.LambdaContext): Promise<AgentCore.InterceptorOutput> =>
    runtime.run(
      Effect.suspend(() => handler(event, context)),
      () => AgentCore.respond(AgentCore.internalErrorAnswerFor(requestIdOf(context)))
    )
  return Object.assign(lambda, { runtime })
}
