/**
 * An in-memory facilitator: a credit ledger (plans, subscribers, balances, access tokens) served as
 * a `Facilitator` layer, with scripted faults and a log of every call for assertions.
 *
 * @since 0.1.0
 */
import { Facilitator } from "@effect-x402/core/Facilitator"
import { FacilitatorError } from "@effect-x402/core/PaymentError"
import * as Paywall from "@effect-x402/core/Paywall"
import type * as X402 from "@effect-x402/core/X402"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

/**
 * A plan in the ledger.
 *
 * @since 0.1.0
 * @category models
 */
export interface Plan {
  readonly planId: string
  readonly name: string
  /** The agent the plan's tokens are bound to, if any. */
  readonly agentId?: string | undefined
  /** A fiat plan's payment provider (e.g. `"stripe"`): advertised as its network. */
  readonly fiatPaymentProvider?: string | undefined
  readonly pricePerCredit?: string | undefined
}

/**
 * An access token minted by the ledger.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenGrant {
  readonly planId: string
  readonly subscriber: string
  readonly agentId?: string | undefined
}

/**
 * A fault the facilitator plays instead of answering normally.
 * - `Invalid`: verify answers `isValid: false` with the reason;
 * - `InsufficientFunds`: verify answers `isValid: false`, `insufficient_funds`;
 * - `Timeout` / `Unreachable` / `ConnectionDropped` / `HttpStatus` / `Malformed`: the transport failure;
 * - `Rejected`: settle answers `success: false`;
 * - `Indeterminate`: the settle request is sent (credits burned when `applied`) but the answer is lost.
 *
 * @since 0.1.0
 * @category faults
 */
export type Fault =
  | { readonly _tag: "Invalid"; readonly reason?: string }
  | { readonly _tag: "InsufficientFunds" }
  | { readonly _tag: "Timeout" }
  | { readonly _tag: "Unreachable" }
  | { readonly _tag: "ConnectionDropped" }
  | { readonly _tag: "HttpStatus"; readonly status: number; readonly code?: string }
  | { readonly _tag: "Malformed" }
  | { readonly _tag: "Rejected"; readonly reason?: string }
  | { readonly _tag: "Indeterminate"; readonly applied: boolean }

/**
 * One call the facilitator received (tokens appear only as fingerprints).
 *
 * @since 0.1.0
 * @category models
 */
export interface CallRecord {
  readonly operation: "verify" | "settle"
  readonly planIds: ReadonlyArray<string>
  readonly maxAmount: number
  readonly token: string
  readonly agentRequestId?: string | undefined
  readonly outcome: "valid" | "invalid" | "settled" | "rejected" | "fault"
  readonly resourceUrl: string
}

/**
 * A settlement the ledger performed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Settlement {
  readonly transaction: string
  readonly planId: string
  readonly subscriber: string
  readonly credits: number
  readonly agentRequestId: string | undefined
}

/**
 * A spending delegation of an account (the fake backend's bookkeeping: limits are recorded, not
 * enforced).
 *
 * @since 0.1.0
 * @category models
 */
export interface Delegation {
  readonly delegationId: string
  /** The account that created it. */
  readonly owner: string
  /** `erc4337`, or a card provider (`stripe`, `braintree`, `visa`). */
  readonly provider: string
  readonly currency: string
  readonly spendingLimitCents: number
  readonly durationSecs: number
  readonly planId?: string | undefined
  readonly providerPaymentMethodId?: string | undefined
  /** Epoch milliseconds. */
  readonly createdAt: number
  readonly status: "Active" | "Revoked"
}

/**
 * Options of a ledger.
 *
 * @since 0.1.0
 * @category models
 */
export interface LedgerOptions {
  /** The network advertised for crypto plans. Default `eip155:84532`. */
  readonly network?: string
  /** Refuse a second settle of the same token, like single-use (v3) tokens. Default false. */
  readonly singleUseTokens?: boolean
}

/**
 * The in-memory credit ledger. Every operation is synchronous, so concurrent fibers see atomic
 * updates: a balance can never be spent twice.
 *
 * @since 0.1.0
 * @category ledger
 */
