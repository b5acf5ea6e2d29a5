// dynalite ships no types: the part of its API the ledger tests use.
declare module "dynalite" {
  import type * as Http from "node:http"
  interface DynaliteOptions {
    /** A LevelDB directory; without it the data lives in memory (memory-level, pure JS). */
    readonly path?: string
    readonly createTableMs?: number
    readonly deleteTableMs?: number
    readonly updateTableMs?: number
  }
  const dynalite: (options?: DynaliteOptions) => Http.Server
  export default dynalite
}
