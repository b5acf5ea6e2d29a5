/**
 * The verified payment of the call being served, as a service for the paid handler: who pays, what
 * was verified, and a way to charge a different amount than the default.
 *
 * The HTTP and MCP transports provide it to the handlers they protect.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Paywall from "./Paywall.js"

/**
 * @since 0.1.0
 * @category tags
 */
export class PaymentContext extends Context.Tag("@effect-x402/core/PaymentContext")<
  PaymentContext,
  PaymentContext.Service
>() {}

/**
 * @since 0.1.0
 */
export declare namespace PaymentContext {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The verified call: requirements, facilitator answer, credits verified. */
    readonly verified: Paywall.Verified
    /** The paying account, as the facilitator named it. */
    readonly payer: string | undefined
    /** The credits verified: the amount settled unless the handler charges another. */
    readonly credits: number
    /**
     * Asks to settle this amount instead of the default. The last call wins; the amount is
     * validated at settlement (an invalid one fails the settlement, it is never silently charged).
     */
    readonly chargeCredits: (credits: number) => Effect.Effect<void>
  }
}

/**
 * A payment context and a reader of the amount its handler asked for, for the transport that
 * settles afterwards.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (verified: Paywall.Verified): {
  readonly service: PaymentContext.Service
  readonly requestedCharge: () => Option.Option<number>
} => {
  let requested = Option.none<number>()
  return {
    service: {
      verified,
      payer: verified.verification.payer,
      credits: verified.credits,
      chargeCredits: (credits) =>
        Effect.sync(() => {
          requested = Option.some(credits)
        })
    },
    requestedCharge: () => requested
  }
}

/**
 * Asks the paywall serving the current call to settle this amount instead of the default.
 *
 * @since 0.1.0
 * @category accessors
 */
export const chargeCredits = (credits: number): Effect.Effect<void, never, PaymentContext> =>
  Effect.flatMap(PaymentContext, (context) => context.chargeCredits(credits))
