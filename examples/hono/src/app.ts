/**
 * A Hono app with paid routes: the app itself knows nothing of payments; `paid` puts the route
 * table's paywall in front of its `fetch`, the way `@x402/hono`'s route config does.
 */
import { type Facilitator, WebPaywall } from "@effect-x402/core"
import type * as Layer from "effect/Layer"
import { Hono } from "hono"

/** The app: a free health check, a paid forecast, and a report whose price depends on its length. */
export const app = new Hono()
  .get("/health", (c) => c.json({ ok: true }))
  .get("/weather/:city", (c) => c.json({ city: c.req.param("city"), forecast: "Sunny, 21°C" }))
  .post("/reports", async (c) => {
    const { days } = await c.req.json<{ days?: number }>()
    const n = Math.min(Math.max(Math.trunc(days ?? 1), 1), 7)
    // The handler's own word on the price (verified up to the route's `credits`): settled instead.
    c.header("X-Credits-To-Charge", String(n))
    return c.json({ days: Array.from({ length: n }, (_, i) => `day ${i + 1}: Sunny`) })
  })

/** Routes to prices: one paywall per route pattern. Unlisted routes are free. */
export const routes = (planId: string): WebPaywall.Routes => ({
  "GET /weather/:city": { planId, credits: 1, description: "Tomorrow's weather in a city" },
  "POST /reports": { planId, credits: 7, description: "A report of up to 7 days (1 credit a day)" }
})

/** The paid app as a Web-standard handler, for `@hono/node-server`, Bun, Deno or Workers. */
export const paid = <E>(planId: string, facilitator: Layer.Layer<Facilitator.Facilitator, E>) => {
  const paywall = WebPaywall.routes(routes(planId), facilitator)
  return {
    fetch: (request: Request) => paywall.handle(request, (req) => app.fetch(req)),
    dispose: paywall.dispose
  }
}