export class Ledger {
  readonly network: string
  readonly singleUseTokens: boolean
  readonly plans = new Map<string, Plan>()
  readonly balances = new Map<string, number>()
  readonly tokens = new Map<string, TokenGrant>()
  readonly calls: Array<CallRecord> = []
  readonly settlements: Array<Settlement> = []
  readonly delegations = new Map<string, Delegation>()
  private readonly faults: { verify: Array<Fault>; settle: Array<Fault> } = { verify: [], settle: [] }
  private readonly requests = new Map<string, { token: string; settled: boolean }>()
  private readonly settledTokens = new Set<string>()
  private counter = 0
  /** Added to every call, to play a slow facilitator. */
  latency: Duration.Duration = Duration.zero

  constructor(options: LedgerOptions = {}) {
    this.network = options.network ?? "eip155:84532"
    this.singleUseTokens = options.singleUseTokens ?? false
  }

  private next(prefix: string): string {
    this.counter += 1
    return `${prefix}${this.counter.toString(16).padStart(8, "0")}`
  }

  /** Adds (or replaces) a plan. */
  addPlan(plan: Omit<Plan, "name"> & { readonly name?: string }): Plan {
    const full: Plan = { name: plan.planId, ...plan }
    this.plans.set(plan.planId, full)
    return full
  }

  /** Credits a subscriber's balance on a plan (creating both as needed). */
  fund(subscriber: string, planId: string, credits: number): void {
    if (!this.plans.has(planId)) this.addPlan({ planId })
    this.balances.set(key(subscriber, planId), this.balance(subscriber, planId) + credits)
  }

  /** A subscriber's balance on a plan. */
  balance(subscriber: string, planId: string): number {
    return this.balances.get(key(subscriber, planId)) ?? 0
  }

  /** Mints an access token bound to a plan and a subscriber (and an agent, when given). */
  mintToken(grant: TokenGrant): string {
    if (!this.plans.has(grant.planId)) this.addPlan({ planId: grant.planId })
    const token = `${this.next("nvm_tok_")}.${Math.random().toString(36).slice(2, 12)}`
    this.tokens.set(token, grant)
    return token
  }

  /** Records a delegation and gives it an id. */
  addDelegation(delegation: Omit<Delegation, "delegationId" | "status">): Delegation {
    const full: Delegation = { ...delegation, delegationId: this.next("del_"), status: "Active" }
    this.delegations.set(full.delegationId, full)
    return full
  }

  /** An account's delegations, oldest first. */
  delegationsOf(owner: string): ReadonlyArray<Delegation> {
    return [...this.delegations.values()].filter((d) => d.owner === owner)
  }

  /** Revokes a delegation: tokens can no longer be minted with it. */
  revokeDelegation(delegationId: string): void {
    const delegation = this.delegations.get(delegationId)
    if (delegation !== undefined) this.delegations.set(delegationId, { ...delegation, status: "Revoked" })
  }

  /** Revokes a token: verify and settle refuse it from now on. */
  revoke(token: string): void {
    this.tokens.delete(token)
  }

  /** Queues faults: the next calls of the operation play them, in order. */
  failNext(operation: "verify" | "settle", ...faults: ReadonlyArray<Fault>): void {
    this.faults[operation].push(...faults)
  }

  /** Clears queued faults. */
  clearFaults(): void {
    this.faults.verify.length = 0
    this.faults.settle.length = 0
  }

  /** Credits burned in all settlements. */
  get totalSettled(): number {
    return this.settlements.reduce((sum, s) => sum + s.credits, 0)
  }

  /** The next queued fault of an operation, if any. */
  takeFault(operation: "verify" | "settle"): Fault | undefined {
    return this.faults[operation].shift()
  }

  private record(record: CallRecord): void {
    this.calls.push(record)
  }

  /** The pure verify logic, without faults or latency. */
  verify(
    request: { readonly paymentRequired: X402.PaymentRequired; readonly token: string; readonly maxAmount: number }
  ): X402.VerifyResponse {
    const grant = this.tokens.get(request.token)
    const base = this.callBase("verify", request)
    const invalid = (invalidReason: string): X402.VerifyResponse => {
      this.record({ ...base, outcome: "invalid" })
      return { isValid: false, invalidReason }
    }
    if (grant === undefined) return invalid("invalid_payload")
    const accepted = request.paymentRequired.accepts.find((a) => a.planId === grant.planId)
    if (accepted === undefined) return invalid("invalid_payment_requirements")
    const agentId = accepted.extra?.agentId
    if (grant.agentId !== undefined && agentId !== undefined && agentId !== grant.agentId) {
      return invalid("invalid_payment_requirements")
    }
    if (this.singleUseTokens && this.settledTokens.has(request.token)) return invalid("duplicate_settlement")
    if (this.balance(grant.subscriber, grant.planId) < request.maxAmount) return invalid("insufficient_funds")
    const agentRequestId = this.next("areq_")
    this.requests.set(agentRequestId, { token: request.token, settled: false })
    this.record({ ...base, agentRequestId, outcome: "valid" })
    return { isValid: true, payer: grant.subscriber, network: accepted.network, agentRequestId }
  }

