// Properties of the payment path under random, hostile input (issue 6): whatever the event, the
// headers and the handler's answer, each adapter answers a well-formed result, never throws nor hangs,
// settles only a verified call whose handler succeeded, at most once, with the validated amount, and
// leaves Object.prototype alone.
import { PaymentContext, X402 } from "@effect-x402/core"
import { AgentCore } from "@effect-x402/lambda"
import { httpHandler } from "@effect-x402/lambda/HttpHandler"
import { interceptor } from "@effect-x402/lambda/Interceptor"
import { requiresPayment } from "@effect-x402/lambda/RequiresPayment"
import { AgentCoreEvents, TestFacilitator } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import type { Layer } from "effect"
import { Duration, Effect, Either, FastCheck as fc, Logger, Schema } from "effect"
import {
  chargeRequest,
  deep,
  E309,
  expectedCharge,
  headersWith,
  isValidId,
  json,
  jsonRecord,
  jsonRpcId,
  junkHeaders,
  paysWith,
  tokenPlacement
} from "./ReliabilityArbitraries.js"

const PLAN = "plan-1"
const CREDITS = 2
const MARKER = "PAID-OUTPUT-7f3a"
const RUNS = Number(process.env.RELIABILITY_RUNS ?? 300)

const prototypeKeys = () => Object.getOwnPropertyNames(Object.prototype).sort().join(",")
const PROTOTYPE_KEYS = prototypeKeys()

const assertPrototypesUntouched = () => {
  assert.strictEqual(prototypeKeys(), PROTOTYPE_KEYS, "Object.prototype gained or lost a property")
  for (const name of ["polluted", "isValid", "success", "payment-signature", "creditsToCharge", "x402"]) {
    assert.isUndefined(({} as Record<string, unknown>)[name], `Object.prototype.${name} was set`)
  }
}

// Every run must end; a hang fails the run instead of the whole file.
const settled = <A>(thunk: () => Promise<A>) =>
  Effect.tryPromise(thunk).pipe(
    Effect.timeoutFail({ duration: Duration.seconds(5), onTimeout: () => new Error("the handler hung") }),
    Effect.orDie
  )

// The logs of these runs are checked elsewhere (Security*.test.ts); here they would only be noise.
const quiet = Logger.replace(Logger.defaultLogger, Logger.none) as Layer.Layer<never>

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

// ---------------------------------------------------------------------------
// What a handler answers, and what the spec says may be charged for it
// ---------------------------------------------------------------------------

/** A handler's behaviour and its model: `charge` is the amount to settle, or why nothing may be. */
interface HandlerCase {
  readonly label: string
  readonly run: () => unknown
  /** Whether the output may be charged (a successful, well-formed, serialisable answer). */
  readonly chargeable: boolean
  /** The amount a chargeable answer settles, or `invalid` when it asks for an invalid one. */
  readonly charge: number | "invalid"
}

const value = (label: string, answer: unknown, chargeable: boolean, charge: number | "invalid" = CREDITS) => ({
  label,
  run: () => answer,
  chargeable,
  charge
})

const content = [{ type: "text", text: MARKER }]

const circular = () => {
  const result: Record<string, unknown> = { content }
  result.self = result
  return result
}

// Handlers that fail in every way an adapter must survive: never chargeable.
const failingHandlers: ReadonlyArray<fc.Arbitrary<HandlerCase>> = [
  fc.constant<HandlerCase>({
    label: "throws",
    run: () => {
      throw new Error(MARKER)
    },
    chargeable: false,
    charge: CREDITS
  }),
  fc.constant(value("Effect fails", Effect.fail(new Error(MARKER)), false)),
  fc.constant(value("Effect dies", Effect.die(MARKER), false))
]

const sse = (...messages: ReadonlyArray<unknown>) =>
  messages.map((message) => `event: message\ndata: ${JSON.stringify(message)}\n\n`).join("")

