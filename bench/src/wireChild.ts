/**
 * The child processes of the wire section: `backend` holds fake Nevermined backends, `agent` serves
 * one agent. Each answers its parent's requests over the IPC channel; the parent is the load
 * generator. `spawn` is the parent's side.
 */
import * as ChildProcess from "node:child_process"
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

/** Starts a child (with this process's loader flags, so TypeScript runs as here). */
export const spawn = (role: "backend" | "agent"): Promise<Child> =>
  new Promise((resolve, reject) => {
    // `BENCH_AGENT_PROFILE=<dir>`: the agent processes write a `.cpuprofile` there (profiling the
    // agent alone, without the backend and the load generator that share the in-process profile).
    const profile = process.env["BENCH_AGENT_PROFILE"]
    const child = ChildProcess.fork(self, [role], {
      execArgv: role === "agent" && profile !== undefined
        ? [...process.execArgv, "--cpu-prof", `--cpu-prof-dir=${profile}`]
        : process.execArgv,
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
