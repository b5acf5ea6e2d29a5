/**
 * Section 3: over the wire. A paid agent (`httpHandler` with the live Nevermined layer over the
 * Lambda default `FetchHttpClient`) behind a Node HTTP server on loopback, against `FakeNevermined`:
 * calls per second and latency at several concurrencies, and the TCP connections the agent opens to
 * the backend per 1,000 paid calls. Baselines in the same run: a hand-written agent making the same
 * two backend calls with `fetch`, and the bare handler (no payment, no backend).
 */
import * as Nevermined from "@effect-x402/core/Nevermined"
import * as HttpHandler from "@effect-x402/lambda/HttpHandler"
import * as FakeNevermined from "@effect-x402/testing/FakeNevermined"
import { Ledger } from "@effect-x402/testing/TestFacilitator"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type { APIGatewayProxyEventV2 } from "aws-lambda"
import * as Layer from "effect/Layer"
import * as DiagnosticsChannel from "node:diagnostics_channel"
import * as Http from "node:http"
import type * as Net from "node:net"
import { AGENT_ID, lambdaContext, NETWORK, type PlainFacilitator, PLAN_ID } from "./fixtures.js"
import * as Handwritten from "./handwritten.js"
import { gc, type Stats, statsOf } from "./harness.js"
import * as Child from "./wireChild.js"
import * as WireFloor from "./wireFloor.js"

// Server-side accepted connections, by local port: the backend's count is the agent's pool at work.
const accepted = new Map<number, number>()
DiagnosticsChannel.subscribe("net.server.socket", (message) => {
  const port = (message as { readonly socket: Net.Socket }).socket.localPort
  if (port !== undefined) accepted.set(port, (accepted.get(port) ?? 0) + 1)
})
const acceptedOn = (port: number) => accepted.get(port) ?? 0

const ROUTE_RESULT = { statusCode: 200, headers: { "content-type": "application/json" }, body: "{\"answer\":42}" }
const route = async (_event: unknown) => ROUTE_RESULT

type LambdaHttpHandler = (event: APIGatewayProxyEventV2) => Promise<unknown>

/** The v2 event API Gateway / a Function URL would make of an HTTP request. */
export const httpEvent = (
  method: string,
  target: string,
  headers: Record<string, string>,
  body: string
): APIGatewayProxyEventV2 => {
  const url = new URL(target, "http://127.0.0.1")
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    requestContext: {
      accountId: "123456789012",
      apiId: "local",
      domainName: "agent.local",
      domainPrefix: "agent",
      http: { method, path: url.pathname, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "" },
      requestId: "r",
      routeKey: "$default",
      stage: "$default",
      time: "",
      timeEpoch: 0
    },
    body,
    isBase64Encoded: false
  }
}

/** Serves a v2-event handler over Node HTTP, as API Gateway / a Function URL would call it. */
const serve = (handler: LambdaHttpHandler): Promise<{ readonly server: Http.Server; readonly port: number }> =>
  new Promise((resolve) => {
    const server = Http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        const headers: Record<string, string> = {}
        for (const [name, value] of Object.entries(req.headers)) {
          if (typeof value === "string") headers[name] = value
        }
        const event = httpEvent(req.method ?? "GET", req.url ?? "/", headers, Buffer.concat(chunks).toString("utf8"))
        handler(event).then(
          (result) => {
            const r = result as { statusCode: number; headers?: Record<string, string>; body?: string }
            res.writeHead(r.statusCode, r.headers)
            res.end(r.body ?? "")
          },
          () => {
            res.writeHead(500)
            res.end()
          }
        )
      })
    })
    // API Gateway keeps client connections open far longer than Node's 5 s default; a candidate idle
    // while the others take their turn must not pay for reconnecting.
    server.keepAliveTimeout = 60_000
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      resolve({ server, port: typeof address === "object" && address !== null ? address.port : 0 })
    })
  })

