/**
 * `pnpm --filter @effect-x402/example-hono start`: the paid Hono app on Node, charging through the
 * live Nevermined facilitator (`NVM_API_KEY`, `NVM_ENVIRONMENT`, `NVM_PLAN_ID`; `PORT`, default 3000).
 */
import { Nevermined } from "@effect-x402/core"
import { FetchHttpClient } from "@effect/platform"
import { serve } from "@hono/node-server"
import * as Layer from "effect/Layer"
import { paid } from "./app.js"

const planId = process.env.NVM_PLAN_ID
if (planId === undefined || planId === "") throw new Error("NVM_PLAN_ID is not set: the plan your callers pay with")
const server = paid(planId, Nevermined.layerConfig().pipe(Layer.provide(FetchHttpClient.layer)))
serve({ fetch: server.fetch, port: Number(process.env.PORT ?? 3000), hostname: "127.0.0.1" }, (info) => {
  console.log(`paid Hono app on http://127.0.0.1:${info.port}`)
})