// A JSON-RPC body as a target or handler may answer it, with whether it is chargeable: fail closed,
// so everything but an explicit error (`isError: true`, a non-null JSON-RPC `error`) is.
const rpcBody: fc.Arbitrary<{ readonly body: unknown; readonly ok: boolean }> = fc.oneof(
  jsonRecord.map((junk) => ({ body: { jsonrpc: "2.0", id: 1, result: { ...junk, content } }, ok: true })),
  fc.constant({ body: { jsonrpc: "2.0", id: 1, result: { isError: true, content } }, ok: false }),
  fc.constant({ body: { jsonrpc: "2.0", id: 1, error: { code: -32000, message: MARKER } }, ok: false }),
  json.map((result) => ({ body: { jsonrpc: "2.0", id: 1, result }, ok: true })).filter(({ body }) =>
    !isRecord(body.result)
  ),
  fc.constant({ body: { jsonrpc: "2.0", id: 1, result: { content }, error: null }, ok: true }),
  fc.constant({ body: JSON.stringify({ jsonrpc: "2.0", id: 1, result: { content } }), ok: true }),
  fc.constant({ body: JSON.stringify(JSON.stringify({ jsonrpc: "2.0", id: 1, result: { content } })), ok: true }),
  fc.constant({ body: JSON.stringify(JSON.stringify({ jsonrpc: "2.0", id: 1, error: { code: 1 } })), ok: false }),
  fc.constant({
    body: sse({ jsonrpc: "2.0", method: "notifications/progress" }, { jsonrpc: "2.0", id: 1, result: { content } }),
    ok: true
  }),
  fc.constant({ body: sse({ jsonrpc: "2.0", id: 1, result: { isError: true, content } }), ok: false }),
  fc.constant({ body: sse({ jsonrpc: "2.0", id: 1, error: { code: -32000, message: MARKER } }), ok: false }),
  fc.constant({ body: `plain text ${MARKER}`, ok: true }),
  fc.constant({ body: null, ok: true })
)

const is2xx = (u: unknown) => typeof u === "number" && Number.isInteger(u) && u >= 200 && u <= 299

const statusCode: fc.Arbitrary<{ readonly present: boolean; readonly value: unknown }> = fc.oneof(
  fc.constant({ present: false, value: undefined }),
  fc.constantFrom(200, 201, 204, 302, 400, 402, 500, 599).map((value) => ({ present: true, value })),
  fc.constantFrom("200", 200.5, Number.NaN, E309, -1, 0, 99, 600, 70_000, null, true).map((value) => ({
    present: true,
    value
  }))
)

const agentCoreAnswer: fc.Arbitrary<HandlerCase> = fc.oneof(
  // Any value: an object is a bare MCP result (charged the default), anything else is no answer.
  json.map((v) =>
    isRecord(v)
      ? value("bare object", { ...v, marker: MARKER }, true)
      : value(`non-object ${typeof v}`, v, false)
  ),
  fc.constantFrom(undefined, "text", 42, [content], true).map((v) => value(`primitive ${typeof v}`, v, false)),
  // `_meta.creditsToCharge`, any value, next to hostile `_meta` keys.
  fc.tuple(jsonRecord, chargeRequest).map(([meta, request]) =>
    value(
      "_meta.creditsToCharge",
      { content, _meta: { ...meta, creditsToCharge: request } },
      true,
      expectedCharge(request, CREDITS)
    )
  ),
  // A JSON text item asking for an amount (written literally so 1e309 stays Infinity): the content
  // may echo the caller, so it never sets the price; the configured credits are settled.
  fc.constantFrom("5", "0", "\"7\"", "-1", "1.5", "1e309", "\"1e3\"", "null", "{\"__proto__\":1}").map((text) =>
    value(
      "content text creditsToCharge",
      { content: [{ type: "text", text: `{"creditsToCharge":${text},"m":"${MARKER}"}` }] },
      true,
      CREDITS
    )
  ),
  fc.constant(value("isError result", { isError: true, content }, false)),
  // A handler answering a JSON-RPC body as text has answered no `result`: not chargeable.
  rpcBody.map(({ body, ok }) =>
    value("JSON-RPC body", isRecord(body) ? body : { jsonrpc: "2.0", body }, isRecord(body) ? ok : true)
  ),
  fc.tuple(statusCode, rpcBody, junkHeaders).map(([status, { body, ok }, headers]) =>
    value(
      `InterceptorOutput, statusCode ${status.present ? String(status.value) : "absent"}`,
      {
        interceptorOutputVersion: "1.0",
        mcp: {
          transformedGatewayResponse: {
            ...(status.present ? { statusCode: status.value } : {}),
            headers: Object.fromEntries(headers),
            body
          }
        }
      },
      ok && (!status.present || is2xx(status.value))
    )
  ),
  fc.constant(value("InterceptorOutput without a response", { interceptorOutputVersion: "1.0", mcp: {} }, false)),
  // Answers that cannot leave as JSON must not be charged: the caller would get nothing for them.
  fc.constant(value("BigInt inside", { content, count: 10n }, false)),
  fc.constant({ label: "circular", run: circular, chargeable: false, charge: CREDITS }),
  fc.constant(value("toJSON throws", {
    content,
    toJSON: () => {
      throw new Error("no JSON")
    }
  }, false)),
  deep.map((nested) => value("deeply nested", { content, nested }, true)),
  fc.constant(value("Promise of a result", Promise.resolve({ content }), true)),
  fc.constant(value("Effect of a result", Effect.succeed({ content }), true)),
  ...failingHandlers,
  fc.constant<HandlerCase>({
    label: "rejects",
    run: () => Promise.reject(new Error(MARKER)),
    chargeable: false,
    charge: CREDITS
  })
)

