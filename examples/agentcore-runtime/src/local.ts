/**
 * The agent on your machine, paid against a local fake Nevermined backend (`FakeNevermined` from
 * `@effect-x402/testing`) with a funded subscriber: no account needed. It prints an access token
 * and the commands to try it.
 */
import { Nevermined } from "@effect-x402/core"
import { FakeNevermined } from "@effect-x402/testing"
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer } from "effect"
import { createServer } from "node:http"
import * as Agent from "./Agent.js"

const PLAN_ID = "plan-local"
const AGENT_ID = "agent-local"

const program = Effect.gen(function*() {
  const fake = yield* FakeNevermined.make()
  fake.ledger.addPlan({ planId: PLAN_ID, agentId: AGENT_ID })
  fake.ledger.fund(fake.subscriber, PLAN_ID, 100)
  const token = fake.ledger.mintToken({ planId: PLAN_ID, subscriber: fake.subscriber, agentId: AGENT_ID })
  const port = yield* Config.integer("PORT").pipe(Config.withDefault(8080))

  yield* Effect.logInfo([
    `agent on http://127.0.0.1:${port}, fake Nevermined on ${fake.url}`,
    `subscriber ${fake.subscriber} has 100 credits on ${PLAN_ID}; an access token for it:`,
    token,
    `try: curl -i -X POST http://127.0.0.1:${port}/invocations -H 'content-type: application/json' ` +
    `-H 'payment-signature: ${token}' -d '{"prompt":"hello"}'`
  ].join("\n"))

  return yield* Layer.launch(
    Agent.layer({ planId: PLAN_ID, agentId: AGENT_ID }).pipe(
      HttpServer.withLogAddress,
      Layer.provide(Nevermined.layer({ apiKey: fake.apiKey, backendUrl: fake.url })),
      Layer.provide(FetchHttpClient.layer),
      Layer.provide(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" }))
    )
  )
})

program.pipe(Effect.scoped, NodeRuntime.runMain)
