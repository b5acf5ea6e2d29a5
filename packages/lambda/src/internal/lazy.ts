/**
 * Values built on first use, not at import: module init is part of every cold start.
 *
 * @internal
 */

/**
 * `make` run once, on the first call; later calls return the same value. Annotate the call that
 * builds an export with `@__PURE__`: a bundle that never reads the export then builds nothing.
 */
export const lazily = <A>(make: () => A): () => A => {
  let made: A | undefined
  return () => made ??= make()
}