// ---------------------------------------------------------------------------
// requiresPayment
// ---------------------------------------------------------------------------

interface AgentCoreInput {
  readonly event: unknown
  /** The model's expectations, when the event is a gateway event. */
  readonly wellFormed: boolean
  readonly billable: boolean
  readonly pays: boolean
}

const agentCoreEvent = (token: string): fc.Arbitrary<AgentCoreInput> =>
  fc.oneof(
    { weight: 1, arbitrary: json.map((event) => ({ event, wellFormed: false, billable: false, pays: false })) },
    { weight: 1, arbitrary: deep.map((event) => ({ event, wellFormed: false, billable: false, pays: false })) },
    {
      weight: 8,
      arbitrary: fc.record({
        placement: tokenPlacement,
        junk: junkHeaders,
        withHeaders: fc.constantFrom(true, true, true, false),
        method: fc.oneof(
          { weight: 5, arbitrary: fc.constant("tools/call") },
          { weight: 2, arbitrary: fc.constantFrom("tools/list", "initialize", "resources/read", "__proto__") },
          { weight: 1, arbitrary: fc.string({ maxLength: 10 }) }
        ),
        id: jsonRpcId,
        name: fc.oneof(fc.constantFrom("Target___tool", "a___b___c", "", "___", "__proto__"), json),
        args: json,
        form: fc.constantFrom("object", "object", "object", "text", "batch", "noJsonrpc", "noMethod"),
        version: fc.constantFrom<unknown>("1.0", undefined, "2.0", 2, null),
        extra: jsonRecord
      }).map(({ args, extra, form, id, junk, method, name, placement, version, withHeaders }) => {
        const body = {
          ...(form === "noJsonrpc" ? {} : { jsonrpc: "2.0" }),
          ...(id.present ? { id: id.value } : {}),
          ...(form === "noMethod" ? {} : { method }),
          params: { name, arguments: args }
        }
        const raw = {
          ...extra,
          ...(version !== undefined ? { interceptorInputVersion: version } : {}),
          mcp: {
            gatewayRequest: {
              httpMethod: "POST",
              ...(withHeaders ? { headers: headersWith(placement, token, junk) } : {}),
              body: form === "text" ? JSON.stringify(body) : form === "batch" ? [body] : body
            }
          }
        }
        // Lambda events arrive as JSON: NaN and Infinity become null, -0 becomes 0.
        const event = JSON.parse(JSON.stringify(raw))
        const wellFormed = (version === undefined || typeof version === "string") && form !== "batch" &&
          form !== "noMethod" && isValidId(id)
        const billable = wellFormed && method === "tools/call"
        return { event, wellFormed, billable, pays: billable && withHeaders && paysWith(placement) }
      })
    }
  )

