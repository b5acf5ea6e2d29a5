import type * as PaymentError from "@effect-x402/core/PaymentError"
import * as Paywall from "@effect-x402/core/Paywall"
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as AgentCore from "../AgentCore.js"
import type { HandlerFailed } from "./handler.js"
import { withFailure } from "./inBand.js"
import { methodSet } from "./methods.js"
import { redact, redactCause } from "./redact.js"

/**
 * The settings shared by the AgentCore adapters, validated once: the token headers, the billable
 * methods and the free ones (exact names; see `methodSet`).
 */
export const settingsOf = (options: {
  readonly tokenHeader?: string | ReadonlyArray<string> | undefined
  readonly billableMethods?: ReadonlyArray<string> | undefined
  readonly freeMethods?: ReadonlyArray<string> | undefined
}, defaultFree: ReadonlyArray<string>) => ({
  tokenHeaders: AgentCore.tokenHeaders(options.tokenHeader),
  billable: methodSet(options.billableMethods ?? AgentCore.DEFAULT_BILLABLE_METHODS, "billableMethods"),
  free: methodSet(options.freeMethods ?? defaultFree, "freeMethods")
})

/**
 * The answer to a payment failure: the `onPaymentError` hook's replacement when it gives one (in
 * any handler format), else the default answer of docs/protocol.md §3/§6. Server-side failures
 * carry `requestId`; the log line has the detail, redacted, under the same id.
 */
export const paymentFailureOutput = <Req, R>(
  paywall: Paywall.Paywall<Req, R, unknown>,
  id: AgentCore.JsonRpcId,
  failure: PaymentError.PaymentFailure,
  requestId: string,
  messages?: { readonly invalid?: (reason: string) => string }
): Effect.Effect<AgentCore.InterceptorOutput> =>
  Effect.gen(function*() {
    yield* logPaymentFailure(failure, requestId)
    const replacement = yield* Paywall.replacementFor(paywall, failure)
    if (Option.isSome(replacement)) {
      const answer = AgentCore.normalize(replacement.value, id)
      if (Either.isRight(answer)) return AgentCore.respond(answer.right)
      yield* Effect.logWarning(`x402: onPaymentError returned no usable answer (${answer.left}); default answer sent`)
    }
    return AgentCore.respond(
      withFailure(AgentCore.paymentFailureAnswer(id, failure, { ...messages, requestId }), failure)
    )
  })

const logPaymentFailure = (failure: PaymentError.PaymentFailure, requestId: string): Effect.Effect<void> => {
  switch (failure._tag) {
    case "PaymentRequired":
      return Effect.logDebug("x402: payment required (no token)")
    case "VerifyFailed":
      return failure.reason === "Invalid"
        ? Effect.logInfo(`x402: ${redact(failure.message)}`)
        : Effect.logWarning(`x402: ${redact(failure.message)} (request ${requestId})`)
    case "SettleFailed":
      return Effect.logError(`x402: output withheld: ${redact(failure.message)} (request ${requestId})`)
  }
}

/**
 * The answer to a failed handler: an error result with code 500, a generic message and the
 * correlation id, nothing charged. The handler's message and cause go to the log only, redacted:
 * an exception text may carry a URL with an API key, and the caller may not even have paid.
 */
export const handlerFailureOutput = (
  id: AgentCore.JsonRpcId,
  error: HandlerFailed,
  requestId: string
): Effect.Effect<AgentCore.InterceptorOutput> =>
  Effect.as(
    Effect.annotateLogs(
      Effect.logError(`x402: handler failed (request ${requestId}): ${error.message}`, error.detail),
      "requestId",
      requestId
    ),
    AgentCore.respond(
      AgentCore.errorAnswer(id, {
        error: "Handler failed",
        code: 500,
        message: "The handler failed; nothing was charged",
        requestId
      })
    )
  )

/**
 * The answer when the adapter's own program failed (a defect): the generic 500 with the
 * correlation id; the cause is logged redacted.
 */
export const internalFailureOutput = (
  cause: Cause.Cause<unknown>,
  requestId: string
): Effect.Effect<AgentCore.InterceptorOutput> =>
  Effect.as(
    Effect.annotateLogs(
      Effect.logError(`x402: internal failure (request ${requestId})`, redactCause(cause)),
      "requestId",
      requestId
    ),
    AgentCore.respond(AgentCore.internalErrorAnswerFor(requestId))
  )

/** The answer to an event that is not one gateway call: a warning in the log (no value of it), the JSON-RPC error. */
export const invalidEventOutput = (error: AgentCore.InvalidEvent): Effect.Effect<AgentCore.InterceptorOutput> =>
  Effect.as(Effect.logWarning(`x402: ${error.message}`), AgentCore.respond(AgentCore.invalidEventAnswer(error)))
