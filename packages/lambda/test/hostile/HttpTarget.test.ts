// Hostile suite, invariants 4 and 11 (RELIABILITY.md, "Money-tight") for HTTP targets and streamed
// answers: the RESPONSE phase sees no request (`gatewayRequest: null`) and, streamed, is called once
// per event with an id. Over generated scenarios (two instances sharing the ledger, replayed,
// reordered, duplicated and forged events, explicit errors, refused settlements), a verification
// settles at most once, an output is released only for a call that settled, a forged or unknown id
// never releases anything, and the store and the facilitator agree on every call.
import { SettlementLedger } from "@effect-x402/core"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { AgentCoreEvents, LocalGateway, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Layer, Logger, Option, Redacted } from "effect"
import * as Http from "node:http"

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any

const PLAN = "plan-1"
const PRICE = 2
const quiet = Logger.replace(Logger.defaultLogger, Logger.none) as Layer.Layer<never>
const SEAL = Redacted.make("hostile suite seal key")

const paidText = (call: number) => `PAID-OUTPUT-${call}`
const FORGED = "FORGED-OUTPUT"

/** What the target sends back in one RESPONSE event. */
type Event =
  | { readonly _tag: "Result"; readonly call: number; readonly charge: number | undefined }
  | { readonly _tag: "Error"; readonly call: number }
  | { readonly _tag: "Request"; readonly call: number }
  | { readonly _tag: "Forged"; readonly id: string | number }

const event: (calls: number) => fc.Arbitrary<Event> = (calls) =>
  fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        _tag: fc.constant("Result" as const),
        call: fc.nat(calls - 1),
        charge: fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined })
      })
    },
    { weight: 1, arbitrary: fc.record({ _tag: fc.constant("Error" as const), call: fc.nat(calls - 1) }) },
    { weight: 1, arbitrary: fc.record({ _tag: fc.constant("Request" as const), call: fc.nat(calls - 1) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        _tag: fc.constant("Forged" as const),
        id: fc.oneof(
          fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
          fc.integer({ min: 2 ** 52, max: 2 ** 53 - 1 }),
          fc.string().map((s) => `x402:p.${Buffer.from(`x402_${s}`).toString("base64url")}.bnVsbA.${s}`),
          fc.string().map((s) => `x402:f.${s}`),
          fc.string()
        )
      })
    }
  )

const scenario = fc.integer({ min: 1, max: 4 }).chain((calls) =>
  fc.record({
    calls: fc.constant(calls),
    // Which instance runs each call's REQUEST, and each event's RESPONSE.
    requestOn: fc.array(fc.nat(1), { minLength: calls, maxLength: calls }),
    events: fc.array(fc.tuple(event(calls), fc.nat(1), fc.boolean()), { minLength: 1, maxLength: 12 }),
    balance: fc.integer({ min: 0, max: 40 })
  })
)