describe("requiresPayment under random input", () => {
  const { ledger, subscriber, token } = TestFacilitator.seeded({ planId: PLAN, credits: 0 })
  ledger.fund(subscriber, PLAN, 1_000_000_000)
  let current: HandlerCase = value("unset", {}, true)
  let invoked = 0
  const handler = requiresPayment({
    planId: PLAN,
    credits: CREDITS,
    layer: TestFacilitator.layer(ledger),
    services: quiet
  })(() => {
    invoked++
    return current.run()
  })
  const isOutput = Schema.is(AgentCore.InterceptorOutput)

  it.live.prop(
    "a well-formed answer, never a throw; settled once exactly when verified and chargeable, for the valid amount",
    [agentCoreEvent(token), agentCoreAnswer],
    ([input, answer]) =>
      Effect.gen(function*() {
        current = answer
        invoked = 0
        const calls = ledger.calls.length
        const settlements = ledger.settlements.length
        const output = yield* settled(() => handler(input.event, AgentCoreEvents.context()))

        // Well-formed: the schema holds, and the Lambda runtime can serialise it.
        assert.isTrue(isOutput(output), "not an InterceptorOutput")
        const response = output.mcp.transformedGatewayResponse
        assert.isDefined(response)
        assert.isTrue(
          Number.isInteger(response!.statusCode) && response!.statusCode >= 100 && response!.statusCode <= 599
        )
        const wire = JSON.stringify(output)
        assert.isTrue(isOutput(JSON.parse(wire)))

        const newCalls = ledger.calls.slice(calls)
        const verifies = newCalls.filter((c) => c.operation === "verify")
        const valid = verifies.filter((c) => c.outcome === "valid")
        const settles = newCalls.filter((c) => c.operation === "settle")
        const burned = ledger.settlements.slice(settlements)
        assert.isAtMost(verifies.length, 1)
        assert.isAtMost(settles.length, 1, "settled more than once")
        assert.strictEqual(valid.length, input.pays ? 1 : 0, "verified exactly the paying calls")
        // The handler runs for a paid call only: no method is declared free, and the library answers
        // the handshake itself; never for bad input.
        assert.strictEqual(invoked, input.pays ? 1 : 0)

        const mustSettle = input.pays && answer.chargeable && answer.charge !== "invalid"
        assert.strictEqual(burned.length, mustSettle ? 1 : 0, `settlement count for ${answer.label}`)
        if (mustSettle) {
          assert.strictEqual(burned[0].credits, answer.charge, "settled the validated amount")
          assert.strictEqual(burned[0].agentRequestId, valid[0].agentRequestId)
          const receipt = Either.getOrThrow(
            X402.ReceiptHeader.decodeEither(response!.headers?.["payment-response"] ?? "")
          )
          assert.isTrue(receipt.success)
          assert.strictEqual(receipt.creditsRedeemed, String(answer.charge))
        } else if (input.pays && answer.chargeable) {
          // An invalid amount: the output is withheld, nothing charged.
          assert.notInclude(wire, MARKER)
        }
        if (input.billable && !mustSettle) assert.strictEqual(settles.length, 0)
        assertPrototypesUntouched()
      }),
    { fastCheck: { numRuns: RUNS }, timeout: 120_000 }
  )
})

// ---------------------------------------------------------------------------
// interceptor: REQUEST, the target, RESPONSE (replayed, as a retrying gateway may)
// ---------------------------------------------------------------------------

/** What a target answers, with what the spec says the RESPONSE phase settles for it. */
interface TargetCase {
  readonly response: { readonly statusCode: number; readonly headers: Record<string, unknown>; readonly body: unknown }
  readonly chargeable: boolean
  readonly charge: number | "invalid"
}

