/**
 * The agent as AgentCore Runtime runs it: port 8080 on every interface, paid through the live
 * Nevermined backend. Needs `NVM_API_KEY` (the agent owner's key) and `NVM_PLAN_ID`; optional
 * `NVM_AGENT_ID`, `NVM_ENVIRONMENT`, `NVM_BACKEND_URL`, `PORT`.
 */
import { Nevermined } from "@effect-x402/core"
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Config, Layer } from "effect"
import { createServer } from "node:http"
import * as Agent from "./Agent.js"

const FacilitatorLive = Nevermined.layerConfig().pipe(Layer.provide(FetchHttpClient.layer))

const ServerLive = NodeHttpServer.layerConfig(createServer, {
  port: Config.integer("PORT").pipe(Config.withDefault(8080)),
  host: Config.succeed("0.0.0.0")
})

Agent.layerConfig.pipe(
  HttpServer.withLogAddress,
  Layer.provide(FacilitatorLive),
  Layer.provide(ServerLive),
  Layer.launch,
  NodeRuntime.runMain
)
