/**
 * The child processes of the wire section: `backend` holds fake Nevermined backends, `agent` serves
 * one agent. Each answers its parent's requests over the IPC channel; the parent is the load
 * generator. `spawn` is the parent's side.
 */
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import * as Url from "node:url"

interface Request {
  readonly cmd: string
  readonly [key: string]: unknown
}

export interface Child {
  readonly ask: <A>(request: Request) => Promise<A>
  readonly close: () => Promise<void>
}

const self = Url.fileURLToPath(import.meta.url)

// Where the children's bundle is written (`bench/.bench-out/wire/`, next to the cold-start bundles).
const BUNDLE = Path.join(Path.dirname(self), "..", ".bench-out", "wire", "wireChild.mjs")
let bundled: Promise<string> | undefined

/**
 * The children run from an esbuild bundle of this file (with `wire.ts`, both agents and the fake
 * backend), built once per run: plain JavaScript as a Lambda ships it, under plain `node`. Under
 * `tsx` every module goes through its loader, and its `keepNames` transform wraps every function
 * made per call in a `__name(...)` call, a cost the shipped bundle does not have (it falls
 * unevenly: ours makes more closures per call than the hand-written agent). Not minified, so
 * `.cpuprofile`s keep readable names. `BENCH_WIRE_TSX=1` runs them under `tsx` as before.
 */
const entry = (): Promise<{ readonly file: string; readonly execArgv: ReadonlyArray<string> }> => {
  if (process.env["BENCH_WIRE_TSX"] === "1" || !self.endsWith(".ts")) {
    return Promise.resolve({ file: self, execArgv: process.execArgv })
  }
  bundled ??= import("esbuild").then(async (esbuild) => {
    await esbuild.build({
      entryPoints: [self],
      outfile: BUNDLE,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      minify: false,
      sourcemap: false,
      logLevel: "silent",
      // Bundled ESM has no `require`; a CommonJS dependency that calls it gets Node's.
      banner: {
        js:
          "import { createRequire as __benchRequire } from \"node:module\"; const require = __benchRequire(import.meta.url);"
      }
    })
    return BUNDLE
  })
  return bundled.then((file) => ({ file, execArgv: [] }))
}

/** Starts a child: from the bundle (see `entry`), or with this process's loader flags. */
export const spawn = async (role: "backend" | "agent"): Promise<Child> => {
  const { execArgv, file } = await entry()
  return new Promise((resolve, reject) => {
    // `BENCH_AGENT_PROFILE=<dir>`: the agent processes write a `.cpuprofile` there (profiling the
    // agent alone, without the backend and the load generator that share the in-process profile).
    const profile = process.env["BENCH_AGENT_PROFILE"]
    const child = ChildProcess.fork(file, [role], {
      execArgv: role === "agent" && profile !== undefined
        ? [...execArgv, "--cpu-prof", `--cpu-prof-dir=${profile}`]
        : [...execArgv],
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    let next = 0
    const waiting = new Map<number, (value: unknown) => void>()
    child.on("message", (message: { readonly id?: number; readonly ready?: boolean; readonly value?: unknown }) => {
      if (message.ready === true) {
        resolve({
          ask: <A>(request: Request) =>
            new Promise<A>((answer) => {
              const id = ++next
              waiting.set(id, answer as (value: unknown) => void)
              child.send({ ...request, id })
            }),
          close: () =>
            new Promise<void>((done) => {
              child.once("exit", () => done())
              child.send({ cmd: "close", id: 0 })
            })
        })
        return
      }
      if (message.id !== undefined) {
        waiting.get(message.id)?.(message.value)
        waiting.delete(message.id)
      }
    })
    child.once("error", reject)
    child.once("exit", (code) => {
      if (code !== 0) reject(new Error(`bench: wire ${role} process exited with ${code}`))
    })
  })
}

const serveChild = async (role: string) => {
  const Wire = await import("./wire.js")
  const closers: Array<() => Promise<void>> = []
  process.on("message", async (message: Request & { readonly id: number }) => {
    const reply = (value: unknown) => process.send!({ id: message.id, value })
    switch (message.cmd) {
      case "backends": {
        const backends = []
        for (let i = 0; i < Number(message["count"]); i++) {
          const { close, ...backend } = await Wire.startBackend()
          closers.push(close)
          backends.push(backend)
        }
        return reply({ backends })
      }
      case "start": {
        const agent = await Wire.startAgent(
          message["kind"] as "ours" | "handwritten" | "bare",
          message["backend"] as { readonly url: string; readonly apiKey: string } | undefined
        )
        closers.push(agent.close)
        return reply({ port: agent.port })
      }
      case "cpu": {
        const usage = process.cpuUsage()
        return reply({ micros: usage.user + usage.system })
      }
      case "accepted":
        return reply({ count: Wire.acceptedConnections(Number(message["port"])) })
      case "close":
        await Promise.all(closers.map((close) => close().catch(() => undefined)))
        process.exit(0)
    }
  })
  process.send!({ ready: true })
  void role
}

if (process.argv[1] === self && process.send !== undefined) void serveChild(process.argv[2] ?? "")