const targetAnswer: fc.Arbitrary<TargetCase> = fc.tuple(
  fc.constantFrom(200, 200, 200, 201, 400, 500),
  fc.oneof(
    rpcBody.map(({ body, ok }) => ({ body, ok, request: undefined as unknown })),
    chargeRequest.map((request) => ({
      body: { jsonrpc: "2.0", id: 1, result: { content, _meta: { creditsToCharge: request } } },
      ok: true,
      request
    }))
  ),
  junkHeaders,
  fc.option(chargeRequest, { nil: undefined })
).map(([statusCode, { body, ok, request }, junk, header]) => {
  const headers = Object.fromEntries([
    ...junk.filter(([name]) => name.toLowerCase() !== "x-credits-to-charge"),
    ...(header !== undefined ? [["X-Credits-To-Charge", header] as const] : [])
  ])
  // docs/protocol.md §5: `_meta.creditsToCharge` first, then the header, whatever JSON type it came as (the
  // event is JSON: Infinity and NaN arrive as null, that is absent).
  const asJson = (u: unknown): unknown => u === undefined ? undefined : JSON.parse(JSON.stringify(u))
  const wanted = asJson(request) ?? asJson(header)
  // A gateway that filters the body out sends null: the status alone decides.
  const chargeable = body === null ? statusCode === 200 : is2xx(statusCode) && ok
  return { response: { statusCode, headers, body }, chargeable, charge: expectedCharge(wanted, CREDITS) }
})

describe("interceptor under random input", () => {
  const { ledger, subscriber, token } = TestFacilitator.seeded({ planId: PLAN, credits: 0 })
  ledger.fund(subscriber, PLAN, 1_000_000_000)
  const handler = interceptor({ planId: PLAN, credits: CREDITS, layer: TestFacilitator.layer(ledger), services: quiet })
  const isOutput = Schema.is(AgentCore.InterceptorOutput)
  const wellFormed = (output: AgentCore.InterceptorOutput) => {
    assert.isTrue(isOutput(output), "not an InterceptorOutput")
    assert.isTrue(isOutput(JSON.parse(JSON.stringify(output))))
    const response = output.mcp.transformedGatewayResponse
    if (response !== undefined) assert.isTrue(Number.isInteger(response.statusCode))
  }

  it.live.prop(
    "REQUEST verifies exactly the paying calls; RESPONSE settles a chargeable answer once, even when replayed",
    [agentCoreEvent(token), targetAnswer],
    ([input, target]) =>
      Effect.gen(function*() {
        const calls = ledger.calls.length
        const settlements = ledger.settlements.length
        const first = yield* settled(() => handler(input.event, AgentCoreEvents.context()))
        wellFormed(first)
        const valid = ledger.calls.slice(calls).filter((c) => c.operation === "verify" && c.outcome === "valid")
        assert.strictEqual(valid.length, input.pays ? 1 : 0, "verified exactly the paying calls")
        assert.strictEqual(ledger.settlements.length, settlements, "REQUEST never settles")
        const forwarded = first.mcp.transformedGatewayRequest
        if (input.billable && !input.pays) assert.isUndefined(forwarded, "an unpaid billable call went through")
        if (forwarded === undefined || !input.pays) return assertPrototypesUntouched()

        // The token never reaches the target; the verified request id does.
        assert.notInclude(JSON.stringify(forwarded.headers ?? {}), token)
        assert.strictEqual(forwarded.headers?.["x-nvm-agent-request-id"], valid[0].agentRequestId)
        const gatewayRequest = (input.event as AgentCore.InterceptorInput).mcp.gatewayRequest
        const response = {
          ...(input.event as Record<string, unknown>),
          mcp: {
            gatewayRequest: {
              ...gatewayRequest,
              headers: { ...(gatewayRequest.headers as object), ...forwarded.headers }
            },
            gatewayResponse: target.response
          }
        }
        const mustSettle = target.chargeable && target.charge !== "invalid"
        const receipts: Array<unknown> = []
        for (let replay = 0; replay < 2; replay++) {
          const output = yield* settled(() => handler(JSON.parse(JSON.stringify(response)), AgentCoreEvents.context()))
          wellFormed(output)
          const burned = ledger.settlements.slice(settlements)
          assert.strictEqual(burned.length, mustSettle ? 1 : 0, "settled once, exactly when chargeable")
          if (mustSettle) {
            assert.strictEqual(burned[0].credits, target.charge)
            assert.strictEqual(burned[0].agentRequestId, valid[0].agentRequestId)
          }
          const wire = JSON.stringify(output)
          receipts.push(output.mcp.transformedGatewayResponse?.headers?.["payment-response"])
          // The replay is answered from the ledger with the one settlement's receipt, never settled again.
          if (mustSettle && replay === 1) {
            assert.strictEqual(receipts[1], receipts[0], "the replay shows the recorded receipt")
          }
          if (!mustSettle && target.chargeable) {
            assert.notInclude(wire, MARKER)
          }
        }
        assert.strictEqual(
          ledger.calls.slice(calls).filter((c) => c.operation === "settle").length,
          mustSettle ? 1 : 0,
          "one settle request per verification, replays included"
        )
        assertPrototypesUntouched()
      }),
    { fastCheck: { numRuns: RUNS }, timeout: 120_000 }
  )
})

