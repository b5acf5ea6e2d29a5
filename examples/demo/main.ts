/**
 * `pnpm demo`: the whole x402 story on your machine, nothing to sign up for.
 *
 * It starts, on 127.0.0.1, a fake Nevermined backend (a plan, an agent, a subscriber with 12
 * credits), a local AgentCore Gateway, and the example paid agent (`agent.ts`) behind it; then the
 * client agent (`client.ts`) lists the tools, meets the 402, pays, and runs out of credits.
 *
 *   pnpm demo                  the decorator flavour (`requiresPayment`: one Lambda)
 *   pnpm demo --interceptor    gateway → interceptor REQUEST → target → interceptor RESPONSE
 *   pnpm demo --http-target    the same interceptor in front of an HTTP target (the agent served as
 *                              AgentCore Runtime serves one), `research` streamed over SSE
 *   pnpm demo --json           one JSON object per step
 *
 * With `NVM_API_KEY` and `NVM_PLAN_ID` set (and optionally `NVM_AGENT_ID`, `NVM_SUBSCRIBER_API_KEY`,
 * `NVM_ENVIRONMENT`, `NVM_DELEGATION_ID`), the same agent and client run against the live Nevermined
 * sandbox instead: only the layers change. Add `--exhaust` to spend the whole balance there too.
 *
 * Exits 0 when every step behaved, 1 otherwise (with the step and what went wrong).
 */
import { Nevermined, Subscriber } from "@effect-x402/core"
import { FakeNevermined, LocalGateway } from "@effect-x402/testing"
import { FetchHttpClient } from "@effect/platform"
import { Cause, Config, Duration, Effect, Either, Exit, Layer, Option, Redacted, Schema, type Scope } from "effect"
import * as Path from "node:path"
import * as Url from "node:url"
import { paidAgent, paymentInterceptor, runtimeTarget, toolServer } from "./agent.js"
import { clientAgent, Misbehaved, Story } from "./client.js"

/** How the demo runs. */
export interface DemoOptions {
  readonly flavour: "decorator" | "interceptor" | "http-target"
  readonly json: boolean
  /** Spend the whole balance and show the refusal. Default: on the fake backend only. */
  readonly exhaust?: boolean | undefined
  /** Where lines go. Default stdout. */
  readonly write?: ((line: string) => void) | undefined
  /** Use the live sandbox when `NVM_API_KEY` is set (default), or always the local fake (`false`). */
  readonly live?: boolean | undefined
  /** Where the agent's warnings and the failure line go. Default stderr. */
  readonly errors?: ((line: string) => void) | undefined
  /** Called with the fake backend once it is seeded (tests use it to inject faults). */
  readonly onFakeBackend?: ((fake: FakeNevermined.FakeNevermined.Service) => void) | undefined
}

const PLAN_ID = "plan-demo"
const AGENT_ID = "agent-demo"
const CREDITS = 12

/** The live sandbox, when `NVM_API_KEY` is set. */
const LiveConfig = Config.all({
  apiKey: Config.redacted("NVM_API_KEY"),
  planId: Config.string("NVM_PLAN_ID"),
  agentId: Config.option(Config.string("NVM_AGENT_ID")),
  subscriberApiKey: Config.option(Config.redacted("NVM_SUBSCRIBER_API_KEY")),
  delegationId: Config.option(Config.string("NVM_DELEGATION_ID"))
})

/** Which environment and backend a key (and `NVM_ENVIRONMENT`, `NVM_BACKEND_URL`) points at, for the story. */
const where = (apiKey: Redacted.Redacted<string>): string => {
  const parsed = Nevermined.parseApiKey(apiKey)
  if (Either.isLeft(parsed)) return "(the API key does not parse; the agent will say why)"
  const environment = process.env.NVM_ENVIRONMENT
  const resolved = Nevermined.resolveEnvironment({
    apiKey: parsed.right,
    environment: Schema.is(Nevermined.Environment)(environment) ? environment : undefined,
    backendUrl: process.env.NVM_BACKEND_URL
  })
  return `${resolved.environment} at ${resolved.backendUrl}`
}

