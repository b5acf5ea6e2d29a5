/**
 * The paying side on the in-memory ledger: a `Subscriber` that mints tokens, creates delegations and
 * reads balances on a `TestFacilitator.Ledger`, so code built on `Subscriber` or `X402Client` can be
 * tested without any HTTP or backend.
 *
 * @since 0.2.0
 */
import { FacilitatorError } from "@effect-x402/core/PaymentError"
import { Subscriber } from "@effect-x402/core/Subscriber"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as TestFacilitator from "./TestFacilitator.js"

/**
 * A `Subscriber` acting for `subscriber` (its account address) on `ledger`. Like the backend, it
 * refuses tokens for plans the ledger does not know (`HttpStatus 404`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (ledger: TestFacilitator.Ledger, subscriber: string): Subscriber.Service => ({
  accessToken: (request) =>
    Effect.suspend(() =>
      ledger.plans.has(request.planId)
        ? Effect.succeed(
          Redacted.make(ledger.mintToken({ planId: request.planId, subscriber, agentId: request.agentId }))
        )
        : Effect.fail(
          new FacilitatorError({
            operation: "permissions",
            kind: "HttpStatus",
            requestSent: true,
            status: 404,
            detail: `plan ${request.planId} not found`
          })
        )
    ),
  createDelegation: (request) =>
    Effect.sync(() => {
      const created = ledger.addDelegation({
        owner: subscriber,
        provider: request.provider,
        currency: request.currency,
        spendingLimitCents: request.spendingLimitCents,
        durationSecs: request.durationSecs,
        planId: request.planId,
        providerPaymentMethodId: request.providerPaymentMethodId,
        createdAt: Date.now()
      })
      return { delegationId: created.delegationId }
    }),
  listDelegations: (options) =>
    Effect.sync(() => {
      const now = Date.now()
      const delegations = ledger.delegationsOf(subscriber)
        .filter((d) =>
          options?.accessible !== true || (d.status === "Active" && d.createdAt + d.durationSecs * 1000 > now)
        )
        .map((d) => ({
          delegationId: d.delegationId,
          provider: d.provider,
          status: d.status,
          currency: d.currency,
          spendingLimitCents: String(d.spendingLimitCents),
          expiresAt: new Date(d.createdAt + d.durationSecs * 1000).toISOString(),
          createdAt: new Date(d.createdAt).toISOString()
        }))
      return { delegations, totalResults: delegations.length }
    }),
  balance: (planId, holderAddress) =>
    Effect.sync(() => {
      const holder = holderAddress ?? subscriber
      const balance = ledger.balance(holder, planId)
      return { planId, holderAddress: holder, balance: String(balance), isSubscriber: balance > 0 }
    })
})

/**
 * The in-memory `Subscriber` as a layer.
 *
 * @example
 * ```ts
 * import { TestFacilitator, TestSubscriber } from "@effect-x402/testing"
 *
 * const { ledger, subscriber } = TestFacilitator.seeded({ planId: "plan-1", credits: 5 })
 * const PayingSide = TestSubscriber.layer(ledger, subscriber)
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (ledger: TestFacilitator.Ledger, subscriber: string): Layer.Layer<Subscriber> =>
  Layer.succeed(Subscriber, make(ledger, subscriber))
