/**
 * x402 for Web-standard servers: a `(Request) => Promise<Response>` paywall for Hono, Bun, Deno,
 * Cloudflare Workers and anything else that speaks the Fetch API, with a table of routes to prices
 * like `@x402/hono`'s route config. Built on `HttpPaywall.middleware`, so the answers, receipts,
 * settle rules and redaction are the same as for `@effect/platform` servers.
 *
 * @since 0.2.0
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type { Facilitator } from "./Facilitator.js"
import * as HttpPaywall from "./HttpPaywall.js"

/**
 * What runs once a call is paid: the Web handler (or the framework's `next`).
 *
 * @since 0.2.0
 * @category models
 */
export type Next = (request: Request) => Response | Promise<Response>

/**
 * A table of routes to prices: `"METHOD /path"` or `"/path"` (any method) to the options of that
 * route's paywall. A path is literal, with `:name` for one segment and a final `*` for the rest.
 *
 * @example
 * ```ts
 * const routes: WebPaywall.Routes = {
 *   "GET /weather": { planId: "plan-1", credits: 1 },
 *   "POST /reports/*": { planId: "plan-1", credits: 5 }
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Routes<R = never> {
  readonly [route: string]: HttpPaywall.Options<R>
}

/**
 * A Web-standard paywall: `handle(request, next)` verifies, runs `next`, settles and answers;
 * `dispose` releases the runtime (the facilitator's HTTP pool) when the server stops.
 *
 * @since 0.2.0
 * @category models
 */
export interface WebPaywall {
  readonly handle: (request: Request, next: Next) => Promise<Response>
  readonly dispose: () => Promise<void>
}

class CurrentNext extends Context.Tag("@effect-x402/core/WebPaywall/CurrentNext")<CurrentNext, Next>() {}

// The paid work: the caller's handler on the very Request that came in (its body unread).
const forward: HttpApp.Default<never, CurrentNext> = Effect.flatMap(
  Effect.zip(CurrentNext, HttpServerRequest.HttpServerRequest),
  ([next, request]) =>
    Effect.map(
      Effect.promise(() => Promise.resolve(next(request.source as Request))),
      HttpServerResponse.fromWeb
    )
)

interface Route {
  readonly method: string | undefined
  readonly segments: ReadonlyArray<string>
  readonly rest: boolean
}

/**
 * The path as the paywall compares it: percent-decoded, dot segments resolved, empty segments
 * dropped, lower case. Looser than any router, on purpose: a variant that a router might still send
 * to a paid handler (`//Weather/`, `/weather%2f`, `/./weather`) matches the paid route too.
 */
const normalisedSegments = (pathname: string): ReadonlyArray<string> => {
  let decoded = pathname
  try {
    decoded = decodeURIComponent(pathname)
  } catch {
    // an invalid escape stays as it is
  }
  const segments: Array<string> = []
  for (const segment of decoded.toLowerCase().split(/[/\\]/)) {
    if (segment === "" || segment === ".") continue
    if (segment === "..") segments.pop()
    else segments.push(segment)
  }
  return segments
}

const parseRoute = (key: string): Route => {
  const match = /^(?:([A-Za-z]+)\s+)?(\/\S*)$/.exec(key.trim())
  if (match === null) {
    throw new RangeError(`WebPaywall route "${key}" is not "METHOD /path" or "/path"`)
  }
  const segments = normalisedSegments(match[2])
  const rest = segments.at(-1) === "*"
  return { method: match[1]?.toUpperCase(), segments: rest ? segments.slice(0, -1) : segments, rest }
}

const matches = (route: Route, method: string, segments: ReadonlyArray<string>): boolean => {
  // HEAD reaches GET handlers in most routers: it is priced like GET.
  if (route.method !== undefined && route.method !== method && !(route.method === "GET" && method === "HEAD")) {
    return false
  }
  if (route.rest ? segments.length < route.segments.length : segments.length !== route.segments.length) return false
  return route.segments.every((part, i) => part.startsWith(":") || part === segments[i])
}

/**
 * A paywall over a table of routes: a request matching a route (the first in table order) is paid
 * for at that route's price, any other request goes to `next` free, as in `@x402/hono`. Routes
 * match looser than routers do (case, repeated or trailing slashes, percent-escapes, dot segments),
 * so that no spelling of a paid path reaches its handler unpaid.
 *
 * Throws a `RangeError` at construction on a route or options that can never work.
 *
 * @example
 * ```ts
 * import { Nevermined, WebPaywall } from "@effect-x402/core"
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 *
 * const paywall = WebPaywall.routes(
 *   { "GET /weather": { planId: process.env.NVM_PLAN_ID!, credits: 1 } },
 *   Nevermined.layerConfig().pipe(Layer.provide(FetchHttpClient.layer))
 * )
 * export default { fetch: (request: Request) => paywall.handle(request, (req) => app.fetch(req)) }
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const routes = <R, E>(table: Routes<R>, layer: Layer.Layer<Facilitator | R, E>): WebPaywall => {
  const compiled = Object.entries(table).map(([key, options]) => ({
    ...parseRoute(key),
    app: HttpPaywall.middleware(options)(forward)
  }))
  const runtime = ManagedRuntime.make(layer)
  type Handler = (request: Request, context: Context.Context<never>) => Promise<Response>
  // One Web handler per route, made by the first paid call once the runtime (facilitator, HTTP pool)
  // is built, and reused.
  let handlers: Promise<ReadonlyArray<Handler>> | undefined
  const handlersOf = () =>
    handlers ??= runtime.runtime().then((built) => {
      const toWeb = HttpApp.toWebHandlerRuntime(built)
      // `CurrentNext` arrives through the per-request context below.
      return compiled.map((route) => toWeb(route.app as HttpApp.Default<never, Facilitator | R>))
    })
  return {
    handle: async (request, next) => {
      const segments = normalisedSegments(new URL(request.url).pathname)
      const method = request.method.toUpperCase()
      const index = compiled.findIndex((candidate) => matches(candidate, method, segments))
      if (index === -1) return next(request)
      const handler = (await handlersOf())[index]
      return handler(request, Context.make(CurrentNext, next) as Context.Context<never>)
    },
    dispose: () => runtime.dispose()
  }
}

/**
 * One price for every request: the Web handler `(Request) => Promise<Response>` of a paid
 * `handler`, e.g. `export default { fetch: WebPaywall.toFetchHandler(options, layer)(handler) }`
 * on Bun, Deno or Cloudflare Workers.
 *
 * @since 0.2.0
 * @category constructors
 */
export const toFetchHandler = <R, E>(options: HttpPaywall.Options<R>, layer: Layer.Layer<Facilitator | R, E>) => {
  const paywall = routes({ "/*": options }, layer)
  return (handler: Next): ((request: Request) => Promise<Response>) & { readonly dispose: () => Promise<void> } =>
    Object.assign((request: Request) => paywall.handle(request, handler), { dispose: paywall.dispose })
}
