/**
 * A small cache of lookups by key: concurrent gets of a key share one lookup, and its outcome
 * (answer or failure) is kept for as long as `timeToLive` says. What `effect/Cache` does here, for
 * a fraction of its bundle size.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"

interface Entry<A, E> {
  readonly deferred: Deferred.Deferred<A, E>
  expiresAt: number
  /** The lookup's outcome, once settled. */
  exit?: Exit.Exit<A, E> | undefined
}

/**
 * A cache: `get` a key (looked up when absent or stale), or `peek` at a fresh settled answer.
 *
 * @internal
 */
export interface LookupCache<A, E> {
  (key: string): Effect.Effect<A, E>
  /** The answer kept for `key`, if it is settled, fresh at `now` and a success; no lookup. */
  readonly peek: (key: string, now: number) => A | undefined
}

/** @internal */
export const make = <A, E>(options: {
  readonly capacity: number
  readonly lookup: (key: string) => Effect.Effect<A, E>
  readonly timeToLive: (exit: Exit.Exit<A, E>) => Duration.Duration
}): Effect.Effect<LookupCache<A, E>> =>
  Effect.sync(() => {
    const entries = new Map<string, Entry<A, E>>()
    const lookup = (key: string, entry: Entry<A, E>): Effect.Effect<A, E> =>
      options.lookup(key).pipe(
        Effect.exit,
        Effect.flatMap((exit) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            entry.expiresAt = now + Duration.toMillis(options.timeToLive(exit))
            entry.exit = exit
            return Effect.zipRight(Deferred.done(entry.deferred, exit), exit)
          })
        ),
        // An interrupted lookup leaves nothing behind: its waiters are interrupted, the next get retries.
        Effect.onInterrupt(() => {
          if (entries.get(key) === entry) entries.delete(key)
          return Deferred.interrupt(entry.deferred)
        })
      )
    const peek = (key: string, now: number): A | undefined => {
      const found = entries.get(key)
      if (found === undefined || now >= found.expiresAt) return undefined
      const exit = found.exit
      return exit !== undefined && exit._tag === "Success" ? exit.value : undefined
    }
    const get = (key: string): Effect.Effect<A, E> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.withFiberRuntime<A, E>((fiber) => {
          const found = entries.get(key)
          if (found !== undefined && now < found.expiresAt) return Deferred.await(found.deferred)
          if (found === undefined && entries.size >= options.capacity) {
            // The oldest entry makes room: a plan cache never holds that many plans anyway.
            const oldest = entries.keys().next()
            if (oldest.done !== true) entries.delete(oldest.value)
          }
          entries.delete(key)
          const entry: Entry<A, E> = { deferred: Deferred.unsafeMake<A, E>(fiber.id()), expiresAt: Infinity }
          entries.set(key, entry)
          return lookup(key, entry)
        }))
    return Object.assign(get, { peek })
  })