// ---------------------------------------------------------------------------
// httpHandler
// ---------------------------------------------------------------------------

const HttpResultSchema = Schema.Struct({
  statusCode: Schema.Int.pipe(Schema.between(100, 599)),
  headers: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  body: Schema.optional(Schema.String),
  isBase64Encoded: Schema.optional(Schema.Boolean),
  cookies: Schema.optional(Schema.Array(Schema.String))
})

const httpAnswer: fc.Arbitrary<HandlerCase> = fc.oneof(
  json.map((v) =>
    v === undefined || (isRecord(v) && Object.hasOwn(v, "statusCode"))
      ? value("no answer", undefined, false)
      : value(`plain ${typeof v}`, v, true)
  ),
  fc.tuple(statusCode, junkHeaders, json, fc.option(chargeRequest, { nil: undefined })).map(
    ([status, headers, body, request]) => {
      const valid = !status.present ||
        (typeof status.value === "number" && Number.isInteger(status.value) && status.value >= 100 &&
          status.value <= 599)
      const all = [
        ...headers.filter(([name]) => name.toLowerCase() !== "x-credits-to-charge"),
        ...(request !== undefined ? [["X-Credits-To-Charge", request] as const] : [])
      ]
      // Header values are made strings (numbers and booleans) or dropped: the charge is read from that.
      const header = typeof request === "string" || typeof request === "number" || typeof request === "boolean"
        ? String(request)
        : undefined
      const answer = { statusCode: status.present ? status.value : 200, headers: Object.fromEntries(all), body }
      if (!status.present) return value("plain object", { headers: answer.headers, body }, true)
      return value(
        "structured result",
        answer,
        valid && (status.value as number) < 400,
        expectedCharge(header, CREDITS)
      )
    }
  ),
  chargeRequest.map((request) => ({
    label: "PaymentContext.chargeCredits",
    run: () => Effect.as(PaymentContext.chargeCredits(request as number), { statusCode: 200, body: MARKER }),
    chargeable: true,
    // The amount is validated at settle time whatever its static type: a decimal string passes.
    charge: expectedCharge(request, CREDITS)
  })),
  fc.constant(value("BigInt body", { statusCode: 200, body: { n: 1n } }, false)),
  fc.constant({ label: "circular", run: circular, chargeable: false, charge: CREDITS }),
  ...failingHandlers
)

interface HttpInput {
  readonly event: unknown
  readonly pays: boolean
  readonly wellFormed: boolean
}

