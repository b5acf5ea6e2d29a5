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
  /**
   * What one credit costs in the delegation's currency, in major units (`"0.01"`: a cent): a
   * delegation's `spendingLimitCents` is spent at this price. Default `"0"`: credits cost no budget.
   */
  readonly pricePerCredit?: string | undefined
  /**
   * The backend mints single-use (v3) tokens for this plan even when the request did not ask for
   * them, as newer backends may.
   */
  readonly singleUseTokens?: boolean | undefined
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
  /** 3: single-use, and bound to `agentId`, `resourceUrl` and `httpVerb` (as signed: absent is `""`). */
  readonly version?: 2 | 3 | undefined
  readonly resourceUrl?: string | undefined
  readonly httpVerb?: string | undefined
  /** The delegation that pays: its limits are checked at verify and spent at settle. */
  readonly delegationId?: string | undefined
}

/**
 * The backend's code for a second settle of a single-use (v3) token (docs/protocol.md §1). The
 * ledger answers it as a `success: false` settle with this `errorReason`; the HTTP fake and the
 * `Facilitator` layer turn it into the backend's error (a 4xx with this `code`).
 *
 * @since 0.2.0
 * @category ledger
 */
export const TOKEN_ALREADY_USED = "BCK.X402.0059"

/**
 * Why the ledger refuses a call on a delegation's limits (verify's `invalidReason`, settle's
 * `errorReason`).
 *
 * @since 0.2.0
 * @category ledger
 */
export const DelegationRefusal = {
  notFound: "delegation_not_found",
  inactive: "delegation_not_active",
  expired: "delegation_expired",
  spendingLimit: "delegation_spending_limit_exceeded",
  maxTransactions: "delegation_max_transactions_reached"
} as const

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
 * What a verify or settle call asks of the ledger.
 *
 * @since 0.2.0
 * @category models
 */
