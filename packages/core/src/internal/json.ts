/**
 * Reading untrusted JSON values without trusting their shape: own properties only (never the
 * prototype chain, so `__proto__` or `constructor` keys in caller input read as absent), and no
 * throw on any input.
 *
 * @internal
 */

/** A plain JSON object (not null, not an array). */
export const isRecord = (u: unknown): u is { readonly [key: string]: unknown } =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/** The value of an own property of a JSON object, else `undefined` (arrays and primitives have none). */
export const own = (u: unknown, key: string): unknown =>
  isRecord(u) && Object.prototype.hasOwnProperty.call(u, key) ? u[key] : undefined
