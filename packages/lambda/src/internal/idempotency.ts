import * as Idempotency from "@effect-x402/core/Idempotency"
import type * as Paywall from "@effect-x402/core/Paywall"
import * as SettlementLedger from "@effect-x402/core/SettlementLedger"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as AgentCore from "../AgentCore.js"
import { withReceipt } from "./inBand.js"
import * as Json from "./json.js"

/**
 * The idempotency key of an AgentCore call: the `Idempotency-Key` header, else the x402
 * `payment-identifier` id in `params._meta["x402/payment"]`. Undefined when neither is sent.
 */
export const keyOfCall = (call: AgentCore.Call): unknown =>
  Json.headerValue(call.headers, Idempotency.IDEMPOTENCY_KEY_HEADER) ?? Idempotency.mcpKeyOf(call.request.params)

/** How an AgentCore answer is kept in the ledger: its JSON, and back (only an object with a status). */
export const answerCodec: Idempotency.Codec<AgentCore.Answer> = {
  encode: (answer) => Idempotency.jsonCodec.encode(answer),
  decode: (stored) =>
    Option.filter(
      Idempotency.jsonCodec.decode(stored),
      (u): u is AgentCore.Answer => Json.isRecord(u) && typeof u.statusCode === "number"
    ) as Option.Option<AgentCore.Answer>
}

/** A stored answer, re-addressed to the retry's JSON-RPC id. */
export const withId = (answer: AgentCore.Answer, id: AgentCore.JsonRpcId): AgentCore.Answer =>
  Json.isRecord(answer.body) && "id" in answer.body ? { ...answer, body: { ...answer.body, id } } : answer

const ERRORS: Record<Idempotency.IdempotencyErrorReason, string> = {
  AlreadyPaid: "Already paid",
  InProgress: "In progress",
  KeyRejected: "Idempotency key rejected",
  Unresolved: "Settlement unresolved",
  InvalidKey: "Invalid idempotency key",
  Unavailable: "Settlement ledger unavailable"
}

/**
 * The answer to a refused retry: an MCP error result whose code is the HTTP status of the refusal
 * (409, 400 or 503) and whose `error` names it; `AlreadyPaid` carries the earlier receipt.
 */
export const idempotencyFailureOutput = (
  id: AgentCore.JsonRpcId,
  error: Idempotency.IdempotencyError,
  requestId: string
): Effect.Effect<AgentCore.InterceptorOutput> =>
  Effect.as(
    error.reason === "Unavailable"
      ? Effect.logError(`x402: ${error.message} (request ${requestId})`)
      : Effect.logInfo(`x402: ${error.message}`),
    AgentCore.respond(idempotencyFailureAnswer(id, error, requestId))
  )

/** The answer of `idempotencyFailureOutput`. */
export const idempotencyFailureAnswer = (
  id: AgentCore.JsonRpcId,
  error: Idempotency.IdempotencyError,
  requestId: string
): AgentCore.Answer => {
  const answer = AgentCore.errorAnswer(id, {
    error: ERRORS[error.reason],
    code: error.status,
    message: error.message,
    ...(error.reason === "Unavailable" ? { requestId } : {})
  }, { meta: { x402: { idempotency: error.reason } } })
  const settlement = error.settlement
  return error.reason === "AlreadyPaid" && Json.isRecord(settlement) && typeof settlement.success === "boolean"
    ? withReceipt(answer, settlement as never)
    : answer
}

/**
 * The paid path of a call that carries an idempotency key (made once per handler): `Idempotency.protect`
 * over the context's `SettlementLedger`, else one in-memory ledger per cold start.
 */
export const keyedProtector = () => {
  const ledger = SettlementLedger.contextOrMemory()
  return <Req, R, Resp, E, R2>(
    paywall: Paywall.Paywall<Req, R, Resp>,
    call: Paywall.Call<Req>,
    key: string,
    work: (verified: Paywall.Verified) => Effect.Effect<AgentCore.Answer, E, R2>,
    options: Paywall.ProtectOptions<AgentCore.Answer>
  ) => Idempotency.protect(paywall, call, key, work, { ...options, codec: answerCodec, ledger })
}
