/**
 * The facilitator: the service that verifies an x402 access token and settles (burns) its credits.
 * Production provides it with `Nevermined.layer`; tests with `TestFacilitator` from
 * `@effect-x402/testing`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type { FacilitatorError } from "./PaymentError.js"
import type * as X402 from "./X402.js"

/**
 * A verify request: may this token spend `maxAmount` credits on one of these plans?
 *
 * @since 0.1.0
 * @category models
 */
export interface VerifyRequest {
  readonly paymentRequired: X402.PaymentRequired
  readonly token: Redacted.Redacted<string>
  /** Credits, a non-negative safe integer (sent as a decimal string). */
  readonly maxAmount: number
  /**
   * When the call must have its answer (epoch milliseconds). Given only to a facilitator that
   * declares `honoursDeadline`; for any other, `Paywall` enforces the deadline around the call.
   *
   * @since 0.2.0
   */
  readonly deadline?: number | undefined
}

/**
 * A settle request: burn `maxAmount` credits of this token, for the call verify admitted as
 * `agentRequestId`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SettleRequest extends VerifyRequest {
  readonly agentRequestId?: string | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Facilitator extends Context.Tag("@effect-x402/core/Facilitator")<Facilitator, Facilitator.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace Facilitator {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** Checks a token against the requirements; an answer of `isValid: false` is a success here. */
    readonly verify: (request: VerifyRequest) => Effect.Effect<X402.VerifyResponse, FacilitatorError>
    /** Burns the credits; an answer of `success: false` is a success here. */
    readonly settle: (request: SettleRequest) => Effect.Effect<X402.SettleResponse, FacilitatorError>
    /**
     * The network to advertise for a plan in a PaymentRequired (a fiat plan's payment provider, or
     * the environment's default network). Never fails: it falls back to the default.
     */
    readonly networkFor: (planId: string) => Effect.Effect<string>
    /**
     * The networks of several plans at once, in order: what `networkFor` answers for each. Optional:
     * without it, `Paywall` asks `networkFor` for every plan concurrently (a fiber per plan); a
     * facilitator that knows most answers already (a warm cache) answers without forking.
     *
     * @since 0.2.0
     */
    readonly networksFor?: ((planIds: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>>) | undefined
    /**
     * The networks of these plans, in order, when every one is known now without I/O (a warm
     * cache); `undefined` otherwise, and `networksFor` / `networkFor` are asked. Optional: it lets a
     * warm paid call build its PaymentRequired without running an Effect for it.
     *
     * @since 0.4.0
     */
    readonly cachedNetworks?: ((planIds: ReadonlyArray<string>) => ReadonlyArray<string> | undefined) | undefined
    /**
     * Whether verify and settle enforce a request's `deadline` themselves, with the same outcomes as
     * `Paywall`'s own cut-off (past it: a `Timeout` that was never sent; cut off in flight: a
     * `Timeout` that may have landed). Then `Paywall` adds no timer of its own: one deadline per call.
     *
     * @since 0.2.0
     */
    readonly honoursDeadline?: boolean | undefined
  }
}
