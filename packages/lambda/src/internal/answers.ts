import type * as PaymentError from "@effect-x402/core/PaymentError"
import * as Paywall from "@effect-x402/core/Paywall"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as AgentCore from "../AgentCore.js"
import { type HandlerFailed, logHandlerFailure } from "./handler.js"

/**
 * The settings shared by the AgentCore adapters, validated once.
 */
export const settingsOf = (options: {
  readonly tokenHeader?: string | ReadonlyArray<string> | undefined
  readonly billableMethods?: ReadonlyArray<string> | undefined
}) => ({
  tokenHeaders: AgentCore.tokenHeaders(options.tokenHeader),
  billable: new Set(options.billableMethods ?? AgentCore.DEFAULT_BILLABLE_METHODS)
})

/**
 * The answer to a payment failure: the `onPaymentError` hook's replacement when it gives one (in
 * any handler format), else the default answer of wire.md §3/§6.
 */
export const paymentFailureOutput = <Req, R>(
  paywall: Paywall.Paywall<Req, R, unknown>,
  id: AgentCore.JsonRpcId,
  failure: PaymentError.PaymentFailure,
  messages?: { readonly invalid?: (reason: string) => string }
): Effect.Effect<AgentCore.InterceptorOutput> =>
  Effect.gen(function*() {
    yield* logPaymentFailure(failure)
    const replacement = yield* Paywall.replacementFor(paywall, failure)
    if (Option.isSome(replacement)) {
      const answer = AgentCore.normalize(replacement.value, id)
      if (Either.isRight(answer)) return AgentCore.respond(answer.right)
      yield* Effect.logWarning(`x402: onPaymentError returned no usable answer (${answer.left}); default answer sent`)
    }
    return AgentCore.respond(AgentCore.paymentFailureAnswer(id, failure, messages))
  })

const logPaymentFailure = (failure: PaymentError.PaymentFailure): Effect.Effect<void> => {
  switch (failure._tag) {
    case "PaymentRequired":
      return Effect.logDebug("x402: payment required (no token)")
    case "VerifyFailed":
      return failure.reason === "Invalid"
        ? Effect.logInfo(`x402: ${failure.message}`)
        : Effect.logWarning(`x402: ${failure.message}`)
    case "SettleFailed":
      return Effect.logError(`x402: output withheld: ${failure.message}`)
  }
}

/**
 * The answer to a failed handler: an error result with code 500, nothing charged.
 */
export const handlerFailureOutput = (
  id: AgentCore.JsonRpcId,
  error: HandlerFailed
): Effect.Effect<AgentCore.InterceptorOutput> =>
  Effect.as(
    logHandlerFailure(error),
    AgentCore.respond(AgentCore.errorAnswer(id, { error: error.message, code: 500 }))
  )
