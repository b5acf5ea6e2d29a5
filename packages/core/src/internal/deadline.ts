/**
 * A deadline for one effect, cheaper than `Effect.timeoutFail` on the live clock.
 *
 * `Effect.timeoutFail` races two forked fibers (the effect and a sleeping one) on every call. Here,
 * under the live clock, the effect runs in one forked fiber and a plain timer cuts it off; under any
 * other clock (a `TestClock`), `Effect.timeoutFail` keeps the test's control of time.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"

const liveClock: Clock.Clock = Context.unsafeGet(
  DefaultServices.liveServices as Context.Context<Clock.Clock>,
  Clock.Clock
)

/**
 * Fails with `onTimeout()` when `self` has not finished `millis` from now; `self` is interrupted
 * then (without waiting for it: an abandoned request is not awaited).
 *
 * @internal
 */
export const within = <A, E, R, E2>(
  self: Effect.Effect<A, E, R>,
  millis: number,
  onTimeout: () => E2
): Effect.Effect<A, E | E2, R> =>
  Effect.withFiberRuntime<A, E | E2, R>((fiber) => {
    const clock = fiber.currentDefaultServices.unsafeMap.get(Clock.Clock.key)
    if (clock !== liveClock) {
      return Effect.timeoutFail(self, { duration: Duration.millis(Math.max(0, millis)), onTimeout })
    }
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Effect.fork(restore(self)), (child) =>
        restore(Effect.async<A, E | E2>((resume) => {
          let done = false
          const observer = (exit: Parameters<Parameters<typeof child.addObserver>[0]>[0]) => {
            if (done) return
            done = true
            clearTimeout(timer)
            resume(exit)
          }
          const timer = setTimeout(() => {
            if (done) return
            done = true
            child.removeObserver(observer)
            resume(Effect.zipRight(Fiber.interruptFork(child), Effect.fail(onTimeout())))
          }, Math.max(0, millis))
          child.addObserver(observer)
          // The caller was interrupted: so is the work, and the timer goes.
          return Effect.suspend(() => {
            done = true
            clearTimeout(timer)
            child.removeObserver(observer)
            return Fiber.interrupt(child)
          })
        })))
    )
  })
