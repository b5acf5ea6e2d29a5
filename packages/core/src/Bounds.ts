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
 * Whether a parsed JSON value nests deeper than `limit` (objects and arrays count one level each;
 * an object's own enumerable properties are its children, an array's its elements). It stops at the
 * first node past the limit, so a hostile depth is never walked whole, and the recursion is at most
 * `limit` frames deep (a limit too large for that is measured iteratively).
 *
 * @since 0.2.0
 * @category validation
 */
export const jsonDepthExceeds = (value: unknown, limit: number = MAX_JSON_DEPTH): boolean => {
  if (typeof value !== "object" || value === null) return false
  return limit <= MAX_RECURSIVE_LIMIT ? exceeds(value, limit) : exceedsIteratively(value, limit)
}

// Recursion (bounded by the limit) with no allocation per node: a 1 MB argument object is walked
// about five times faster than with an explicit stack of [node, depth] pairs and `Object.values`.
const MAX_RECURSIVE_LIMIT = 1000
const hasOwn = Object.prototype.hasOwnProperty

const exceeds = (node: object, remaining: number): boolean => {
  if (remaining <= 0) return true
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const child: unknown = node[i]
      if (typeof child === "object" && child !== null && exceeds(child, remaining - 1)) return true
    }
    return false
  }
  for (const key in node) {
    if (!hasOwn.call(node, key)) continue
    const child: unknown = (node as Record<string, unknown>)[key]
    if (typeof child === "object" && child !== null && exceeds(child, remaining - 1)) return true
  }
  return false
}

const exceedsIteratively = (value: object, limit: number): boolean => {
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

/**
 * Whether JSON text nests deeper than `limit`, read from the text itself: brackets outside string
 * literals are counted, so for valid JSON it answers as `jsonDepthExceeds(JSON.parse(text))` does,
 * without parsing or walking a tree; text that is not JSON is measured the same way (an unclosed
 * bracket still counts). One pass, stopping at the first bracket past the limit; string literals are
 * skipped by searching for their closing quote.
 *
 * @since 0.2.0
 * @category validation
 */
export const jsonTextDepthExceeds = (text: string, limit: number = MAX_JSON_DEPTH): boolean => {
  let depth = 0
  const length = text.length
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      // The closing quote is the next one not escaped by an odd run of backslashes.
      let end = text.indexOf("\"", i + 1)
      while (end !== -1) {
        let slashes = 0
        while (text.charCodeAt(end - 1 - slashes) === BACKSLASH) slashes++
        if (slashes % 2 === 0) break
        end = text.indexOf("\"", end + 1)
      }
      if (end === -1) return false
      i = end
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > limit) return true
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--
    }
  }
  return false
}

const QUOTE = 34
const BACKSLASH = 92
const OPEN_BRACE = 123
const CLOSE_BRACE = 125
const OPEN_BRACKET = 91
const CLOSE_BRACKET = 93