  /** The pure settle logic, without faults or latency. Burns the credits when it succeeds. */
  settle(
    request: {
      readonly paymentRequired: X402.PaymentRequired
      readonly token: string
      readonly maxAmount: number
      readonly agentRequestId?: string | undefined
    }
  ): X402.SettleResponse {
    const grant = this.tokens.get(request.token)
    const base = this.callBase("settle", request)
    const network = grant ? this.networkOf(grant.planId) : this.network
    const rejected = (errorReason: string): X402.SettleResponse => {
      this.record({ ...base, outcome: "rejected" })
      return { success: false, errorReason, transaction: "", network }
    }
    if (grant === undefined) return rejected("invalid_payload")
    if (!request.paymentRequired.accepts.some((a) => a.planId === grant.planId)) {
      return rejected("invalid_payment_requirements")
    }
    if (!Number.isSafeInteger(request.maxAmount) || request.maxAmount < 0) return rejected("invalid_payload")
    if (request.agentRequestId !== undefined) {
      const pending = this.requests.get(request.agentRequestId)
      if (pending === undefined || pending.token !== request.token) return rejected("invalid_transaction_state")
      if (pending.settled) return rejected("duplicate_settlement")
    }
    if (this.singleUseTokens && this.settledTokens.has(request.token)) return rejected("duplicate_settlement")
    const balance = this.balance(grant.subscriber, grant.planId)
    if (balance < request.maxAmount) return rejected("insufficient_funds")
    this.balances.set(key(grant.subscriber, grant.planId), balance - request.maxAmount)
    if (request.agentRequestId !== undefined) {
      this.requests.set(request.agentRequestId, { token: request.token, settled: true })
    }
    this.settledTokens.add(request.token)
    const transaction = `0x${this.next("").padStart(64, "0")}`
    this.settlements.push({
      transaction,
      planId: grant.planId,
      subscriber: grant.subscriber,
      credits: request.maxAmount,
      agentRequestId: request.agentRequestId
    })
    this.record({ ...base, outcome: "settled" })
    return {
      success: true,
      payer: grant.subscriber,
      transaction,
      network,
      creditsRedeemed: String(request.maxAmount),
      remainingBalance: String(balance - request.maxAmount)
    }
  }

  /** The network advertised for a plan: a fiat plan's provider, else the ledger's network. */
  networkOf(planId: string): string {
    return this.plans.get(planId)?.fiatPaymentProvider ?? this.network
  }

  /** Records a call that a fault answered. */
  recordFault(
    operation: "verify" | "settle",
    request: {
      readonly paymentRequired: X402.PaymentRequired
      readonly token: string
      readonly maxAmount: number
      readonly agentRequestId?: string | undefined
    }
  ): void {
    this.record({ ...this.callBase(operation, request), outcome: "fault" })
  }

  private callBase(
    operation: "verify" | "settle",
    request: {
      readonly paymentRequired: X402.PaymentRequired
      readonly token: string
      readonly maxAmount: number
      readonly agentRequestId?: string | undefined
    }
  ) {
    return {
      operation,
      planIds: request.paymentRequired.accepts.map((a) => a.planId),
      maxAmount: request.maxAmount,
      token: Paywall.fingerprint(Redacted.make(request.token)),
      resourceUrl: request.paymentRequired.resource.url,
      ...(request.agentRequestId !== undefined ? { agentRequestId: request.agentRequestId } : {})
    }
  }
}

const key = (subscriber: string, planId: string) => `${subscriber}\u0000${planId}`

/**
 * The ledger behind the test facilitator, for arranging and asserting.
 *
 * @since 0.1.0
 * @category tags
 */
export class TestFacilitator extends Context.Tag("@effect-x402/testing/TestFacilitator")<TestFacilitator, Ledger>() {}

