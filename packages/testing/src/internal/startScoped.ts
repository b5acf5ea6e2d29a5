import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"

/**
 * Runs a scoped constructor from a script (outside Effect): the service, plus `close` to release
 * its scope. A failed start releases what it had acquired before rejecting.
 */
export const startScoped = async <A, E>(
  make: Effect.Effect<A, E, Scope.Scope>
): Promise<A & { readonly close: () => Promise<void> }> => {
  const scope = Effect.runSync(Scope.make())
  const service = await Effect.runPromise(Scope.extend(make, scope)).catch(async (error: unknown) => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    throw error
  })
  return { ...service, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}