const fetchFacilitator = (url: string, apiKey: string): PlainFacilitator => {
  const headers = {
    accept: "application/json",
    "content-type": "application/json",
    authorization: `Bearer ${apiKey}`,
    "nevermined-version": "1.1"
  }
  // Each backend call bounded in time, as any agent in production bounds it (ours does: the live
  // layer's verify / settle timeouts): an `AbortSignal.timeout`, the hand-written way to do it.
  const post = async <A>(path: string, body: unknown): Promise<A> => {
    const response = await fetch(url + path, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(path.endsWith("settle") ? 30_000 : 10_000)
    })
    if (!response.ok) throw new Error(`backend answered ${response.status}`)
    return await response.json() as A
  }
  return {
    verify: (request) =>
      post("/api/v1/x402/verify", {
        paymentRequired: request.paymentRequired,
        x402AccessToken: request.token,
        maxAmount: request.maxAmount
      }),
    settle: (request) =>
      post("/api/v1/x402/settle", {
        paymentRequired: request.paymentRequired,
        x402AccessToken: request.token,
        maxAmount: request.maxAmount,
        agentRequestId: request.agentRequestId
      })
  }
}

export const OURS = "effect-x402 httpHandler, live layer (FetchHttpClient)"
export const HANDWRITTEN = "hand-written + fetch"
export const BARE = "bare handler (no payment, no backend)"
export const FLOOR = "Effect floor (fetch in Effect.async)"

export interface Setup {
  readonly name: string
  readonly port: number
  readonly backendPort: number | undefined
  readonly token: string
  readonly close: () => Promise<void>
}

export type Kind = "ours" | "handwritten" | "floor" | "bare"
export const NAMES: Record<Kind, string> = { ours: OURS, handwritten: HANDWRITTEN, floor: FLOOR, bare: BARE }

/** A fake backend with a funded plan and a token for it. */
export interface Backend {
  readonly url: string
  readonly apiKey: string
  readonly token: string
  readonly port: number
}

export const startBackend = async (): Promise<Backend & { readonly close: () => Promise<void> }> => {
  const ledger = new Ledger()
  const backend = await FakeNevermined.start({ ledger })
  ledger.addPlan({ planId: PLAN_ID, agentId: AGENT_ID })
  ledger.fund(backend.subscriber, PLAN_ID, 1_000_000_000)
  const token = ledger.mintToken({ planId: PLAN_ID, subscriber: backend.subscriber, agentId: AGENT_ID })
  return {
    url: backend.url,
    apiKey: backend.apiKey,
    token,
    port: Number(new URL(backend.url).port),
    close: () => backend.close()
  }
}

/**
 * An agent's handler of v2 events: ours, the hand-written one, the Effect floor (each against
 * `backend`), or the bare handler. `startAgent` serves it; `bench/src/ab.ts wire*` calls it in
 * process over a stub `fetch`.
 */
export const agentHandler = (
  kind: Kind,
  backend: { readonly url: string; readonly apiKey: string } | undefined
): { readonly handler: LambdaHttpHandler; readonly dispose: () => Promise<void> } => {
  let dispose: () => Promise<void> = async () => undefined
  let handler: LambdaHttpHandler = route
  if (kind === "ours" && backend !== undefined) {
    const paid = HttpHandler.httpHandler({
      planId: PLAN_ID,
      agentId: AGENT_ID,
      credits: 1,
      // As the Lambda default (`LambdaRuntime.defaultFacilitator`): the marked fetch client.
      layer: Nevermined.layer({ apiKey: backend.apiKey, backendUrl: backend.url }).pipe(
        // `BENCH_WIRE_CLIENT=platform`: the unmarked `FetchHttpClient.layer` (A/B of the lean path).
        Layer.provide(
          process.env["BENCH_WIRE_CLIENT"] === "platform" ? FetchHttpClient.layer : Nevermined.layerFetchClient
        )
      )
    })(route)
    handler = (event) => paid(event, lambdaContext)
    dispose = () => paid.runtime.dispose()
  } else if (kind === "handwritten" && backend !== undefined) {
    handler = Handwritten.http(
      { planIds: [PLAN_ID], agentId: AGENT_ID, endpoint: "", network: NETWORK, credits: 1 },
      fetchFacilitator(backend.url, backend.apiKey),
      route
    )
  } else if (kind === "floor" && backend !== undefined) {
    const floor = WireFloor.http(
      { planIds: [PLAN_ID], agentId: AGENT_ID, endpoint: "", network: NETWORK, credits: 1 },
      backend,
      route
    )
    handler = floor.handle
    dispose = floor.dispose
  }
  return { handler, dispose }
}

