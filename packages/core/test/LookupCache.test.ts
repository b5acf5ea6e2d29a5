import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, TestClock } from "effect"
import * as LookupCache from "../src/internal/lookupCache.js"

const counting = <A>(answer: (key: string, n: number) => Effect.Effect<A, string>) => {
  const calls = new Map<string, number>()
  return {
    calls: (key: string) => calls.get(key) ?? 0,
    lookup: (key: string) =>
      Effect.suspend(() => {
        const n = (calls.get(key) ?? 0) + 1
        calls.set(key, n)
        return answer(key, n)
      })
  }
}

describe("internal/lookupCache (the plan-network cache of the live facilitator)", () => {
  it.effect("concurrent gets share one lookup; the answer lives for its time to live", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const source = counting((key) => Effect.as(Deferred.await(gate), `${key}!`))
      const get = yield* LookupCache.make({
        capacity: 10,
        lookup: source.lookup,
        timeToLive: () => Duration.minutes(5)
      })
      const waiting = yield* Effect.fork(Effect.all(Array.from({ length: 5 }, () => get("a")), { concurrency: 5 }))
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, void 0)
      assert.deepStrictEqual(yield* Fiber.join(waiting), ["a!", "a!", "a!", "a!", "a!"])
      assert.strictEqual(source.calls("a"), 1)
      yield* TestClock.adjust("4 minutes")
      assert.strictEqual(yield* get("a"), "a!")
      assert.strictEqual(source.calls("a"), 1)
      yield* TestClock.adjust("61 seconds")
      assert.strictEqual(yield* get("a"), "a!")
      assert.strictEqual(source.calls("a"), 2)
    }))

  it.effect("a failure is kept for its own (shorter) time to live, then looked up again", () =>
    Effect.gen(function*() {
      const source = counting((key, n) => n === 1 ? Effect.fail("down") : Effect.succeed(key))
      const get = yield* LookupCache.make({
        capacity: 10,
        lookup: source.lookup,
        timeToLive: (exit) => Exit.isSuccess(exit) ? Duration.minutes(5) : Duration.seconds(30)
      })
      assert.deepStrictEqual(yield* Effect.either(get("a")), yield* Effect.either(Effect.fail("down")))
      assert.deepStrictEqual(yield* Effect.either(get("a")), yield* Effect.either(Effect.fail("down")))
      assert.strictEqual(source.calls("a"), 1)
      yield* TestClock.adjust("31 seconds")
      assert.strictEqual(yield* get("a"), "a")
      assert.strictEqual(source.calls("a"), 2)
    }))

  it.effect("an interrupted lookup interrupts its waiters and leaves nothing behind", () =>
    Effect.gen(function*() {
      const source = counting((key, n) => n === 1 ? Effect.never : Effect.succeed(key))
      const get = yield* LookupCache.make({
        capacity: 10,
        lookup: source.lookup,
        timeToLive: () => Duration.minutes(5)
      })
      const first = yield* Effect.fork(get("a"))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(get("a"))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(first)
      assert.isTrue(Exit.isInterrupted(yield* Fiber.await(waiter)))
      assert.strictEqual(yield* get("a"), "a")
      assert.strictEqual(source.calls("a"), 2)
    }))

  it.effect("holds at most `capacity` keys, the oldest making room", () =>
    Effect.gen(function*() {
      const source = counting((key) => Effect.succeed(key))
      const get = yield* LookupCache.make({ capacity: 2, lookup: source.lookup, timeToLive: () => Duration.minutes(5) })
      yield* get("a")
      yield* get("b")
      yield* get("c")
      yield* get("b")
      assert.strictEqual(source.calls("b"), 1)
      yield* get("a")
      assert.strictEqual(source.calls("a"), 2)
    }))
})