const httpEvent = (token: string): fc.Arbitrary<HttpInput> =>
  fc.oneof(
    { weight: 1, arbitrary: json.map((event) => ({ event, pays: false, wellFormed: false })) },
    { weight: 1, arbitrary: deep.map((event) => ({ event, pays: false, wellFormed: false })) },
    {
      weight: 8,
      arbitrary: fc.record({
        placement: tokenPlacement,
        junk: junkHeaders,
        withHeaders: fc.constantFrom(true, true, true, false),
        method: fc.oneof(fc.constantFrom("GET", "POST", "DELETE", "get", ""), fc.string({ maxLength: 8 }), json),
        path: fc.oneof(fc.constantFrom("/agent", "/", "/a\r\nb", "/%00"), json),
        domain: fc.oneof(fc.constantFrom("abc.example", "", "evil.example\r\nx: 1"), json),
        body: fc.oneof(json, fc.constantFrom("\uFFFD\u0000", "//79/w==", "x".repeat(200_000))),
        isBase64Encoded: fc.oneof(fc.boolean(), json),
        extra: jsonRecord
      }).map(({ body, domain, extra, isBase64Encoded, junk, method, path, placement, withHeaders }) => {
        const event = JSON.parse(JSON.stringify({
          ...extra,
          version: "2.0",
          rawPath: path,
          ...(withHeaders ? { headers: headersWith(placement, token, junk) } : {}),
          requestContext: { domainName: domain, http: { method, path } },
          body,
          isBase64Encoded
        }))
        // Read back from the JSON the handler gets (NaN has become null by now).
        const wellFormed = typeof event.requestContext.http.method === "string" && typeof event.rawPath === "string" &&
          typeof event.requestContext.http.path === "string" && typeof event.requestContext.domainName === "string" &&
          (event.body === null || typeof event.body === "string") && typeof event.isBase64Encoded === "boolean"
        return { event, pays: wellFormed && withHeaders && paysWith(placement), wellFormed }
      })
    }
  )

describe("httpHandler under random input", () => {
  const { ledger, subscriber, token } = TestFacilitator.seeded({ planId: PLAN, credits: 0 })
  ledger.fund(subscriber, PLAN, 1_000_000_000)
  let current: HandlerCase = value("unset", {}, true)
  let invoked = 0
  const handler = httpHandler({
    planId: PLAN,
    credits: CREDITS,
    layer: TestFacilitator.layer(ledger),
    services: quiet
  })(() => {
    invoked++
    return current.run() as Effect.Effect<unknown, unknown, PaymentContext.PaymentContext>
  })
  const isResult = Schema.is(HttpResultSchema)

  it.live.prop(
    "a well-formed result, never a throw; settled once exactly when verified and chargeable, for the valid amount",
    [httpEvent(token), httpAnswer],
    ([input, answer]) =>
      Effect.gen(function*() {
        current = answer
        invoked = 0
        const calls = ledger.calls.length
        const settlements = ledger.settlements.length
        const result = yield* settled(() => handler(input.event, AgentCoreEvents.context()))
        assert.isTrue(isResult(result), `not a structured result: ${JSON.stringify(result).slice(0, 200)}`)
        JSON.stringify(result)

        const newCalls = ledger.calls.slice(calls)
        const valid = newCalls.filter((c) => c.operation === "verify" && c.outcome === "valid")
        const settles = newCalls.filter((c) => c.operation === "settle")
        const burned = ledger.settlements.slice(settlements)
        assert.isAtMost(settles.length, 1, "settled more than once")
        assert.strictEqual(valid.length, input.pays ? 1 : 0, "verified exactly the paying calls")
        assert.strictEqual(invoked, input.pays ? 1 : 0, "the handler runs only for a verified call")
        if (!input.wellFormed) assert.strictEqual(result.statusCode, 400)
        else if (!input.pays) assert.strictEqual(result.statusCode, 402)

        const mustSettle = input.pays && answer.chargeable && answer.charge !== "invalid"
        assert.strictEqual(burned.length, mustSettle ? 1 : 0, `settlement count for ${answer.label}`)
        if (mustSettle) {
          assert.strictEqual(burned[0].credits, answer.charge, "settled the validated amount")
          assert.strictEqual(burned[0].agentRequestId, valid[0].agentRequestId)
          const receipt = Either.getOrThrow(
            X402.SettleResponseHeader.decodeEither(result.headers?.["payment-response"] as string)
          )
          assert.isTrue(receipt.success)
          assert.strictEqual(receipt.creditsRedeemed, String(answer.charge))
        } else if (input.pays && answer.chargeable) {
          assert.notInclude(result.body ?? "", MARKER)
          assert.notStrictEqual(result.statusCode, 200)
        }
        assertPrototypesUntouched()
      }),
    { fastCheck: { numRuns: RUNS }, timeout: 120_000 }
  )
})
