/**
 * Sets of JSON-RPC method names, matched exactly (MCP names are case-sensitive): `Tools/Call`,
 * `"tools/call "` or a name with a zero-width space is not `tools/call`. An entry ending in `/*`
 * names a family by its exact prefix (`notifications/*`).
 */

/** A set of method names, built once per cold start. */
export interface MethodSet {
  readonly has: (method: string) => boolean
}

/**
 * The set of `names`. Throws a `RangeError` at configuration time on an entry that is not a
 * non-empty string, so a typo in the options stops the cold start instead of pricing calls wrongly.
 */
export const methodSet = (names: ReadonlyArray<string>, option: string): MethodSet => {
  const exact = new Set<string>()
  const prefixes: Array<string> = []
  for (const name of names) {
    if (typeof name !== "string" || name.length === 0 || name === "/*") {
      throw new RangeError(`${option} must list method names, and no empty one`)
    }
    if (name.endsWith("/*")) prefixes.push(name.slice(0, -1))
    else exact.add(name)
  }
  return {
    has: prefixes.length === 0
      ? (method) => exact.has(method)
      : (method) => exact.has(method) || prefixes.some((prefix) => method.startsWith(prefix))
  }
}