/** The backend: a seeded fake on loopback, or the live sandbox. The agent and client do not know which. */
const backend = (options: DemoOptions) =>
  Effect.gen(function*() {
    const live = options.live === false ? undefined : yield* Effect.catchAll(
      Effect.flatMap(Config.option(Config.redacted("NVM_API_KEY")), (key) =>
        Option.isSome(key) ? LiveConfig : Effect.succeed(undefined)),
      // NVM_API_KEY without a plan is a mistake to report, not a reason to fall back to the fake.
      (error) =>
        Effect.fail(`NVM_API_KEY is set, so the demo runs live, but: ${error.message}`)
    )
    if (live !== undefined) {
      return {
        label: `Nevermined ${where(live.apiKey)}, from NVM_API_KEY: plan ${live.planId}`,
        planId: live.planId,
        agentId: Option.getOrUndefined(live.agentId),
        delegationId: Option.getOrUndefined(live.delegationId),
        facilitator: Nevermined.layerConfig(),
        subscriber: Subscriber.layerConfig({ apiKey: Option.getOrElse(live.subscriberApiKey, () => live.apiKey) }),
        fake: undefined
      }
    }
    const fake = yield* FakeNevermined.make()
    fake.ledger.addPlan({ planId: PLAN_ID, agentId: AGENT_ID, name: "Demo weather plan" })
    fake.ledger.fund(fake.subscriber, PLAN_ID, CREDITS)
    options.onFakeBackend?.(fake)
    return {
      label: `FakeNevermined on ${fake.url}: plan ${PLAN_ID}, agent ${AGENT_ID}, ` +
        `subscriber ${fake.subscriber.slice(0, 10)}… with ${CREDITS} credits`,
      planId: PLAN_ID,
      agentId: AGENT_ID,
      delegationId: undefined,
      // The live layers, pointed at the fake: the same code paths as against the sandbox.
      facilitator: Nevermined.layer({ apiKey: fake.apiKey, backendUrl: fake.url }),
      subscriber: Subscriber.layer({ apiKey: Redacted.make(fake.subscriberApiKey), backendUrl: fake.url }),
      fake
    }
  })

