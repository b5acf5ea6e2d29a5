/**
 * The two-phase AgentCore Gateway interceptor (docs/protocol.md §3 and §7): a separate
 * Lambda in front of an existing target. The REQUEST phase verifies and forwards; the RESPONSE
 * phase settles and adds the receipt.
 *
 * @since 0.1.0
 */
import * as CallSpan from "@effect-x402/core/CallSpan"
import * as Credits from "@effect-x402/core/Credits"
import type { Facilitator } from "@effect-x402/core/Facilitator"
import { type InvalidCredits, PaymentRequired, SettleFailed } from "@effect-x402/core/PaymentError"
import * as Paywall from "@effect-x402/core/Paywall"
import * as SettlementLedger from "@effect-x402/core/SettlementLedger"
import type * as X402 from "@effect-x402/core/X402"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as AgentCore from "./AgentCore.js"
import { internalFailureOutput, invalidEventOutput, paymentFailureOutput, settingsOf } from "./internal/answers.js"
import * as HttpEvent from "./internal/httpEvent.js"
import * as Json from "./internal/json.js"
import { lambdaDeadline, lambdaDeadlineAt } from "./internal/lambdaDeadline.js"
import { paywallOf } from "./internal/paywalls.js"
import { redact, requestIdOf } from "./internal/redact.js"
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
  /**
   * Whether the gateway passes the request headers to the RESPONSE phase (its `passRequestHeaders`
   * for the RESPONSE interceptor). Default true. With `false`, the REQUEST phase gives each paid
   * call a sealed JSON-RPC id the target echoes and keeps what the RESPONSE phase needs to settle in
   * the ledger, encrypted (as it always does for HTTP targets): provide a shared `SettlementLedger`
   * and a shared `requestSealKey` (docs/protocol.md, "HTTP targets").
   *
   * @since 0.3.0
   */
  readonly passRequestHeaders?: boolean | undefined
}

