/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and tells where the time goes: the functions
 * with the most self time, and the share of time spent under each module.
 *
 * `npx tsx bench/src/cpuprofile.ts <file.cpuprofile> [top] [unminified bundle it profiled]`
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Url from "node:url"

interface ProfileNode {
  readonly id: number
  readonly callFrame: {
    readonly functionName: string
    readonly url: string
    readonly lineNumber: number
  }
  readonly children?: ReadonlyArray<number>
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

export interface Line {
  readonly label: string
  readonly micros: number
  readonly share: number
}

export interface Summary {
  readonly totalMicros: number
  readonly self: ReadonlyArray<Line>
  readonly inclusive: ReadonlyArray<Line>
  readonly modules: ReadonlyArray<Line>
}

const shortUrl = (url: string): string => {
  if (url.length === 0) return "(native)"
  if (url.startsWith("packages/") || url.startsWith("bench/") || url.startsWith("examples/")) return url
  const path = url.startsWith("file://") ? Url.fileURLToPath(url) : url
  const pnpm = path.lastIndexOf("/node_modules/")
  if (pnpm >= 0) return path.slice(pnpm + "/node_modules/".length)
  const root = path.indexOf("/packages/")
  if (root >= 0) return path.slice(root + 1)
  const bench = path.indexOf("/bench/")
  return bench >= 0 ? path.slice(bench + 1) : Path.basename(path)
}

const moduleOf = (url: string): string => {
  const short = shortUrl(url)
  if (short.startsWith("packages/")) return short.split("/").slice(0, 2).join("/") + " (ours)"
  if (short.startsWith("effect/")) return "effect"
  if (short.startsWith("@effect/")) return short.split("/").slice(0, 2).join("/")
  if (short.startsWith("node:") || short === "(native)") return "node / native"
  return short.split("/")[0]
}

/**
 * Maps lines of an unminified esbuild bundle back to the module they came from, by the
 * `// path/to/module.js` comments esbuild writes before each module.
 */
export const bundleModules = (bundleFile: string): (url: string, line: number) => string | undefined => {
  const lines = Fs.readFileSync(bundleFile, "utf8").split("\n")
  const owner: Array<string> = []
  let current = ""
  for (let i = 0; i < lines.length; i++) {
    const m = /^\/\/ ((?:\.\.\/)*(?:node_modules|packages|bench|examples|src)\/\S*)$/.exec(lines[i])
    if (m) current = m[1].replace(/^(\.\.\/)+/, "")
    owner[i] = current
  }
  const url = Url.pathToFileURL(bundleFile).href
  return (u, line) => (u === url ? owner[line] : undefined)
}

export const summarize = (
  profile: Profile,
  top = 25,
  modulesOf?: (url: string, line: number) => string | undefined
): Summary => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const selfOf = new Map<number, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    total += dt
    selfOf.set(id, (selfOf.get(id) ?? 0) + dt)
  })
  const where = (node: ProfileNode) => modulesOf?.(node.callFrame.url, node.callFrame.lineNumber)
  const label = (node: ProfileNode) => {
    const source = where(node)
    return `${node.callFrame.functionName || "(anonymous)"} ${
      source !== undefined && source.length > 0 ? shortUrl(source) : shortUrl(node.callFrame.url)
    }:${node.callFrame.lineNumber + 1}`
  }
  const moduleOfNode = (node: ProfileNode) => {
    const source = where(node)
    return moduleOf(source !== undefined && source.length > 0 ? source : node.callFrame.url)
  }
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  const modules = new Map<string, number>()
  for (const [id, micros] of selfOf) {
    const node = byId.get(id)!
    const name = node.callFrame.functionName
    if (name === "(idle)" || name === "(program)") continue
    self.set(label(node), (self.get(label(node)) ?? 0) + micros)
    modules.set(moduleOfNode(node), (modules.get(moduleOfNode(node)) ?? 0) + micros)
    // Inclusive time: once per distinct frame on the stack.
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const l = label(byId.get(at)!)
      if (seen.has(l)) continue
      seen.add(l)
      inclusive.set(l, (inclusive.get(l) ?? 0) + micros)
    }
  }
  const lines = (map: Map<string, number>, n: number): ReadonlyArray<Line> =>
    [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([l, micros]) => ({
      label: l,
      micros,
      share: total > 0 ? micros / total : 0
    }))
  return {
    totalMicros: total,
    self: lines(self, top),
    inclusive: lines(inclusive, top * 2),
    modules: lines(modules, 12)
  }
}

export const render = (summary: Summary): string => {
  const pct = (share: number) => `${(share * 100).toFixed(1).padStart(5)}%`
  const block = (title: string, lines: ReadonlyArray<Line>) =>
    [title, ...lines.map((l) => `  ${pct(l.share)}  ${l.label}`)].join("\n")
  return [
    `total sampled: ${(summary.totalMicros / 1000).toFixed(0)} ms`,
    block("by module (self time):", summary.modules),
    block("top functions by self time:", summary.self),
    block("top frames by inclusive time:", summary.inclusive)
  ].join("\n\n")
}

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === Url.fileURLToPath(import.meta.url)) {
  const file = process.argv[2]
  if (file === undefined) throw new Error("usage: cpuprofile.ts <file.cpuprofile> [top]")
  const profile = JSON.parse(Fs.readFileSync(file, "utf8")) as Profile
  const bundle = process.argv[4]
  console.log(render(summarize(profile, Number(process.argv[3] ?? 25), bundle ? bundleModules(bundle) : undefined)))
}