describe("hostile: HTTP targets and streamed answers (property, invariants 4 and 11)", () => {
  it.live("any mix of replayed, reordered, duplicated and forged RESPONSE events: one settlement per call at most, output only when settled", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(scenario, async ({ balance, calls, events, requestOn }) => {
          const seeded = TestFacilitator.seeded({ planId: PLAN, credits: Math.max(balance, PRICE * calls) })
          const store = await Effect.runPromise(SettlementLedger.makeMemory())
          const instances = [0, 1].map(() =>
            interceptor({
              planId: PLAN,
              credits: PRICE,
              requestSealKey: SEAL,
              layer: TestFacilitator.layer(seeded.ledger),
              services: Layer.merge(quiet, Layer.succeed(SettlementLedger.SettlementLedger, store))
            })
          )
          const run = (instance: number, e: unknown) =>
            instances[instance](e, AgentCoreEvents.context()) as Promise<unknown>
          // REQUEST: every call verified and forwarded, each under its own id (numbers and strings).
          const forwarded: Array<{ readonly id: unknown; readonly callerId: unknown }> = []
          for (let call = 0; call < calls; call++) {
            const callerId = call % 2 === 0 ? call : `call-${call}`
            const out = await run(
              requestOn[call],
              AgentCoreEvents.httpRequest({ token: seeded.token, tool: "t", id: callerId })
            )
            const request = AgentCoreEvents.forwardedHttp(out)
            assert.isDefined(request, "a verified call is forwarded")
            forwarded.push({ id: request!.body.id, callerId })
          }
          // Spend most of the balance away, so that some settlements are refused.
          seeded.ledger.fund(seeded.subscriber, PLAN, balance - seeded.ledger.balance(seeded.subscriber, PLAN))
          const released = new Map<number, number>()
          for (const [e, instance, streaming] of events) {
            const body = e._tag === "Result"
              ? {
                jsonrpc: "2.0",
                id: forwarded[e.call].id,
                result: {
                  content: [{ type: "text", text: paidText(e.call) }],
                  ...(e.charge !== undefined ? { _meta: { creditsToCharge: e.charge } } : {})
                }
              }
              : e._tag === "Error"
              ? { jsonrpc: "2.0", id: forwarded[e.call].id, error: { code: -32000, message: "tool failed" } }
              : e._tag === "Request"
              ? { jsonrpc: "2.0", id: "srv-1", method: "sampling/createMessage", params: {} }
              : { jsonrpc: "2.0", id: e.id, result: { content: [{ type: "text", text: FORGED }] } }
            const answer = AgentCoreEvents.answeredHttp(
              await run(instance, AgentCoreEvents.httpResponse({ body, streaming }))
            )
            assert.isDefined(answer, "every RESPONSE is answered")
            const text = answer!.text ?? ""
            assert.notInclude(text, FORGED, "a forged id released an output")
            assert.notInclude(text, Redacted.value(SEAL))
            assert.notInclude(text, seeded.token)
            if (e._tag === "Result" && text.includes(paidText(e.call))) {
              released.set(e.call, (released.get(e.call) ?? 0) + 1)
              // Released under the caller's own id.
              assert.deepStrictEqual(JSON.parse(text).id, forwarded[e.call].callerId)
            }
          }
          // At most one settlement per verification; the facilitator settled only ids it verified.
          const settles = seeded.ledger.calls.filter((c) => c.operation === "settle")
          const settledIds = seeded.ledger.settlements.map((s) => s.agentRequestId)
          assert.strictEqual(new Set(settledIds).size, settledIds.length, "a verification settled twice")
          assert.isAtMost(seeded.ledger.settlements.length, calls)
          const verified = new Set(
            seeded.ledger.calls.filter((c) => c.operation === "verify").map((c) => c.agentRequestId)
          )
          for (const id of settles.map((c) => c.agentRequestId)) assert.isTrue(verified.has(id))
          // Released ⇒ settled, and the store agrees with the facilitator for every call.
          for (let call = 0; call < calls; call++) {
            const id = forwarded[call].id
            const key = typeof id === "number"
              ? `x402_fwd_${id}`
              : Buffer.from(String(id).split(".")[1], "base64url").toString("utf8")
            const entry = Option.getOrThrow(await Effect.runPromise(store.get(key)))
            if ((released.get(call) ?? 0) > 0) {
              assert.strictEqual(entry.state, "settled", `call ${call} released unsettled`)
            }
            assert.strictEqual(entry.state === "settled", entry.receipt !== undefined)
            if (entry.state === "settled") {
              assert.isTrue(seeded.ledger.settlements.some((s) => s.transaction === entry.receipt!.transaction))
            }
            // No token in the store once an attempt ended.
            if (entry.state !== "verified") assert.isUndefined(entry.sealed)
          }
          for (const instance of instances) await instance.runtime.dispose()
        }),
        { numRuns: 40, seed: 17 }
      )
    ))

  it.scopedLive("over HTTP: a streaming target (progress, duplicated results, a result under a foreign id) through the gateway settles each paid call once", () =>
    Effect.gen(function*() {
      const seeded = TestFacilitator.seeded({ planId: PLAN, credits: 1_000 })
      const handler = interceptor({
        planId: PLAN,
        credits: PRICE,
        requestSealKey: SEAL,
        layer: TestFacilitator.layer(seeded.ledger),
        services: Layer.merge(quiet, SettlementLedger.layerMemory())
      })
      yield* Effect.addFinalizer(() => Effect.promise(() => handler.runtime.dispose()))
      const shapes = fc.sample(
        fc.record({
          progress: fc.nat(3),
          duplicates: fc.nat(2),
          foreign: fc.boolean(),
          text: fc.string({ minLength: 1 })
        }),
        { numRuns: 12, seed: 5 }
      )
      let shape = shapes[0]
      const server = Http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const body: Json = JSON.parse(Buffer.concat(chunks).toString("utf8"))
          res.writeHead(200, { "content-type": "text/event-stream" })
          for (let i = 0; i < shape.progress; i++) {
            res.write(
              `data: ${
                JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: { progress: i } })
              }\n\n`
            )
          }
          const id = shape.foreign ? "the-target-chose-this" : body.id
          const result = { jsonrpc: "2.0", id, result: { content: [{ type: "text", text: `PAID ${shape.text}` }] } }
          for (let i = 0; i <= shape.duplicates; i++) res.write(`data: ${JSON.stringify(result)}\n\n`)
          res.end()
        })
      })
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => {
          server.listen(0, "127.0.0.1", () => resume(Effect.void))
        }),
        () => Effect.sync(() => server.close())
      )
      const address = server.address() as { port: number }
      const gateway = yield* LocalGateway.make({
        interceptor: handler,
        httpTarget: `http://127.0.0.1:${address.port}/mcp`
      })
      let expected = 0
      for (const [i, s] of shapes.entries()) {
        shape = s
        const before = seeded.ledger.settlements.length
        const text = yield* Effect.promise(() =>
          fetch(gateway.url, {
            method: "POST",
            headers: { "content-type": "application/json", "payment-signature": seeded.token },
            body: JSON.stringify({ jsonrpc: "2.0", id: i, method: "tools/call", params: { name: "t", arguments: {} } })
          }).then((r) => r.text())
        )
        const settledNow = seeded.ledger.settlements.length - before
        if (s.foreign) {
          assert.notInclude(text, "PAID", "a result under a foreign id was released")
          assert.strictEqual(settledNow, 0)
        } else {
          assert.include(text, "PAID")
          assert.strictEqual(settledNow, 1, "a streamed call settles exactly once")
          expected++
          // Every copy of the result carries the one receipt, under the caller's id.
          const results = text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)))
            .filter((m: Json) => m.result !== undefined)
          assert.strictEqual(results.length, s.duplicates + 1)
          assert.isTrue(results.every((m: Json) => m.id === i && m.result._meta.x402.success === true))
        }
      }
      assert.strictEqual(seeded.ledger.settlements.length, expected)
    }))
})
