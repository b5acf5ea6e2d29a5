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
import * as Scheduler from "effect/Scheduler"
import { FacilitatorError, type FacilitatorOperation } from "../PaymentError.js"

const liveClock: Clock.Clock = Context.unsafeGet(
  DefaultServices.liveServices as Context.Context<Clock.Clock>,
  Clock.Clock
)

/**
 * Whether the fiber runs on the live clock (no `TestClock`): only then may a deadline be a plain
 * timer.
 *
 * @internal
 */
export const isLiveClock = (fiber: { readonly currentDefaultServices: Context.Context<never> }): boolean =>
  fiber.currentDefaultServices.unsafeMap.get(Clock.Clock.key) === liveClock

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
    const scheduler = fiber.currentScheduler
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(
        // The work starts at once, on this thread (not at the scheduler's next turn), and then runs
        // on the usual scheduler: what answers without waiting (an in-memory facilitator, a warm
        // cache) has answered before any timer is set.
        Effect.withScheduler(Effect.fork(Effect.withScheduler(restore(self), scheduler)), immediate),
        (child) => {
          const settled = child.unsafePoll()
          if (settled !== null) return settled
          return restore(Effect.async<A, E | E2>((resume) => {
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
          }))
        }
      )
    )
  })

// Runs a task the moment it is scheduled: only the start of a deadline's work uses it.
const immediate = Scheduler.make((task) => task(), () => false)

/**
 * The failure of a facilitator operation that did not start because the call's deadline had passed
 * (nothing was sent: safe to report as not applied).
 */
export const passed = (operation: FacilitatorOperation): FacilitatorError =>
  new FacilitatorError({ operation, kind: "Timeout", requestSent: false, detail: "the call's deadline has passed" })