/** Prints the steps: a readable line each, or one JSON object per step. */
const makeStory = (options: DemoOptions, gateway: () => LocalGateway.LocalGateway.Service | undefined) => {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`))
  let pending: Record<string, unknown> | undefined
  let seen = 0
  let last = "setup"
  const flush = () => {
    if (pending !== undefined) write(JSON.stringify(pending))
    pending = undefined
  }
  // The gateway's work since the last step: which Lambda phases ran, and where a call stopped.
  const route = (): ReadonlyArray<string> => {
    const invocations = gateway()?.invocations ?? []
    const fresh = invocations.slice(seen)
    seen = invocations.length
    const calls: Array<Array<string>> = []
    for (const invocation of fresh) {
      if (invocation._tag === "Lambda" && invocation.phase === "REQUEST") calls.push([])
      const label = invocation._tag === "Target"
        ? "target"
        : gateway()?.mode === "decorator"
        ? "Lambda"
        : streamed(invocation.event)
        ? `${invocation.phase} (streamed)`
        : invocation.phase
      calls[calls.length - 1]?.push(label)
      // The REQUEST phase's 402 (a RESPONSE phase that runs after it passes the same answer on).
      const answer = invocation._tag === "Lambda" && invocation.phase === "REQUEST"
        ? outputHeaders(invocation.output)
        : undefined
      if (answer?.["payment-required"] !== undefined) calls[calls.length - 1]?.push("402")
    }
    return repeated(calls.map((call) => call.join(" → ")))
  }
  const step = (name: string, text: string, data: Record<string, unknown> = {}) =>
    Effect.sync(() => {
      const via = name === "" ? [] : route()
      if (name !== "") last = name
      if (options.json) {
        if (name === "" && pending !== undefined) {
          pending = { ...pending, ...data, text: [pending.text, text].join("; ") }
          return
        }
        flush()
        pending = { step: name, ok: true, text, ...data, ...(via.length > 0 ? { gateway: via } : {}) }
        return
      }
      write(`${name.padEnd(10)} ${text}`)
      if (via.length > 0 && gateway()?.mode !== "decorator") write(`${"".padEnd(10)} gateway: ${via.join(" | ")}`)
    })
  return { step, flush, write, last: () => last }
}

// `a | b | a | b` reads better as `2 × (a | b)`.
const repeated = (calls: ReadonlyArray<string>): ReadonlyArray<string> => {
  for (let size = 1; size <= calls.length / 2; size++) {
    if (calls.length % size !== 0) continue
    const block = calls.slice(0, size)
    if (calls.every((call, i) => call === block[i % size])) {
      return [`${calls.length / size} × (${block.join(" | ")})`]
    }
  }
  return calls
}

/** Whether a RESPONSE event is one event of a streamed answer (an HTTP target answering SSE). */
const streamed = (event: unknown): boolean =>
  (event as { http?: { gatewayResponse?: { isStreamingResponse?: boolean } | null } } | undefined)?.http
    ?.gatewayResponse?.isStreamingResponse === true

type Flavoured = { transformedGatewayResponse?: { headers?: Record<string, unknown> } }

const outputHeaders = (output: unknown): Record<string, unknown> | undefined => {
  const flavoured = output as { mcp?: Flavoured; http?: Flavoured } | undefined
  return (flavoured?.mcp ?? flavoured?.http)?.transformedGatewayResponse?.headers
}

/** The demo as an Effect: servers live in the scope and close with it. */
export const demo = (options: DemoOptions): Effect.Effect<void, Misbehaved, Scope.Scope> => {
  let lastStep = () => "setup"
  return Effect.gen(function*() {
    const started = Date.now()
    // Filled in as things start: the story reads the gateway's work, the gateway calls the agent.
    const running: {
      gateway?: LocalGateway.LocalGateway.Service
      agent?: ReturnType<typeof paidAgent> | ReturnType<typeof paymentInterceptor>
    } = {}
    const story = makeStory(options, () => running.gateway)
    lastStep = story.last
    yield* Effect.addFinalizer(() => Effect.sync(story.flush))
    const say = (name: string, text: string, data?: Record<string, unknown>) => story.step(name, text, data)

    const setup = yield* backend(options)
    yield* say("backend", setup.label)
    const facilitator = setup.facilitator.pipe(Layer.provide(FetchHttpClient.layer))

    // The gateway calls whichever Lambda the flavour uses; its URL is what the agent advertises.
    const invoke: LocalGateway.LambdaHandler = (event, context) => running.agent!(event, context)
    const gateway = yield* LocalGateway.make(
      options.flavour === "decorator"
        ? { handler: invoke }
        : options.flavour === "interceptor"
        ? { interceptor: invoke, target: toolServer }
        : { interceptor: invoke, httpTarget: (yield* runtimeTarget).url }
    )
    const config = {
      planId: setup.planId,
      agentId: setup.agentId,
      endpoint: gateway.url,
      layer: facilitator,
      logTo: options.errors
    }
    const agent = options.flavour === "decorator" ? paidAgent(config) : paymentInterceptor(config)
    running.gateway = gateway
    running.agent = agent
    yield* Effect.addFinalizer(() => Effect.promise(() => agent.runtime.dispose()))
    yield* say(
      "gateway",
      options.flavour === "decorator"
        ? `LocalGateway on ${gateway.url} → the agent's requiresPayment Lambda`
        : options.flavour === "interceptor"
        ? `LocalGateway on ${gateway.url} → interceptor Lambda (REQUEST, RESPONSE) around the tool server`
        : `LocalGateway on ${gateway.url} → interceptor Lambda (REQUEST, RESPONSE, http events) around the ` +
          `agent's HTTP server (AgentCore Runtime style: GET /ping, POST /mcp; research streamed)`,
      { url: gateway.url, flavour: options.flavour }
    )

    const totals = yield* clientAgent({
      url: gateway.url,
      delegationId: setup.delegationId,
      exhaust: options.exhaust ?? setup.fake !== undefined
    }).pipe(
      Effect.provide(setup.subscriber),
      Effect.provide(FetchHttpClient.layer),
      Effect.provideService(Story, { step: story.step })
    )

    // The fake's own ledger, read directly: every receipt the client checked is a real settlement.
    if (setup.fake !== undefined) {
      const ledger = setup.fake.ledger
      const burned = ledger.settlements.reduce((sum, settlement) => sum + settlement.credits, 0)
      const ok = ledger.settlements.length === totals.paidCalls && burned === totals.credits
      if (!ok) {
        return yield* new Misbehaved({
          step: "audit",
          what: `the ledger has ${ledger.settlements.length} settlements (${burned} credits), ` +
            `the client paid ${totals.paidCalls} calls (${totals.credits} credits)`
        })
      }
      yield* say(
        "audit",
        `ledger: ${ledger.settlements.length} settlements, ${burned} credits burned: exactly what the receipts said`,
        { settlements: ledger.settlements.length, credits: burned }
      )
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    yield* say("ok", `every step behaved (${options.flavour} flavour, ${seconds} s)`, { seconds: Number(seconds) })
  }).pipe(
    // Say where it went wrong: a failure that is not a step's own check happened after the last step shown.
    Effect.mapError((error) =>
      error instanceof Misbehaved ? error : new Misbehaved({ step: `after ${lastStep()}`, what: messageOf(error) })
    )
  )
}