/** The agent's HTTP server: ours, the hand-written one, the Effect floor, or the bare handler. */
export const startAgent = async (
  kind: Kind,
  backend: { readonly url: string; readonly apiKey: string } | undefined
): Promise<{ readonly port: number; readonly close: () => Promise<void> }> => {
  const { dispose, handler } = agentHandler(kind, backend)
  const { port, server } = await serve(handler)
  return {
    port,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      await dispose()
    }
  }
}

/** Everything in this process (what `pnpm bench --profile wire` profiles). */
export const setup = async (kind: Kind): Promise<Setup> => {
  const backend = kind === "bare" ? undefined : await startBackend()
  const agent = await startAgent(kind, backend)
  return {
    name: NAMES[kind],
    port: agent.port,
    backendPort: backend?.port,
    token: backend?.token ?? "",
    close: async () => {
      await agent.close()
      await backend?.close()
    }
  }
}

/** The connections accepted on a local port of this process so far. */
export const acceptedConnections = acceptedOn

/** Sends `calls` paid POSTs with `concurrency` keep-alive connections; the latency of each, in ns. */
export const load = async (
  target: Setup,
  agent: Http.Agent,
  calls: number,
  concurrency: number
): Promise<{ readonly latencies: Array<number>; readonly wallNanos: number; readonly failures: number }> => {
  const latencies: Array<number> = []
  let failures = 0
  let next = 0
  const body = "{\"question\":\"life\"}"
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = process.hrtime.bigint()
      const req = Http.request({
        host: "127.0.0.1",
        port: target.port,
        method: "POST",
        path: "/agent",
        agent,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          ...(target.token.length > 0 ? { "payment-signature": target.token } : {})
        }
      }, (res) => {
        const paid = target.backendPort === undefined || typeof res.headers["payment-response"] === "string"
        if (res.statusCode !== 200 || !paid) failures++
        res.resume()
        res.on("end", () => {
          latencies.push(Number(process.hrtime.bigint() - t0))
          resolve()
        })
      })
      req.on("error", () => {
        failures++
        resolve()
      })
      req.end(body)
    })
  const worker = async () => {
    while (next < calls) {
      next++
      await one()
    }
  }
  const start = process.hrtime.bigint()
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { latencies, wallNanos: Number(process.hrtime.bigint() - start), failures }
}

export interface LevelResult {
  readonly concurrency: number
  readonly window: number
  readonly rows: ReadonlyArray<{
    readonly name: string
    readonly latency: Stats
    readonly callsPerSecond: number
    readonly calls: number
    readonly failures: number
    /** Connections the backend accepted during the first `window` paid calls (from a cold pool). */
    readonly backendConnectionsInWindow: number | undefined
    /** Connections the backend accepted over all calls. */
    readonly backendConnections: number | undefined
    /** Connections the load generator opened to the agent (keep-alive: the concurrency). */
    readonly clientConnections: number
    /** The agent process's CPU time (`process.cpuUsage`, user + system) per call, in µs. */
    readonly cpuMicrosPerCall: number
  }>
}

export interface WireOptions {
  readonly concurrencies: ReadonlyArray<number>
  /** The first round: this many calls per candidate in one go, connections counted (1,000 in full). */
  readonly window: number
  /** Rounds of `chunk` calls per candidate after the first. */
  readonly rounds: number
  readonly chunk: number
  readonly warmupCalls: number
}

/**
 * Runs the candidates in three kinds of processes: this one is the load generator; one child holds
 * the fake backends; each agent runs in a child of its own, whose CPU time per call is measured.
 */
