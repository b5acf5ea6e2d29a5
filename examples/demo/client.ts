/**
 * The client agent: an Effect program that discovers the paid agent's tools, meets its 402, sets up
 * payment with the `Subscriber` (a delegation, an access token), pays a call by hand, lets the
 * `X402Client` pay the next ones, and finally runs out of credits.
 *
 * Every step checks what it shows: statuses, receipts against the balance the backend reports, and
 * a refusal that charges nothing. A step that misbehaves fails the program with `Misbehaved`.
 */
import { Paywall, Subscriber, X402, X402Client } from "@effect-x402/core"
import { HttpClient, HttpClientRequest, type HttpClientResponse } from "@effect/platform"
import { Context, Data, Effect, Either, Option, Redacted, Schema } from "effect"

/** Where the story is told: the demo prints each step, readable or as JSON. */
export class Story extends Context.Tag("demo/Story")<Story, {
  readonly step: (name: string, text: string, data?: Record<string, unknown>) => Effect.Effect<void>
}>() {}

/** A step did not behave as it should. */
export class Misbehaved extends Data.TaggedError("Misbehaved")<{ readonly step: string; readonly what: string }> {
  override get message() {
    return this.step.startsWith("after ")
      ? `${this.what} (${this.step} step)`
      : `step "${this.step}" misbehaved: ${this.what}`
  }
}

const expect = (step: string, ok: boolean, what: string) => ok ? Effect.void : new Misbehaved({ step, what })

const say = (name: string, text: string, data?: Record<string, unknown>) =>
  Effect.flatMap(Story, (story) => story.step(name, text, data))

// ---------------------------------------------------------------------------
// MCP over HTTP: a JSON-RPC POST, as any MCP client sends it
// ---------------------------------------------------------------------------

const ToolResult = Schema.Struct({
  content: Schema.Array(Schema.Struct({ type: Schema.String, text: Schema.optional(Schema.String) })),
  isError: Schema.optional(Schema.Boolean),
  _meta: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
})

const JsonRpcAnswer = Schema.Struct({
  jsonrpc: Schema.Literal("2.0"),
  result: Schema.optional(Schema.Unknown),
  error: Schema.optional(Schema.Struct({ code: Schema.Number, message: Schema.String }))
})

let nextId = 1

/** A `tools/list` or `tools/call` request to the agent's MCP endpoint. */
const mcpRequest = (url: string, method: string, params?: unknown) =>
  HttpClientRequest.post(url).pipe(
    HttpClientRequest.setHeader("accept", "application/json, text/event-stream"),
    HttpClientRequest.bodyUnsafeJson({ jsonrpc: "2.0", id: nextId++, method, ...(params ? { params } : {}) })
  )

const toolCall = (url: string, name: string, args: Record<string, unknown>) =>
  mcpRequest(url, "tools/call", { name, arguments: args })

/**
 * The JSON-RPC answer of a response: its JSON body, or in an SSE stream (a streamed tool call) the
 * event that answers the request (progress notifications before it carry no `result`).
 */
const bodyOf = (response: HttpClientResponse.HttpClientResponse) =>
  Effect.map(response.text, (text): unknown => {
    if (!(response.headers["content-type"] ?? "").includes("text/event-stream")) return JSON.parse(text)
    const messages = text.split(/\r?\n\r?\n/).flatMap((block) => {
      const data = block.split(/\r?\n/).filter((line) => line.startsWith("data:")).map((line) => line.slice(5))
      return data.length > 0 ? [JSON.parse(data.join("\n")) as unknown] : []
    })
    return messages.find((message) =>
      typeof message === "object" && message !== null && ("result" in message || "error" in message)
    )
  })

/** Reads a JSON-RPC answer; a transport-level failure (non-200, JSON-RPC error) misbehaves. */
const answerOf = (step: string, response: HttpClientResponse.HttpClientResponse) =>
  Effect.gen(function*() {
    const body = yield* bodyOf(response)
    const answer = yield* Schema.decodeUnknown(JsonRpcAnswer)(body)
    yield* expect(step, response.status === 200, `HTTP status ${response.status}`)
    if (answer.error !== undefined) return yield* new Misbehaved({ step, what: answer.error.message })
    return answer.result
  })

const toolResultOf = (step: string, response: HttpClientResponse.HttpClientResponse) =>
  Effect.flatMap(answerOf(step, response), Schema.decodeUnknown(ToolResult))

const textOf = (result: typeof ToolResult.Type) => result.content.map((item) => item.text ?? "").join(" ")