const messageOf = (error: unknown): string =>
  typeof error === "string"
    ? error
    : typeof error === "object" && error !== null && "message" in error
    ? String(error.message)
    : String(error)

/** Runs the demo and answers the exit code. Never throws. */
export const run = async (options: DemoOptions): Promise<number> => {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`))
  const exit = await Effect.runPromiseExit(
    demo(options).pipe(
      Effect.scoped,
      Effect.timeoutFail({ duration: Duration.seconds(50), onTimeout: () => "the demo did not finish within 50 s" })
    )
  )
  if (Exit.isSuccess(exit)) return 0
  const failure = Cause.failureOption(exit.cause)
  const message = Option.isSome(failure) ? messageOf(failure.value) : Cause.pretty(exit.cause)
  if (options.json) write(JSON.stringify({ step: "failed", ok: false, error: message }))
  const errors = options.errors ?? ((line: string) => process.stderr.write(`${line}\n`))
  errors(`✗ demo failed: ${message}`)
  return 1
}

/** What `pnpm demo --help` prints. */
export const USAGE = `Usage: pnpm demo [--interceptor | --http-target] [--json] [--exhaust]

Runs the whole x402 story on this machine: a fake Nevermined backend, a local AgentCore Gateway and
a paid agent on 127.0.0.1; a client lists the tools, meets the 402, pays, and runs out of credits.

  --interceptor   the two-phase interceptor flavour (gateway -> REQUEST -> target -> RESPONSE);
                  default: the decorator flavour (requiresPayment, one Lambda)
  --http-target   the interceptor in front of an HTTP target (the agent as AgentCore Runtime
                  serves it, over HTTP; research answered as an SSE stream)
  --json          one JSON object per step instead of text
  --exhaust       against the live sandbox, spend the whole balance too (always done locally)
  -h, --help      this text

With NVM_API_KEY and NVM_PLAN_ID set (optionally NVM_AGENT_ID, NVM_SUBSCRIBER_API_KEY,
NVM_ENVIRONMENT, NVM_DELEGATION_ID) the same agent and client run against the live Nevermined
sandbox instead. Exits 0 when every step behaved, 1 otherwise, 2 on a usage error.
`

const FLAGS = new Set(["--interceptor", "--http-target", "--json", "--exhaust"])

/**
 * Reads the command line: the options, the help text, or a usage error naming the unknown flag.
 */
export const parseArgs = (
  args: ReadonlyArray<string>
): { readonly _tag: "Run"; readonly options: DemoOptions } | { readonly _tag: "Help" } | {
  readonly _tag: "Usage"
  readonly message: string
} => {
  if (args.includes("--help") || args.includes("-h")) return { _tag: "Help" }
  const unknown = args.filter((arg) => !FLAGS.has(arg))
  if (unknown.length > 0) {
    return { _tag: "Usage", message: `unknown argument${unknown.length > 1 ? "s" : ""}: ${unknown.join(" ")}` }
  }
  if (args.includes("--interceptor") && args.includes("--http-target")) {
    return { _tag: "Usage", message: "--interceptor and --http-target are two flavours: choose one" }
  }
  return {
    _tag: "Run",
    options: {
      flavour: args.includes("--interceptor")
        ? "interceptor"
        : args.includes("--http-target")
        ? "http-target"
        : "decorator",
      json: args.includes("--json"),
      exhaust: args.includes("--exhaust") ? true : undefined
    }
  }
}

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === Url.fileURLToPath(import.meta.url)) {
  const parsed = parseArgs(process.argv.slice(2))
  if (parsed._tag === "Help") {
    process.stdout.write(USAGE)
  } else if (parsed._tag === "Usage") {
    process.stderr.write(`demo: ${parsed.message}\n\n${USAGE}`)
    process.exitCode = 2
  } else {
    run(parsed.options).then((code) => {
      process.exitCode = code
    })
  }
}