export const wire = async (options: WireOptions): Promise<ReadonlyArray<LevelResult>> => {
  const kinds: ReadonlyArray<Kind> = ["ours", "handwritten", "floor", "bare"]
  const results: Array<LevelResult> = []
  const warm = options.warmupCalls
  for (const concurrency of options.concurrencies) {
    gc()
    const backends = await Child.spawn("backend")
    const made = await backends.ask<{ readonly backends: ReadonlyArray<Backend> }>({ cmd: "backends", count: 3 })
    // A backend per paying agent, so that each one's connections are counted on their own.
    const backendOf = (kind: Kind) =>
      kind === "ours"
        ? made.backends[0]
        : kind === "handwritten"
        ? made.backends[1]
        : kind === "floor"
        ? made.backends[2]
        : undefined
    const agents = await Promise.all(kinds.map(async (kind) => {
      const child = await Child.spawn("agent")
      const backend = backendOf(kind)
      const { port } = await child.ask<{ readonly port: number }>({ cmd: "start", kind, backend })
      return { kind, child, port, backend }
    }))
    const targets: Array<Setup> = agents.map(({ backend, child, kind, port }) => ({
      name: NAMES[kind],
      port,
      backendPort: backend?.port,
      token: backend?.token ?? "",
      close: () => child.close()
    }))
    const httpAgents = targets.map(() => new Http.Agent({ keepAlive: true, maxSockets: concurrency }))
    const latencies = targets.map(() => [] as Array<number>)
    const wall = targets.map(() => 0)
    const cpu = targets.map(() => 0)
    const failures = targets.map(() => 0)
    const inWindow: Array<number | undefined> = targets.map(() => undefined)
    const cpuOf = async (i: number) => (await agents[i].child.ask<{ readonly micros: number }>({ cmd: "cpu" })).micros
    const backendAccepted = async (port: number) =>
      (await backends.ask<{ readonly count: number }>({ cmd: "accepted", port })).count
    // Warm-up (JIT and module state) through a throwaway keep-alive pool, at most 8 connections.
    for (let i = 0; i < targets.length; i++) {
      const pool = new Http.Agent({ keepAlive: true, maxSockets: Math.min(8, concurrency) })
      await load(targets[i], pool, warm, Math.min(8, concurrency))
      pool.destroy()
    }
    // Round 0 is each candidate's first `window` paid calls in one go; the backend connections
    // counted then are all the agent's pool opened from cold (warm-up included). Later rounds
    // interleave shorter chunks.
    for (let round = 0; round <= options.rounds; round++) {
      for (let k = 0; k < targets.length; k++) {
        const i = (round + k) % targets.length
        const target = targets[i]
        const cpu0 = await cpuOf(i)
        const out = await load(target, httpAgents[i], round === 0 ? options.window : options.chunk, concurrency)
        cpu[i] += (await cpuOf(i)) - cpu0
        latencies[i].push(...out.latencies)
        wall[i] += out.wallNanos
        failures[i] += out.failures
        if (round === 0 && target.backendPort !== undefined) {
          inWindow[i] = await backendAccepted(target.backendPort)
        }
      }
    }
    const rows = []
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i]
      rows.push({
        name: target.name,
        latency: statsOf(target.name, latencies[i]),
        callsPerSecond: latencies[i].length / (wall[i] / 1e9),
        calls: latencies[i].length,
        failures: failures[i],
        backendConnectionsInWindow: inWindow[i],
        backendConnections: target.backendPort !== undefined ? await backendAccepted(target.backendPort) : undefined,
        clientConnections:
          (await agents[i].child.ask<{ readonly count: number }>({ cmd: "accepted", port: target.port }))
            .count,
        cpuMicrosPerCall: cpu[i] / Math.max(1, latencies[i].length)
      })
    }
    results.push({ concurrency, window: options.window, rows })
    for (const agent of httpAgents) agent.destroy()
    await Promise.all(targets.map((t) => t.close()))
    await backends.close()
  }
  return results
}