const receiptOf = (step: string, response: HttpClientResponse.HttpClientResponse) =>
  Either.match(X402Client.receipt(response), {
    onLeft: Effect.fail,
    onRight: Option.match({
      onNone: () => new Misbehaved({ step, what: "a paid answer without a payment-response receipt" }),
      onSome: Effect.succeed
    })
  })

const short = (hash: string) => hash.length > 14 ? `${hash.slice(0, 8)}…${hash.slice(-4)}` : hash

// ---------------------------------------------------------------------------
// The story
// ---------------------------------------------------------------------------

/** Options of the client agent. */
export interface ClientOptions {
  /** The agent's MCP endpoint. */
  readonly url: string
  /** Reuse this delegation instead of creating one. */
  readonly delegationId?: string | undefined
  /** Spend the whole balance, then show the refusal. */
  readonly exhaust: boolean
}

/** The client agent. Requires an `HttpClient` and the `Subscriber` (whose API key pays). */
export const clientAgent = (options: ClientOptions) =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const subscriber = yield* Subscriber.Subscriber
    const { url } = options

    // 1. Discover the tools: listing is free.
    const listed = yield* http.execute(mcpRequest(url, "tools/list"))
    yield* expect("tools", listed.headers[X402.PAYMENT_REQUIRED_HEADER] === undefined, "listing asked for payment")
    const { tools } = yield* answerOf("tools", listed).pipe(
      Effect.flatMap(
        Schema.decodeUnknown(Schema.Struct({ tools: Schema.Array(Schema.Struct({ name: Schema.String })) }))
      )
    )
    yield* expect("tools", tools.length > 0, "no tools listed")
    yield* say("tools", `${tools.map((tool) => tool.name).join(", ")}: listed for free`, {
      tools: tools.map((tool) => tool.name)
    })

    // 2. Call a tool without paying. AgentCore style: status 200, an `isError` result with code 402,
    //    and the x402 PaymentRequired in the `payment-required` header.
    const unpaid = yield* http.execute(toolCall(url, "forecast", { city: "Lisbon" }))
    const header = unpaid.headers[X402.PAYMENT_REQUIRED_HEADER]
    if (header === undefined) return yield* new Misbehaved({ step: "402", what: "no payment-required header" })
    const demand = yield* X402.PaymentRequiredHeader.decode(header)
    const refusal = yield* toolResultOf("402", unpaid)
    const why = yield* Schema.decodeUnknown(
      Schema.parseJson(Schema.Struct({ code: Schema.Number, message: Schema.String }))
    )(
      refusal.content[0]?.text ?? ""
    )
    yield* expect("402", refusal.isError === true && why.code === 402, "the unpaid call was not refused with 402")
    const accepted = demand.accepts[0]
    const agentId = accepted.extra?.agentId ?? undefined
    yield* say("402", `forecast(Lisbon) without payment: ${why.message}`, { paymentRequired: demand })
    yield* say(
      "",
      `it asks for plan ${accepted.planId} (${accepted.scheme} on ${accepted.network})` +
        `${agentId !== undefined ? ` for agent ${agentId}` : ""} at ${demand.resource.url}`
    )

    // 3. Set up payment: a delegation (the spending authority), then an access token for that plan.
    const delegationId = options.delegationId ?? (yield* subscriber.createDelegation({
      provider: "erc4337",
      spendingLimitCents: 10_000,
      durationSecs: 7 * 24 * 3600,
      currency: "usdc"
    })).delegationId
    yield* say(
      "delegation",
      `${options.delegationId ? "using" : "created"} ${delegationId} (erc4337, 100 USDC, 7 days)`,
      {
        delegationId
      }
    )
    const token = yield* subscriber.accessToken({
      planId: accepted.planId,
      agentId,
      scheme: accepted.scheme as X402.Scheme,
      network: accepted.network,
      delegationId
    })
    yield* say("token", `minted ${Paywall.fingerprint(token)} for plan ${accepted.planId} (shown as a fingerprint)`, {
      token: Paywall.fingerprint(token)
    })

    // What this client paid, for the demo's final audit against the backend's ledger.
    const totals = { paidCalls: 0, credits: 0 }
    const balanceNow = Effect.map(subscriber.balance(accepted.planId), (b) => Number(b.balance))

    /** Checks a paid answer: its receipt, the `_meta.x402` copy, and the balance the backend reports. */
    const checkPaid = Effect.fn("checkPaid")(function*(
      step: string,
      response: HttpClientResponse.HttpClientResponse,
      before: number,
      credits: number
    ) {
      const result = yield* toolResultOf(step, response)
      yield* expect(step, result.isError !== true, `an error result: ${textOf(result)}`)
      const receipt = yield* receiptOf(step, response)
      const after = yield* balanceNow
      const meta = result._meta?.["x402"] as { readonly transaction?: unknown } | undefined
      yield* expect(step, receipt.success, `settlement failed: ${receipt.errorReason ?? "?"}`)
      yield* expect(
        step,
        receipt.creditsRedeemed === String(credits),
        `redeemed ${receipt.creditsRedeemed}, not ${credits}`
      )
      yield* expect(step, before - after === credits, `balance went ${before} → ${after}, not down by ${credits}`)
      yield* expect(
        step,
        receipt.remainingBalance === String(after),
        `receipt says ${receipt.remainingBalance} left, backend ${after}`
      )
      yield* expect(step, meta?.transaction === receipt.transactionHash, "_meta.x402 and the receipt disagree")
      totals.paidCalls++
      totals.credits += credits
      return { text: textOf(result), receipt, after }
    })

    // 4. Pay by hand: the same call, with the token in `payment-signature`.
    const before = yield* balanceNow
    const byHand = yield* http.execute(
      toolCall(url, "forecast", { city: "Lisbon" }).pipe(
        HttpClientRequest.setHeader(X402.PAYMENT_SIGNATURE_HEADER, Redacted.value(token))
      )
    )
    const paid = yield* checkPaid("paid", byHand, before, 1)
    yield* say("paid", `forecast(Lisbon) with payment-signature → ${paid.text}`, { result: paid.text })
    yield* say(
      "receipt",
      `payment-response: ${paid.receipt.creditsRedeemed} credit redeemed, tx ${short(paid.receipt.transactionHash)} ` +
        `on ${paid.receipt.network}`,
      { receipt: paid.receipt }
    )
    yield* say("balance", `${before} → ${paid.after} credits (backend and receipt agree)`, {
      before,
      after: paid.after
    })

    // 5. From here the X402Client pays: on a 402 it mints a token through the Subscriber, retries
    //    once with it, and hands back the answer with its receipt.
    const payer = yield* X402Client.make({ delegationId })
    const payFor = (step: string, name: string, args: Record<string, unknown>, credits: number) =>
      Effect.gen(function*() {
        const start = yield* balanceNow
        const answer = yield* payer.execute(toolCall(url, name, args))
        yield* expect(step, answer.paid, "the X402Client did not pay")
        return { ...yield* checkPaid(step, answer.response, start, credits), before: start }
      })

    const report = yield* payFor("report", "report", { city: "Oslo", days: 3 }, 3)
    yield* say("report", `report(Oslo, 3 days) → ${report.text}`, { result: report.text })
    yield* say("", `dynamic price: 3 credits for 3 days; balance ${report.before} → ${report.after}`, {
      receipt: report.receipt
    })

    const research = yield* payFor("research", "research", { city: "Porto" }, 5)
    yield* say("research", `research(Porto) → ${research.text}`, { result: research.text })
    yield* say("", `verified 2, charged 5 via _meta.creditsToCharge; balance ${research.before} → ${research.after}`, {
      receipt: research.receipt
    })

    // 6. Run out of credits: the agent refuses cleanly and nothing is charged.
    if (!options.exhaust) {
      yield* say("refused", "skipped: it would spend your whole balance (pass --exhaust to run it)")
      return totals
    }
    let left = research.after
    let spent = 0
    while (left > 0 && spent < 100) {
      left = (yield* payFor("spend", "forecast", { city: "Lisbon" }, 1)).after
      spent++
    }
    yield* expect("spend", left === 0, `balance still ${left} after ${spent} forecasts`)
    yield* say("spend", `${spent} more forecast(s) paid; balance 0`, { spent })
    const refused = yield* Effect.flip(payer.execute(toolCall(url, "forecast", { city: "Lisbon" })))
    yield* expect(
      "refused",
      refused._tag === "X402ClientError" && refused.reason === "PaymentRefused",
      `expected a PaymentRefused, got ${refused.message}`
    )
    const after = yield* balanceNow
    yield* expect("refused", after === 0, `balance ${after} after a refused call`)
    yield* say("refused", `forecast(Lisbon) → ${refused.message}; nothing charged, no output`, {
      reason: refused._tag === "X402ClientError" ? refused.reason : refused._tag,
      detail: refused.message
    })
    return totals
  })