export interface CallRequest {
  readonly paymentRequired: X402.PaymentRequired
  readonly token: string
  readonly maxAmount: number
  readonly agentRequestId?: string | undefined
}

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
 * A spending delegation of an account. Its limits are enforced: verify refuses a call that would
 * pass one, settle refuses past it; every settle through it adds to `amountSpentCents` and
 * `transactionCount`.
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
  /** The most settlements it pays for; unlimited when absent. */
  readonly maxTransactions?: number | undefined
  readonly amountSpentCents: number
  readonly transactionCount: number
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
  /** Mint every token single-use (v3), as if every plan asked for it. Default false. */
  readonly singleUseTokens?: boolean
  /** The clock of delegation expiry, epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number
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
  /** The clock of delegation expiry (epoch milliseconds): replace it to move time in a test. */
  now: () => number

  constructor(options: LedgerOptions = {}) {
    this.network = options.network ?? "eip155:84532"
    this.singleUseTokens = options.singleUseTokens ?? false
    this.now = options.now ?? Date.now
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

  /**
   * Mints an access token bound to a plan and a subscriber (and an agent, when given). A v3 token
   * (asked for, or the plan's or ledger's `singleUseTokens`) is shaped like the backend's: base64url
   * JSON whose `payload.authorization.nonce` is set, which is how clients tell it is single-use.
   */
  mintToken(grant: TokenGrant): string {
    if (!this.plans.has(grant.planId)) this.addPlan({ planId: grant.planId })
    const version = grant.version === 3 || this.singleUseTokens || this.plans.get(grant.planId)?.singleUseTokens
      ? 3
      : 2
    const id = this.next("nvm_tok_")
    const secret = Math.random().toString(36).slice(2, 12)
    const token = version === 2 ? `${id}.${secret}` : Buffer.from(
      JSON.stringify({
        x402Version: 2,
        accepted: { planId: grant.planId, extra: grant.agentId !== undefined ? { agentId: grant.agentId } : {} },
        payload: {
          signature: `0xfake${secret}`,
          authorization: { from: grant.subscriber, sessionKeysProvider: "fake", sessionKeys: [], nonce: `0x${id}` }
        }
      }),
      "utf8"
    ).toString("base64url")
    this.tokens.set(token, version === 3 ? { ...grant, version } : grant)
    return token
  }

  /** Records a delegation and gives it an id. */
  addDelegation(
    delegation: Omit<Delegation, "delegationId" | "status" | "amountSpentCents" | "transactionCount">
  ): Delegation {
    const full: Delegation = {
      ...delegation,
      delegationId: this.next("del_"),
      status: "Active",
      amountSpentCents: 0,
      transactionCount: 0
    }
    this.delegations.set(full.delegationId, full)
    return full
  }

  /**
   * Records a crypto (`erc4337`, `usdc`) delegation of `owner`, created now, with room to spare
   * unless `limits` say otherwise (10 USD for an hour): what a test needs to let a subscriber pay.
   */
  delegate(
    owner: string,
    limits?: Partial<Omit<Delegation, "delegationId" | "status" | "amountSpentCents" | "transactionCount" | "owner">>
  ): Delegation {
    return this.addDelegation({
      provider: "erc4337",
      currency: "usdc",
      spendingLimitCents: 1000,
      durationSecs: 3600,
      createdAt: this.now(),
      ...limits,
      owner
    })
  }

  /** When a delegation stops paying, epoch milliseconds. */
  expiresAt(delegation: Delegation): number {
    return delegation.createdAt + delegation.durationSecs * 1000
  }

  /** What `credits` cost in a delegation's cents, at the plan's `pricePerCredit`. */
  costCents(planId: string, credits: number): number {
    return Math.round(credits * Number(this.plans.get(planId)?.pricePerCredit ?? "0") * 100)
  }

  /**
   * Why a delegation cannot pay `credits` more on a plan right now, or `undefined` when it can:
   * not found, revoked, expired, out of transactions, or out of budget.
   */
  delegationRefusal(delegationId: string, planId: string, credits: number): string | undefined {
    const delegation = this.delegations.get(delegationId)
    if (delegation === undefined) return DelegationRefusal.notFound
    if (delegation.status !== "Active") return DelegationRefusal.inactive
    if (this.expiresAt(delegation) <= this.now()) return DelegationRefusal.expired
    if (delegation.maxTransactions !== undefined && delegation.transactionCount >= delegation.maxTransactions) {
      return DelegationRefusal.maxTransactions
    }
    if (delegation.amountSpentCents + this.costCents(planId, credits) > delegation.spendingLimitCents) {
      return DelegationRefusal.spendingLimit
    }
    return undefined
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
    // A v3 token is good only where it was minted for. Verify never consumes it (a spent one is
    // refused at settle, with the backend's code), so verify stays repeatable.
    if (grant.version === 3 && !boundTo(grant, request.paymentRequired, accepted)) {
      return invalid("invalid_payment_requirements")
    }
    if (this.balance(grant.subscriber, grant.planId) < request.maxAmount) return invalid("insufficient_funds")
    if (grant.delegationId !== undefined) {
      const refusal = this.delegationRefusal(grant.delegationId, grant.planId, request.maxAmount)
      if (refusal !== undefined) return invalid(refusal)
    }
    const agentRequestId = this.next("areq_")
    this.requests.set(agentRequestId, { token: request.token, settled: false })
    this.record({ ...base, agentRequestId, outcome: "valid" })
    return { isValid: true, payer: grant.subscriber, network: accepted.network, agentRequestId }
  }

  /** The pure settle logic, without faults or latency. Burns the credits when it succeeds. */
  settle(
    request: CallRequest
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
    if (grant.version === 3 && this.settledTokens.has(request.token)) return rejected(TOKEN_ALREADY_USED)
    const accepted = request.paymentRequired.accepts.find((a) => a.planId === grant.planId)
    if (grant.version === 3 && (accepted === undefined || !boundTo(grant, request.paymentRequired, accepted))) {
      return rejected("invalid_payment_requirements")
    }
    const balance = this.balance(grant.subscriber, grant.planId)
    if (balance < request.maxAmount) return rejected("insufficient_funds")
    if (grant.delegationId !== undefined) {
      const refusal = this.delegationRefusal(grant.delegationId, grant.planId, request.maxAmount)
      if (refusal !== undefined) return rejected(refusal)
      const delegation = this.delegations.get(grant.delegationId)!
      this.delegations.set(delegation.delegationId, {
        ...delegation,
        amountSpentCents: delegation.amountSpentCents + this.costCents(grant.planId, request.maxAmount),
        transactionCount: delegation.transactionCount + 1
      })
    }
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
    request: CallRequest
  ): void {
    this.record({ ...this.callBase(operation, request), outcome: "fault" })
  }

  private callBase(
    operation: "verify" | "settle",
    request: CallRequest
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

// The backend compares resource URLs by origin and path, and exactly when either side is not an
// absolute URL (docs/protocol.md §1).
const sameResource = (bound: string, advertised: string): boolean => {
  try {
    const a = new URL(bound)
    const b = new URL(advertised)
    return a.origin === b.origin && a.pathname === b.pathname
  } catch {
    return bound === advertised
  }
}

// What a v3 token is bound to: the agent, the resource URL and the verb it was minted with. A field
// it was minted without binds nothing (such a token is merely single-use).
const boundTo = (grant: TokenGrant, paymentRequired: X402.PaymentRequired, accepted: X402.Accepted): boolean =>
  (grant.agentId === undefined || grant.agentId === (accepted.extra?.agentId ?? "")) &&
  (grant.resourceUrl === undefined || sameResource(grant.resourceUrl, paymentRequired.resource.url)) &&
  (grant.httpVerb === undefined || grant.httpVerb.toUpperCase() === (accepted.extra?.httpVerb ?? "").toUpperCase())

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

// The backend refuses a spent single-use token with an error status and its code, not with a
// `success: false` answer: played the way the live layer reports it.
const settled = (answer: X402.SettleResponse): Effect.Effect<X402.SettleResponse, FacilitatorError> =>
  answer.errorReason === TOKEN_ALREADY_USED
    ? Effect.fail(
      new FacilitatorError({
        operation: "settle",
        kind: "HttpStatus",
        requestSent: true,
        status: 409,
        code: TOKEN_ALREADY_USED,
        reason: "TokenAlreadyUsed",
        detail: "access token already used: a single-use token settles once; mint a new one"
      })
    )
    : Effect.succeed(answer)

// A transport fault as the error the live layer would give; a fault that has no meaning for the
// operation (a settle-only fault at verify) as a malformed answer, so a test's mistake shows.
const faultError = (operation: "verify" | "settle", fault: Fault): FacilitatorError =>
  transportFault(operation, fault) ?? new FacilitatorError({
    operation,
    kind: "MalformedResponse",
    requestSent: true,
    detail: `fault ${fault._tag} does not apply to ${operation}`
  })

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
        return Effect.fail(faultError("verify", fault))
      })),
    settle: (request) =>
      delay(Effect.suspend(() => {
        const raw = { ...request, token: Redacted.value(request.token) }
        const fault = ledger.takeFault("settle")
        if (fault === undefined) return settled(ledger.settle(raw))
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
        return Effect.fail(faultError("settle", fault))
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