const transportFault = (
  operation: "verify" | "settle",
  fault: Fault
): FacilitatorError | undefined => {
  switch (fault._tag) {
    case "Timeout":
      return new FacilitatorError({ operation, kind: "Timeout", requestSent: true })
    case "Unreachable":
      return new FacilitatorError({ operation, kind: "Unreachable", requestSent: false, detail: "connection refused" })
    case "ConnectionDropped":
      return new FacilitatorError({ operation, kind: "ConnectionDropped", requestSent: true })
    case "HttpStatus":
      return new FacilitatorError({
        operation,
        kind: "HttpStatus",
        requestSent: true,
        status: fault.status,
        ...(fault.code !== undefined ? { code: fault.code } : {})
      })
    case "Malformed":
      return new FacilitatorError({ operation, kind: "MalformedResponse", requestSent: true })
    default:
      return undefined
  }
}

/**
 * A `Facilitator` over a ledger: faults queued with `failNext` are played first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFacilitator = (ledger: Ledger): Facilitator.Service => {
  const delay = <A, E>(effect: Effect.Effect<A, E>) =>
    Duration.toMillis(ledger.latency) > 0 ? Effect.zipRight(Effect.sleep(ledger.latency), effect) : effect
  return {
    verify: (request) =>
      delay(Effect.suspend(() => {
        const raw = { ...request, token: Redacted.value(request.token) }
        const fault = ledger.takeFault("verify")
        if (fault === undefined) return Effect.succeed(ledger.verify(raw))
        ledger.recordFault("verify", raw)
        if (fault._tag === "Invalid") {
          return Effect.succeed<X402.VerifyResponse>({
            isValid: false,
            invalidReason: fault.reason ?? "invalid_payload"
          })
        }
        if (fault._tag === "InsufficientFunds") {
          return Effect.succeed<X402.VerifyResponse>({ isValid: false, invalidReason: "insufficient_funds" })
        }
        return Effect.fail(
          transportFault("verify", fault) ?? new FacilitatorError({
            operation: "verify",
            kind: "MalformedResponse",
            requestSent: true,
            detail: `fault ${fault._tag} does not apply to verify`
          })
        )
      })),
    settle: (request) =>
      delay(Effect.suspend(() => {
        const raw = { ...request, token: Redacted.value(request.token) }
        const fault = ledger.takeFault("settle")
        if (fault === undefined) return Effect.succeed(ledger.settle(raw))
        if (fault._tag === "Rejected") {
          ledger.recordFault("settle", raw)
          return Effect.succeed<X402.SettleResponse>({
            success: false,
            errorReason: fault.reason ?? "unexpected_settle_error",
            transaction: "",
            network: ledger.network
          })
        }
        if (fault._tag === "Indeterminate") {
          if (fault.applied) ledger.settle(raw)
          else ledger.recordFault("settle", raw)
          return Effect.fail(new FacilitatorError({ operation: "settle", kind: "Timeout", requestSent: true }))
        }
        ledger.recordFault("settle", raw)
        return Effect.fail(
          transportFault("settle", fault) ?? new FacilitatorError({
            operation: "settle",
            kind: "MalformedResponse",
            requestSent: true,
            detail: `fault ${fault._tag} does not apply to settle`
          })
        )
      })),
    networkFor: (planId) => Effect.sync(() => ledger.networkOf(planId))
  }
}

/**
 * A layer providing `Facilitator` over a fresh (or the given) ledger, and the ledger itself as
 * `TestFacilitator`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (ledger: Ledger = new Ledger()): Layer.Layer<Facilitator | TestFacilitator> =>
  Layer.merge(
    Layer.succeed(TestFacilitator, ledger),
    Layer.succeed(Facilitator, makeFacilitator(ledger))
  )

/**
 * A ledger seeded with one plan, one agent and one funded subscriber, and a token for them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const seeded = (options: {
  readonly planId?: string
  readonly agentId?: string
  readonly subscriber?: string
  readonly credits?: number
} & LedgerOptions = {}): { readonly ledger: Ledger; readonly token: string; readonly subscriber: string } => {
  const ledger = new Ledger(options)
  const planId = options.planId ?? "plan-1"
  const subscriber = options.subscriber ?? "0x5ub5cr1b3r00000000000000000000000000001"
  ledger.addPlan({ planId, agentId: options.agentId })
  ledger.fund(subscriber, planId, options.credits ?? 10)
  const token = ledger.mintToken({ planId, subscriber, agentId: options.agentId })
  return { ledger, token, subscriber }
}
