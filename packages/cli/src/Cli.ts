/**
 * The `effect-x402` command line: `decode` an x402 header, `pay` for a call step by step (balance →
 * token → call → receipt), read a plan's `balance`. The paying commands act for the subscriber of
 * `NVM_API_KEY` (with `NVM_ENVIRONMENT`, `NVM_BACKEND_URL`, `NVM_DELEGATION_ID`).
 *
 * @since 0.1.0
 */
import * as Paywall from "@effect-x402/core/Paywall"
import * as Subscriber from "@effect-x402/core/Subscriber"
import * as X402 from "@effect-x402/core/X402"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Headers from "./Headers.js"

/**
 * A command that could not do its work, with a message for the person at the terminal.
 *
 * @since 0.1.0
 * @category errors
 */
export class CliError extends Data.TaggedError("CliError")<{ readonly message: string }> {}

/**
 * The paying side from the environment, with a message naming what is missing.
 *
 * @since 0.1.0
 * @category layers
 */
export const SubscriberLive: Layer.Layer<Subscriber.Subscriber | HttpClient.HttpClient, CliError> = Subscriber
  .layerConfig().pipe(
    Layer.provideMerge(FetchHttpClient.layer),
    Layer.mapError((error) =>
      new CliError({
        message: error._tag === "InvalidApiKey"
          ? `NVM_API_KEY is not a Nevermined API key: ${error.message}`
          : "NVM_API_KEY is not set: the API key of the subscriber who pays (and NVM_ENVIRONMENT, e.g. sandbox)"
      })
    )
  )

/** One progress line: the step, padded, then what happened. */
const step = (name: string, detail: string) => Console.log(`${name.padEnd(9)} ${detail}`)

const decode = Command.make(
  "decode",
  {
    header: Args.text({ name: "header" }).pipe(
      Args.withDescription("a payment-required, payment-response or payment-signature value")
    )
  },
  ({ header }) => {
    const described = Headers.describe(header)
    return Console.log(JSON.stringify(described, null, 2))
  }
).pipe(Command.withDescription("Decode an x402 header; an access token is shown without its secret parts"))

const balance = Command.make(
  "balance",
  { planId: Args.text({ name: "planId" }) },
  ({ planId }) =>
    Effect.gen(function*() {
      const subscriber = yield* Subscriber.Subscriber
      const found = yield* subscriber.balance(planId)
      yield* step("balance", `${found.balance} credits on plan ${planId} (holder ${found.holderAddress})`)
    })
).pipe(
  Command.withDescription("The balance of the subscriber of NVM_API_KEY on a plan"),
  Command.provide(SubscriberLive)
)

const MAX_BODY_SHOWN = 2000

const bodyOf = (response: HttpClientResponse.HttpClientResponse) =>
  Effect.map(
    Effect.orElseSucceed(response.text, () => ""),
    (text) => text.length > MAX_BODY_SHOWN ? `${text.slice(0, MAX_BODY_SHOWN)}… (${text.length} characters)` : text
  )

const demandOf = (response: HttpClientResponse.HttpClientResponse): Option.Option<string> =>
  Option.fromNullable(response.headers[X402.PAYMENT_REQUIRED_HEADER])

