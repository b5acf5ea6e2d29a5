/**
 * Limits on the work one call may cause, shared by every adapter: a request the library cannot
 * handle in bounded time and memory is refused before anything is verified or charged.
 *
 * @since 0.2.0
 */

/**
 * The deepest JSON nesting a request may have. Real MCP and HTTP payloads stay far below it; a
 * body thousands of levels deep is an attack (it was verified, then could not be serialised).
 *
 * @since 0.2.0
 * @category constants
 */
export const MAX_JSON_DEPTH = 64

/**
 * Whether a parsed JSON value nests deeper than `limit` (objects and arrays count one level each).
 * Iterative, so a hostile depth cannot overflow the stack while it is being measured.
 *
 * @since 0.2.0
 * @category validation
 */
export const jsonDepthExceeds = (value: unknown, limit: number = MAX_JSON_DEPTH): boolean => {
  if (typeof value !== "object" || value === null) return false
  const stack: Array<[unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (depth > limit) return true
    const children = Array.isArray(node) ? node : Object.values(node as object)
    for (const child of children) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1])
    }
  }
  return false
}