type AnyPaywall<R> = Paywall.Paywall<AgentCore.InterceptorInput, R, unknown>

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
  const paywallOf_ = (method: string, params: unknown): AnyPaywall<R> | undefined => {
    if (!billable.has(method)) return undefined
    const full = AgentCore.fullToolNameOf(method, params)
    const short = AgentCore.toolNameOf(method, params)
    return (full !== undefined ? tools.get(full) : undefined) ??
      (short !== undefined ? tools.get(short) : undefined) ?? fallback
  }
  const paywallFor = (call: AgentCore.Call): AnyPaywall<R> | undefined => paywallOf_(call.method, call.request.params)

  const { key: sealKey, shared: sealShared } = RequestSeal.sealKeyOf(options.requestSealKey)
  const sealer = RequestSeal.makeSealer(sealKey)
  // What a forwarded request never carries: the token, and any request id or seal the caller wrote.
  const strippedHeaders = [...tokenHeaders, AgentCore.AGENT_REQUEST_ID_HEADER, RequestSeal.SEAL_HEADER]
  // With it, the RESPONSE phase of the MCP flavour finds the call through the ledger too.
  const correlateMcp = options.passRequestHeaders === false
  // The ledger the user provides (e.g. DynamoDB, shared by every instance), else one in memory per
  // cold start: either way a verification settles at most once, and a replayed RESPONSE is answered
  // from what was recorded. Read from the call's fiber without an Effect operation: the paid phases
  // get the fiber from the `withFiberRuntime` every call starts with.
  const ledgerIn = SettlementLedger.unsafeContextOrMemory()
  const ledgerOfFiber = (fiber: Fiber.RuntimeFiber<unknown, unknown>) =>
    ledgerIn(fiber.currentContext, Context.get(fiber.currentDefaultServices, Clock.Clock))
  const ledgerOf: Effect.Effect<SettlementLedger.SettlementLedger.Service> = Effect.withFiberRuntime((fiber) =>
    Effect.succeed(ledgerOfFiber(fiber))
  )

  const request = (
    call: AgentCore.Call,
    paywall: AnyPaywall<R>,
    context: LambdaRuntime.LambdaContext,
    correlate: boolean,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R> => {
    const deadline = deadlineIn(fiber, context)
    return Effect.matchEffect(
      Paywall.verify(paywall, {
        request: call.event,
        token: AgentCore.tokenOf(call.headers, tokenHeaders),
        resourceUrl: resourceUrlOf(context),
        deadline,
        paymentRequiredMessage: call.toolName !== undefined
          ? `Payment required for tool: ${call.toolName}`
          : `Payment required for method: ${call.method}`
      }),
      {
        // The reference answers a refused token with the bare `invalidReason`.
        onFailure: (failure) =>
          paymentFailureOutput(paywall, call.id, failure, requestIdOf(context), { invalid: (reason) => reason }),
        onSuccess: (verified) => {
          const payer = Paywall.fingerprint(verified.token)
          if (correlate) return correlated(call, verified, payer, deadline, context)
          const id = verified.agentRequestId
          // The target gets the caller's headers without the token (it has no use for a credential
          // that spends the caller's credits) and without any request id or seal the caller wrote:
          // only the id this phase issues, sealed for this payer, goes on. (A fresh object: set in
          // place rather than spread.)
          const headers = AgentCore.copyHeaders(call.headers, strippedHeaders)
          if (id !== undefined) {
            headers[AgentCore.AGENT_REQUEST_ID_HEADER] = id
            headers[RequestSeal.SEAL_HEADER] = sealer.seal(id, payer)
          }
          const forward = AgentCore.forward({ headers, body: call.rawBody })
          if (id === undefined) return Effect.succeed(forward)
          // Recorded before the target runs: a ledger that cannot record means no forward (fail
          // closed). `Conflict` is an id recorded already, e.g. by a retried REQUEST.
          const ledger = ledgerOfFiber(fiber)
          return Effect.matchEffect(
            withinDeadline(
              ledger,
              ledger.record({ requestId: id, payer, amount: verified.credits }),
              "record",
              deadline
            ),
            {
              onFailure: (error) =>
                error.reason === "Conflict" ? Effect.succeed(forward) : recordFailed(error, context),
              onSuccess: () => Effect.succeed(forward)
            }
          )
        }
      }
    )
  }

  const recordFailed = (error: SettlementLedger.LedgerError, context: LambdaRuntime.LambdaContext) =>
    Effect.sync(() => requestIdOf(context)).pipe(
      Effect.tap((requestId) =>
        Effect.logError(
          `x402: verified call not forwarded, the settlement ledger failed (request ${requestId}): ${
            redact(error.message)
          }`
        )
      ),
      Effect.map((requestId) => AgentCore.respond(AgentCore.internalErrorAnswerFor(requestId)))
    )

  // REQUEST of a call whose RESPONSE phase will not see the request (an HTTP target, or no request
  // headers in RESPONSE): the forwarded JSON-RPC id names the ledger row (the target echoes it), and
  // the row keeps the token sealed (AES-GCM under the seal key, never in clear).
  const correlated = (
    call: AgentCore.Call,
    verified: Paywall.Verified,
    payer: string,
    deadline: number | undefined,
    context: LambdaRuntime.LambdaContext
  ): Effect.Effect<AgentCore.InterceptorOutput> => {
    const id = verified.agentRequestId
    const name = Json.own(call.request.params, "name")
    const secret = JSON.stringify({
      t: Redacted.value(verified.token),
      m: call.method,
      n: typeof name === "string" ? name : null,
      a: id ?? null
    })
    const headers = {
      ...AgentCore.copyHeaders(call.headers, strippedHeaders),
      ...(id !== undefined ? { [AgentCore.AGENT_REQUEST_ID_HEADER]: id } : {})
    }
    // A fresh key per attempt: a numeric id's random part may, rarely, meet a live row (`Conflict`).
    const attempt = (left: number): Effect.Effect<AgentCore.InterceptorOutput> => {
      const forwarded = RequestSeal.forwardPaid(sealKey, payer, call.id)
      const sealed = RequestSeal.box(sealKey, forwarded.ledgerKey, secret)
      return Effect.flatMap(ledgerOf, (ledger) =>
        withinDeadline(
          ledger,
          ledger.record({ requestId: forwarded.ledgerKey, payer, amount: verified.credits, sealed }),
          "record",
          deadline
        ).pipe(
          Effect.as(AgentCore.forward({
            headers,
            body: JSON.parse(HttpEvent.withId(call.request, call.rawBody, forwarded.id))
          })),
          Effect.catchAll((error) =>
            error.reason === "Conflict" && left > 0 ? attempt(left - 1) : recordFailed(error, context)
          )
        ))
    }
    return attempt(3)
  }

  // The generic answer to an output that cannot be matched to a verified call: withheld.
  // A JSON-RPC error (a streamed answer's later events cannot change the status): generic, with the
  // Lambda request id the log line has.
  const unmatched = (context: LambdaRuntime.LambdaContext, why: string, id: unknown = null) =>
    Effect.sync(() => requestIdOf(context)).pipe(
      Effect.tap((requestId) => Effect.logWarning(`x402: output withheld, ${why} (request ${requestId})`)),
      Effect.map((requestId): AgentCore.Answer =>
        AgentCore.rpcErrorAnswer(
          typeof id === "string" || typeof id === "number" ? id : null,
          AgentCore.JsonRpcErrorCode.InternalError,
          `Internal interceptor error: the output was withheld (request ${requestId})`
        )
      )
    )

  const answerOf = (output: AgentCore.InterceptorOutput): AgentCore.Answer => {
    const response = output.mcp.transformedGatewayResponse!
    return { statusCode: response.statusCode, headers: response.headers ?? {}, body: response.body }
  }

  // RESPONSE of a forwarded paid call, found through the ledger by the id the target echoed: the
  // answer for this one message (the settled result with its receipt, or why it is withheld).
  const settleForwarded = (
    forwarded: Extract<RequestSeal.ForwardedId, { readonly _tag: "Paid" }>,
    message: { readonly [key: string]: unknown },
    statusCode: number,
    targetHeaders: unknown,
    context: LambdaRuntime.LambdaContext
  ): Effect.Effect<AgentCore.Answer, never, Facilitator | R> =>
    Effect.gen(function*() {
      const key = forwarded.ledgerKey
      const ledger = yield* ledgerOf
      const deadline = yield* lambdaDeadline(context)
      const found = yield* withinDeadline(ledger, ledger.get(key), "get", deadline).pipe(Effect.either)
      if (Either.isLeft(found)) {
        yield* Effect.logError(`x402: the settlement ledger failed: ${redact(found.left.message)}`)
        return yield* unmatched(context, "the settlement ledger could not be read")
      }
      if (Option.isNone(found.right)) return yield* unmatched(context, "no verified call in the ledger for it")
      const entry = found.right.value
      if (!forwarded.check(entry.payer)) return yield* unmatched(context, "its id does not carry this agent's seal")
      const restored = { ...message, id: forwarded.callerId }
      const headers = AgentCore.copyHeaders(targetHeaders)
      const answer: AgentCore.Answer = { statusCode, headers, body: restored }
      // An explicit error is released as it is: nothing to settle.
      if (!AgentCore.isChargeable({ statusCode, body: restored })) return answer
      if (entry.state === "settled" && entry.receipt !== undefined) {
        // A replayed RESPONSE (or the same result event twice): the receipt of the one settlement.
        yield* Effect.logInfo("x402: a replayed RESPONSE was answered from the ledger; nothing settled")
        return AgentCore.enrich(answer, entry.receipt)
      }
      const opened = entry.sealed !== undefined ? RequestSeal.unbox(sealKey, key, entry.sealed) : undefined
      const sealed = opened !== undefined ? safeParse(opened) : undefined
      const method = Json.own(sealed, "m")
      const token = Json.own(sealed, "t")
      const name = Json.own(sealed, "n")
      const issued = Json.own(sealed, "a")
      const paywall = typeof method === "string"
        ? paywallOf_(method, typeof name === "string" ? { name } : {})
        : undefined
      if (entry.state !== "verified" || typeof token !== "string" || paywall === undefined) {
        // A call this agent did forward (its seal checks out): withheld under the caller's id.
        return yield* unmatched(
          context,
          `call ${key} is ${entry.state} in the ledger, or its sealed record is unusable`,
          forwarded.callerId
        )
      }
      const paymentRequired = yield* Paywall.requirements(paywall, resourceUrlOf(context))
      const failureAnswer = (failure: SettleFailed) =>
        Effect.map(
          paymentFailureOutput(paywall, forwarded.callerId as AgentCore.JsonRpcId, failure, requestIdOf(context)),
          answerOf
        )
      const credits = yield* Credits.settleAmount(
        AgentCore.chargeSource({ headers: targetHeaders, body: restored }, { headers: true }),
        entry.amount,
        { fromContent: paywall.options.chargeFromContent === true }
      ).pipe(
        Effect.mapError((cause) => new SettleFailed({ reason: "InvalidAmount", paymentRequired, credits: 0, cause })),
        Effect.either
      )
      if (Either.isLeft(credits)) return yield* failureAnswer(credits.left)
      const claim = yield* withinDeadline(ledger, ledger.claim(key), "claim", deadline).pipe(Effect.either)
      if (Either.isLeft(claim)) {
        yield* Effect.logError(`x402: output withheld, the settlement ledger failed: ${redact(claim.left.message)}`)
        return yield* failureAnswer(
          new SettleFailed({ reason: "Indeterminate", paymentRequired, credits: credits.right })
        )
      }
      if (claim.right._tag !== "Claimed") {
        const taken = claim.right._tag === "Taken" ? claim.right.entry : undefined
        if (taken?.state === "settled" && taken.receipt !== undefined && taken.payer === entry.payer) {
          yield* Effect.logInfo("x402: a replayed RESPONSE was answered from the ledger; nothing settled")
          return AgentCore.enrich(answer, taken.receipt)
        }
        yield* Effect.logWarning(
          `x402: output withheld, call ${key} is already ${taken?.state ?? "gone"} in the ledger`
        )
        return yield* failureAnswer(
          new SettleFailed({
            reason: taken?.state === "rejected" ? "Rejected" : "Indeterminate",
            paymentRequired,
            credits: credits.right
          })
        )
      }
      const settled = yield* settleRecorded(
        paywall,
        {
          paymentRequired,
          token: Redacted.make(token),
          credits: credits.right,
          agentRequestId: typeof issued === "string" ? issued : undefined,
          deadline
        },
        ledger,
        key
      )
      if (Either.isRight(settled)) return AgentCore.enrich(answer, settled.right)
      if (Paywall.releases(paywall, settled.left)) {
        yield* Effect.logWarning(`x402: settlement failed, output released by policy: ${redact(settled.left.message)}`)
        return settled.left.settlement !== undefined ? AgentCore.enrich(answer, settled.left.settlement) : answer
      }
      return yield* failureAnswer(settled.left)
    })

  // The answer for one JSON-RPC message of an HTTP target's output (or an MCP target's, when the
  // RESPONSE phase has no request headers).
  const messageAnswer = (
    message: unknown,
    statusCode: number,
    targetHeaders: unknown,
    context: LambdaRuntime.LambdaContext
  ): Effect.Effect<AgentCore.Answer, never, Facilitator | R> => {
    const headers = AgentCore.copyHeaders(targetHeaders)
    if (!Json.isRecord(message)) {
      return AgentCore.isChargeable({ statusCode, body: message })
        ? unmatched(context, "the target answered something that is not JSON-RPC")
        : Effect.succeed({ statusCode, headers, body: message })
    }
    const forwarded = RequestSeal.readForwardedId(sealKey, Json.own(message, "id"))
    // A request or notification from the target (progress, sampling): no paid result in it.
    if (typeof Json.own(message, "method") === "string") {
      return Effect.succeed({
        statusCode,
        headers,
        body: forwarded?._tag === "Free" ? { ...message, id: forwarded.callerId } : message
      })
    }
    if (forwarded?._tag === "Free") {
      return Effect.succeed({ statusCode, headers, body: { ...message, id: forwarded.callerId } })
    }
    if (forwarded?._tag === "Paid") return settleForwarded(forwarded, message, statusCode, targetHeaders, context)
    return AgentCore.isChargeable({ statusCode, body: message })
      ? unmatched(context, "a RESPONSE that no verified REQUEST of this agent forwarded")
      : Effect.succeed({ statusCode, headers, body: message })
  }

  const httpResponse = (
    event: Extract<HttpEvent.HttpEvent, { readonly _tag: "Response" }>,
    context: LambdaRuntime.LambdaContext
  ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R> =>
    Effect.gen(function*() {
      const { body, headers, statusCode } = event
      if (body === null) {
        // The gateway left the body out (`payloadFilter`): nothing names the call, so a 2xx is withheld.
        if (statusCode < 200 || statusCode > 299) {
          return AgentCore.respond({ statusCode, headers: AgentCore.copyHeaders(headers), body: null })
        }
        yield* Effect.logError(
          "x402: output withheld, the gateway sends no response body (payloadFilter excludes RESPONSE_BODY), " +
            "so the call cannot be matched to its payment; do not exclude the body"
        )
        return AgentCore.respond(AgentCore.internalErrorAnswerFor(requestIdOf(context)))
      }
      if (body.trim().length === 0) {
        return AgentCore.respond({ statusCode, headers: AgentCore.copyHeaders(headers), body: "" })
      }
      const sse = !event.streaming && HttpEvent.isSse(headers, body)
      const messages = AgentCore.messagesOf(body)
      if (messages.length === 0) return AgentCore.respond(yield* messageAnswer(body, statusCode, headers, context))
      const answers: Array<AgentCore.Answer> = []
      for (const message of messages) answers.push(yield* messageAnswer(message, statusCode, headers, context))
      if (!sse && answers.length === 1) return AgentCore.respond(answers[0])
      // Several messages (an SSE body): one SSE body, the target's status, every answer's headers.
      let merged: AgentCore.OutputHeaders = AgentCore.copyHeaders(headers)
      for (const answer of answers) {
        for (const [name, value] of Object.entries(answer.headers)) merged = AgentCore.setHeader(merged, name, value)
      }
      merged = AgentCore.setHeader(merged, "Content-Type", "text/event-stream")
      return AgentCore.respond({ statusCode, headers: merged, body: HttpEvent.sseOf(answers.map((a) => a.body)) })
    })

  const httpRequest = (
    call: AgentCore.Call,
    context: LambdaRuntime.LambdaContext,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R> => {
    // Ids with the reserved prefix are this agent's: a caller's could pose as a forwarded call.
    if (typeof call.request.id === "string" && call.request.id.startsWith(RequestSeal.ID_PREFIX)) {
      return Effect.succeed(AgentCore.respond(
        AgentCore.rpcErrorAnswer(null, AgentCore.JsonRpcErrorCode.InvalidRequest, "Invalid Request: reserved id")
      ))
    }
    if (!billable.has(call.method) && !free.has(call.method)) {
      return Effect.succeed(AgentCore.respond(AgentCore.methodNotFoundAnswer(call.id)))
    }
    const paywall = paywallFor(call)
    if (paywall !== undefined) return request(call, paywall, context, true, fiber)
    // The target has no use for a credential that spends the caller's credits, even on a free call.
    const headers = Json.isRecord(call.event.mcp.gatewayRequest.headers)
      ? { headers: AgentCore.copyHeaders(call.headers, tokenHeaders) }
      : {}
    // A notification has no answer to match; a request gets a sealed id, so that its answer is known
    // for a free one (every other answer is withheld).
    if (call.request.id === undefined) return Effect.succeed(AgentCore.forward({ ...headers, body: call.rawBody }))
    return Effect.succeed(AgentCore.forward({
      ...headers,
      body: JSON.parse(HttpEvent.withId(call.request, call.rawBody, RequestSeal.forwardFree(sealKey, call.id)))
    }))
  }

  // Said once per cold start, at the first call that needs it: without a shared ledger and seal key,
  // a RESPONSE served by another instance than its REQUEST cannot settle (and is withheld).
  let warned = false
  const warnOnce: Effect.Effect<void> = Effect.suspend(() => {
    if (warned) return Effect.void
    warned = true
    return Effect.flatMap(
      Effect.serviceOption(SettlementLedger.SettlementLedger),
      (provided) =>
        Option.isSome(provided) && sealShared
          ? Effect.void
          : Effect.logWarning(
            "x402: HTTP targets and RESPONSE phases without request headers settle through the ledger, but " +
              (Option.isNone(provided)
                ? "no shared SettlementLedger is provided (the ledger is this instance's memory)"
                : "") +
              (Option.isNone(provided) && !sealShared ? " and " : "") +
              (!sealShared ? "no shared seal key is set (X402_REQUEST_SEAL_KEY or NVM_API_KEY)" : "") +
              ": a RESPONSE served by another instance than its REQUEST is withheld, its call never settled. " +
              "See docs/protocol.md, \"HTTP targets\"."
          )
    )
  })

  // RESPONSE of an MCP target's answer. A pipeline, not a generator: this runs on every paid call.
  const response = (
    call: AgentCore.Call,
    paywall: AnyPaywall<R> | undefined,
    target: AgentCore.GatewayResponse,
    context: LambdaRuntime.LambdaContext,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R> => {
    const statusCode = target.statusCode ?? 200
    if (correlateMcp) {
      // The target echoes the id the REQUEST phase gave the call: the ledger holds the rest.
      const message = AgentCore.responseOf(target.body)
      if (RequestSeal.readForwardedId(sealKey, Json.own(message, "id"))?._tag === "Paid") {
        return Effect.map(messageAnswer(message, statusCode, target.headers, context), AgentCore.respond)
      }
    }
    // A gateway filtering the response body out (`payloadFilter`) sends `body: null`: the status is
    // then all there is to judge by.
    const chargeable = target.body === undefined || target.body === null
      ? statusCode === 200
      : AgentCore.isChargeable({ statusCode, body: target.body })
    if (paywall === undefined || !chargeable) return Effect.succeed(passThrough(target))
    const token = AgentCore.tokenOf(call.headers, tokenHeaders)
    if (token === undefined) return missingToken(call, paywall, context)
    const payer = Paywall.fingerprint(Redacted.make(token))
    const offeredIds = [
      ...headerValues(call.headers, AgentCore.AGENT_REQUEST_ID_HEADER),
      ...headerValues(target.headers, AgentCore.AGENT_REQUEST_ID_HEADER)
    ]
    // Only an id this agent issued to this payer: its seal checks out. Any other id (a caller's
    // forgery, a header copied from another call) is never sent to the facilitator.
    const seals = offeredIds.length === 0 ? [] : [
      ...headerValues(call.headers, RequestSeal.SEAL_HEADER),
      ...headerValues(target.headers, RequestSeal.SEAL_HEADER)
    ]
    const agentRequestId = offeredIds.find((id) => seals.some((value) => sealer.checks(id, payer, value)))
    const paid: Paid<R> = {
      call,
      paywall,
      context,
      fiber,
      token,
      payer,
      agentRequestId,
      // Without an issued id, the exchange itself names the call, so that a replayed RESPONSE event
      // (the same request and the same answer) still settles once.
      ledgerKey: agentRequestId ?? RequestSeal.exchangeKey(payer, safeJson(call.rawBody), safeJson(target.body)),
      answer: { statusCode, headers: AgentCore.copyHeaders(target.headers), body: target.body ?? null },
      target
    }
    const settled = Effect.flatMap(
      Paywall.requirements(paywall, resourceUrlOf(context)),
      (paymentRequired) => settlePaid(paid, paymentRequired)
    )
    return agentRequestId === undefined && offeredIds.length > 0
      ? Effect.zipRight(Effect.logWarning("x402: a request id without a valid seal was ignored"), settled)
      : settled
  }

  const missingToken = (
    call: AgentCore.Call,
    paywall: AnyPaywall<R>,
    context: LambdaRuntime.LambdaContext
  ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R> =>
    Effect.gen(function*() {
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
    })

  // The settle amount (the target may lower or raise it, within the rules), then claim and settle.
  const settlePaid = (
    paid: Paid<R>,
    paymentRequired: X402.PaymentRequired
  ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R> => {
    const { call, context, paywall } = paid
    const invalid = (cause: InvalidCredits) =>
      paymentFailureOutput(
        paywall,
        call.id,
        new SettleFailed({ reason: "InvalidAmount", paymentRequired, credits: 0, cause }),
        requestIdOf(context)
      )
    const charge = (fallback: number) =>
      Credits.settleAmount(
        AgentCore.chargeSource({ headers: paid.target.headers, body: paid.target.body }, { headers: true }),
        fallback,
        { fromContent: paywall.options.chargeFromContent === true }
      )
    const resolved = Credits.resolve(paywall.credits, call.event)
    // A fixed price resolves at once (an `Either`): no Effect operation for it.
    if (Either.isEither(resolved)) {
      const amount = Either.flatMap(resolved as Either.Either<number, InvalidCredits>, charge)
      return Either.isLeft(amount) ? invalid(amount.left) : claimAndSettle(paid, paymentRequired, amount.right)
    }
    return Effect.matchEffect(resolved, {
      onFailure: invalid,
      onSuccess: (fallback) => {
        const amount = charge(fallback)
        return Either.isLeft(amount) ? invalid(amount.left) : claimAndSettle(paid, paymentRequired, amount.right)
      }
    })
  }

  const claimAndSettle = (
    paid: Paid<R>,
    paymentRequired: X402.PaymentRequired,
    credits: number
  ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R> => {
    const { answer, call, context, ledgerKey, payer, paywall } = paid
    const withheld = (reason: "Rejected" | "Indeterminate", settlement?: X402.SettleResponse) =>
      paymentFailureOutput(
        paywall,
        call.id,
        new SettleFailed({ reason, paymentRequired, credits, settlement }),
        requestIdOf(context)
      )
    const ledger = ledgerOfFiber(paid.fiber)
    // One deadline for the ledger and the facilitator: a slow store never outlasts the function.
    const deadline = deadlineIn(paid.fiber, context)
    // No record, no settle, no output: the store's trouble is logged, never shown.
    const ledgerFailed = (error: SettlementLedger.LedgerError) =>
      Effect.zipRight(
        Effect.logError(
          `x402: output withheld, the settlement ledger failed (request ${requestIdOf(context)}): ${
            redact(error.message)
          }`
        ),
        withheld("Indeterminate")
      )
    const claimed = (claim: SettlementLedger.Claim): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator> => {
      if (claim._tag !== "Claimed") {
        const entry = claim._tag === "Taken" ? claim.entry : undefined
        if (entry?.state === "settled" && entry.receipt !== undefined && entry.payer === payer) {
          // A replayed RESPONSE: the same answer, the receipt of the one settlement, nothing charged.
          return Effect.as(
            Effect.logInfo("x402: a replayed RESPONSE was answered from the ledger; nothing settled"),
            AgentCore.respond(AgentCore.enrich(answer, entry.receipt))
          )
        }
        return Effect.zipRight(
          Effect.logWarning(
            `x402: output withheld, call ${ledgerKey} is already ${entry?.state ?? "gone"} in the ledger`
          ),
          withheld(entry?.state === "rejected" ? "Rejected" : "Indeterminate")
        )
      }
      if (claim.entry.payer !== payer) {
        // The row was recorded for another token: never settled with this one. The row stays
        // `settling`, so no one settles it (fail closed).
        return Effect.zipRight(
          Effect.logWarning(`x402: output withheld, call ${ledgerKey} was recorded for another payer`),
          withheld("Rejected")
        )
      }
      return Effect.matchEffect(
        Paywall.settle(paywall, {
          paymentRequired,
          token: Redacted.make(paid.token),
          credits,
          agentRequestId: paid.agentRequestId,
          deadline
        }),
        {
          onSuccess: (receipt) =>
            recordOutcome(
              ledger,
              ledgerKey,
              { _tag: "Settled", receipt },
              deadline,
              Effect.sync(() => AgentCore.respond(AgentCore.enrich(answer, receipt)))
            ),
          onFailure: (failure) =>
            recordOutcome(
              ledger,
              ledgerKey,
              outcomeOfFailure(failure),
              deadline,
              Paywall.releases(paywall, failure)
                ? Effect.zipRight(
                  Effect.logWarning(`x402: settlement failed, output released by policy: ${redact(failure.message)}`),
                  Effect.sync(() =>
                    AgentCore.respond(
                      failure.settlement !== undefined ? AgentCore.enrich(answer, failure.settlement) : answer
                    )
                  )
                )
                : paymentFailureOutput(paywall, call.id, failure, requestIdOf(context))
            )
        }
      )
    }
    // Claim first: the REQUEST phase recorded the call, so one conditional write settles who
    // settles. Only a call the ledger does not hold (no issued id, another instance's memory, an
    // expired row) is recorded here, then claimed.
    const claimOnce = withinDeadline(ledger, ledger.claim(ledgerKey), "claim", deadline)
    return Effect.matchEffect(claimOnce, {
      onFailure: ledgerFailed,
      onSuccess: (first) =>
        first._tag !== "Absent" ? claimed(first) : Effect.matchEffect(
          withinDeadline(ledger, ledger.record({ requestId: ledgerKey, payer, amount: credits }), "record", deadline)
            .pipe(
              // Recorded meanwhile by a concurrent RESPONSE: the claim below says who won.
              Effect.catchIf((error) => error.reason === "Conflict", () => Effect.void),
              Effect.zipRight(claimOnce)
            ),
          { onFailure: ledgerFailed, onSuccess: claimed }
        )
    })
  }

  // The HTTP flavour: the answer in its form (base64 bodies). Typed as the MCP output for the
  // callers of this handler; only a gateway with HTTP targets (which has no MCP protocol, so sends no
  // MCP event) ever receives it.
  const httpHandle = (
    event: unknown,
    context: LambdaRuntime.LambdaContext,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R> =>
    Effect.gen(function*() {
      yield* warnOnce
      const read = HttpEvent.read(event)
      if (Either.isLeft(read)) {
        yield* Effect.logWarning(`x402: ${read.left.message}`)
        return AgentCore.respond(AgentCore.invalidEventAnswer(read.left))
      }
      if (read.right._tag === "Response") {
        yield* CallSpan.annotate({ "x402.phase": "RESPONSE", "x402.target": "http" })
        return yield* httpResponse(read.right, context)
      }
      const call = read.right.call
      yield* CallSpan.annotate({
        "mcp.method": call.method,
        "mcp.tool": call.toolName ?? "",
        "x402.phase": "REQUEST",
        "x402.target": "http"
      })
      return yield* httpRequest(call, context, fiber)
    }).pipe(
      Effect.catchAllCause((cause) => internalFailureOutput(cause, requestIdOf(context))),
      Effect.map((output) => AgentCore.toHttpOutput(output) as unknown as AgentCore.InterceptorOutput)
    )

  // The MCP flavour, in one `withFiberRuntime` (no generator): the fiber gives the clock and the
  // ledger to the phases without an Effect operation each.
  const mcpHandle = (
    event: unknown,
    context: LambdaRuntime.LambdaContext,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R> => {
    const decoded = AgentCore.decodeCall(event)
    if (Either.isLeft(decoded)) return invalidEventOutput(decoded.left)
    const call = decoded.right
    const paywall = paywallFor(call)
    const phase = mcpPhase(call, paywall, context, fiber)
    // Nobody listens (no tracer, the Lambda default): no span, nothing to annotate, no Effect step.
    CallSpan.set(CallSpan.currentOf(fiber), {
      "mcp.method": call.method,
      "mcp.tool": call.toolName ?? "",
      "x402.phase": call.phase,
      "x402.billable": paywall !== undefined
    })
    return phase
  }

  const mcpPhase = (
    call: AgentCore.Call,
    paywall: AnyPaywall<R> | undefined,
    context: LambdaRuntime.LambdaContext,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R> => {
    // Fail closed, in both phases: a method neither billable nor free (`Tools/Call`, `x/anything`)
    // is never forwarded, and its answer (a target reached without the REQUEST phase) never
    // released.
    if (!billable.has(call.method) && !free.has(call.method)) {
      return Effect.succeed(AgentCore.respond(AgentCore.methodNotFoundAnswer(call.id)))
    }
    if (call.phase === "RESPONSE") return response(call, paywall, call.response ?? {}, context, fiber)
    if (paywall === undefined) {
      return Effect.succeed(AgentCore.forward({
        ...(Json.isRecord(call.event.mcp.gatewayRequest.headers)
          ? { headers: AgentCore.copyHeaders(call.headers) }
          : {}),
        body: call.rawBody
      }))
    }
    return request(call, paywall, context, correlateMcp, fiber)
  }

  return (
    event: unknown,
    context: LambdaRuntime.LambdaContext
  ): Effect.Effect<AgentCore.InterceptorOutput, never, Facilitator | R> =>
    Effect.withFiberRuntime<AgentCore.InterceptorOutput, never, Facilitator | R>((fiber) => {
      if (AgentCore.isHttpEvent(event)) return httpHandle(event, context, fiber)
      return correlateMcp
        ? Effect.zipRight(warnOnce, mcpHandle(event, context, fiber))
        : mcpHandle(event, context, fiber)
    }).pipe(
      Effect.catchAllCause((cause) => internalFailureOutput(cause, requestIdOf(context))),
      // One span per call when a tracer listens (Paywall sets its attributes on it), none otherwise.
      (effect) => CallSpan.wrap(effect, "Interceptor.handle")
    )
}

/** What the RESPONSE phase of a paid call settles with. */
interface Paid<R> {
  readonly call: AgentCore.Call
  readonly paywall: AnyPaywall<R>
  readonly context: LambdaRuntime.LambdaContext
  readonly fiber: Fiber.RuntimeFiber<unknown, unknown>
  readonly token: string
  readonly payer: string
  readonly agentRequestId: string | undefined
  readonly ledgerKey: string
  readonly answer: AgentCore.Answer
  readonly target: AgentCore.GatewayResponse
}

// The call's deadline (see `internal/lambdaDeadline`) on the fiber's clock, read outside any `try`:
// only the context's own `getRemainingTimeInMillis` may fail quietly.
const deadlineIn = (fiber: Fiber.RuntimeFiber<unknown, unknown>, context: unknown): number | undefined =>
  lambdaDeadlineAt(context, CallSpan.nowOf(fiber))

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

const safeParse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
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
 * safe (a claimed row left `settling` is never settled by anyone else). An `immediate` ledger (in
 * memory) answers at once and cannot outlast the deadline: it runs bare, without the race's two
 * fibers and timer.
 */
const withinDeadline = <A>(
  ledger: SettlementLedger.SettlementLedger.Service,
  effect: Effect.Effect<A, SettlementLedger.LedgerError>,
  operation: string,
  deadline: number | undefined
): Effect.Effect<A, SettlementLedger.LedgerError> =>
  deadline === undefined || ledger.immediate === true ? effect : Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const left = deadline - now
    const late = () =>
      new SettlementLedger.LedgerError({
        reason: "Unavailable",
        operation,
        detail: "cut off at the call's deadline"
      })
    return left <= 0 ? Effect.fail(late()) : Effect.timeoutFail(effect, { duration: left, onTimeout: late })
  })

/**
 * Settles a claimed ledger row's call and records the outcome in the ledger (a failure to record is
 * logged, never shown: the row stays `settling`, so no one settles it again). Answers the settle's
 * own result.
 */
const settleRecorded = <R>(
  paywall: AnyPaywall<R>,
  input: Paywall.SettleInput,
  ledger: SettlementLedger.SettlementLedger.Service,
  ledgerKey: string
): Effect.Effect<Either.Either<X402.SettleResponse, SettleFailed>, never, Facilitator> =>
  Effect.flatMap(Effect.either(Paywall.settle(paywall, input)), (settled) =>
    recordOutcome(
      ledger,
      ledgerKey,
      Either.isRight(settled) ? { _tag: "Settled", receipt: settled.right } : outcomeOfFailure(settled.left),
      input.deadline,
      Effect.succeed(settled)
    ))

/** What the ledger records of a failed settle: `unknown` when it may have landed. */
const outcomeOfFailure = (failure: SettleFailed): SettlementLedger.Outcome =>
  failure.reason === "Indeterminate" ? { _tag: "Unknown" } : { _tag: "Rejected" }

/**
 * Records a settle's outcome in the ledger, then runs `then` (the answer). A failure to record is
 * logged, never shown: the row stays `settling`, so no one settles it again.
 */
const recordOutcome = <A, R>(
  ledger: SettlementLedger.SettlementLedger.Service,
  ledgerKey: string,
  outcome: SettlementLedger.Outcome,
  deadline: number | undefined,
  then: Effect.Effect<A, never, R>
): Effect.Effect<A, never, R> =>
  Effect.matchEffect(withinDeadline(ledger, ledger.finish(ledgerKey, outcome), "finish", deadline), {
    onFailure: (error) =>
      Effect.zipRight(
        Effect.logError(`x402: the settlement ledger did not record the outcome: ${redact(error.message)}`),
        then
      ),
    onSuccess: () => then
  })

const resourceUrlOf = (context: LambdaRuntime.LambdaContext | undefined): string | undefined => {
  const arn = Json.own(context, "invokedFunctionArn")
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
 * - HTTP targets (the gateway's `http` events, since 0.3.0): a paid call is forwarded under a JSON-RPC
 *   id of the interceptor's own, which names its ledger row (the token kept there encrypted), and
 *   the RESPONSE phase (which gets no request) settles the answer carrying that id, once, streamed
 *   or not; any other answer is withheld. Needs a shared `SettlementLedger` and seal key; the same
 *   holds with `passRequestHeaders: false` (docs/protocol.md §3, "HTTP targets");
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
    // `handler` only builds the program (its work starts inside `withFiberRuntime`): no suspend needed.
    runtime.run(
      handler(event, context),
      () => {
        const output = AgentCore.respond(AgentCore.internalErrorAnswerFor(requestIdOf(context)))
        return AgentCore.isHttpEvent(event) ? AgentCore.toHttpOutput(output) as unknown as typeof output : output
      }
    )
  return Object.assign(lambda, { runtime })
}