const pay = Command.make(
  "pay",
  {
    url: Args.text({ name: "url" }).pipe(
      Args.withDescription("the agent: an MCP endpoint with --tool, else any x402 URL")
    ),
    tool: Options.text("tool").pipe(Options.optional, Options.withDescription("call this MCP tool (tools/call)")),
    args: Options.text("args").pipe(Options.withDefault("{}"), Options.withDescription("the tool's arguments as JSON")),
    delegation: Options.text("delegation").pipe(
      Options.optional,
      Options.withDescription("the delegation that funds the token (default NVM_DELEGATION_ID)")
    )
  },
  ({ args, delegation, tool, url }) =>
    Effect.gen(function*() {
      const subscriber = yield* Subscriber.Subscriber
      const client = yield* HttpClient.HttpClient
      let request = HttpClientRequest.get(url)
      if (Option.isSome(tool)) {
        const parsed = yield* Effect.try({
          try: () => JSON.parse(args) as unknown,
          catch: () => new CliError({ message: "--args is not JSON" })
        })
        request = HttpClientRequest.post(url).pipe(
          HttpClientRequest.setHeader("accept", "application/json, text/event-stream"),
          HttpClientRequest.bodyUnsafeJson({
            jsonrpc: "2.0",
            id: 1,
            method: "tools/call",
            params: { name: tool.value, arguments: parsed }
          })
        )
      }
      const unpaid = yield* client.execute(request)
      const demand = demandOf(unpaid)
      if (Option.isNone(demand)) {
        yield* step("free", `status ${unpaid.status}, no payment asked`)
        yield* Console.log(yield* bodyOf(unpaid))
        return
      }
      yield* Effect.ignore(unpaid.text)
      const required = yield* Effect.mapError(
        X402.PaymentRequiredHeader.decode(demand.value),
        (error) => new CliError({ message: `the agent's payment-required header is not x402: ${error.message}` })
      )
      const accepted = required.accepts[0]
      if (accepted === undefined) return yield* new CliError({ message: "the agent accepts no plan" })
      const agent = accepted.extra?.agentId !== undefined ? ` for agent ${accepted.extra.agentId}` : ""
      yield* step(
        "402",
        `status ${unpaid.status}: plan ${accepted.planId} (${accepted.scheme} on ${accepted.network})${agent}`
      )
      const { balance: credits } = yield* subscriber.balance(accepted.planId)
      yield* step("balance", `${credits} credits on plan ${accepted.planId}`)
      const token = yield* subscriber.accessToken({
        planId: accepted.planId,
        agentId: accepted.extra?.agentId,
        scheme: accepted.scheme as X402.Scheme,
        network: accepted.network,
        delegationId: Option.getOrUndefined(delegation)
      })
      yield* step(
        "token",
        `minted for plan ${accepted.planId}, fingerprint ${Paywall.fingerprint(token)} (never shown)`
      )
      const paid = yield* client.execute(
        HttpClientRequest.setHeader(request, X402.PAYMENT_SIGNATURE_HEADER, Redacted.value(token))
      )
      const receiptHeader = paid.headers[X402.PAYMENT_RESPONSE_HEADER]
      const receipt = receiptHeader !== undefined ? X402.SettleResponseHeader.decodeEither(receiptHeader) : undefined
      const body = yield* bodyOf(paid)
      if (receipt === undefined || Either.isLeft(receipt) || !receipt.right.success || Option.isSome(demandOf(paid))) {
        yield* step("refused", `status ${paid.status}`)
        yield* Console.log(body)
        return yield* new CliError({
          message: "the agent did not accept the payment; nothing was charged by this call"
        })
      }
      yield* step("paid", `status ${paid.status}`)
      yield* Console.log(body)
      yield* step(
        "receipt",
        `${
          receipt.right.creditsRedeemed ?? "?"
        } credit(s) redeemed, tx ${receipt.right.transaction} on ${receipt.right.network}` +
          (receipt.right.remainingBalance !== undefined ? `, ${receipt.right.remainingBalance} left` : "")
      )
    })
).pipe(
  Command.withDescription("Call an x402 agent and pay for it, step by step: 402 → balance → token → call → receipt"),
  Command.provide(SubscriberLive)
)

/**
 * The `effect-x402` command with its subcommands.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("effect-x402").pipe(
  Command.withDescription("x402 payments in Nevermined credits, from the terminal"),
  Command.withSubcommands([decode, pay, balance])
)

/**
 * Runs the command line (`process.argv` shape: the first two entries are skipped).
 *
 * @since 0.1.0
 * @category running
 */
export const run = Command.run(command, { name: "effect-x402", version: "0.1.0" })
