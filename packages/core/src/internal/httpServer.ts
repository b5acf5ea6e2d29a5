/**
 * What the `HttpApp` middleware (`HttpPaywall`) and the `HttpApi` middleware (`HttpApiPaywall`) share
 * on `@effect/platform`: the call of a request, the canonical answer as a response, the receipt on a
 * response, and the guard of a streamed paid body.
 *
 * @internal
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Credits from "../Credits.js"
import type { PaymentFailure } from "../PaymentError.js"
import * as Paywall from "../Paywall.js"
import type * as X402 from "../X402.js"
import { type Answer, failureAnswer, receiptHeaders, tokenFromHeaders } from "./answers.js"
import { correlationId, InternalFailure, logInternal } from "./internalFailure.js"

/**
 * The platform response of an answer.
 *
 * @internal
 */
export const toResponse = (answer: Answer): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(answer.body, { status: answer.status, headers: answer.headers })

const resourceUrlOf = (request: HttpServerRequest.HttpServerRequest): string | undefined =>
  Option.match(HttpServerRequest.toURL(request), {
    onNone: () => undefined,
    onSome: (url) => `${url.origin}${url.pathname}`
  })

export const forRequest = <R>(
  paywall: Paywall.Paywall<HttpServerRequest.HttpServerRequest, R, HttpServerResponse.HttpServerResponse>,
  request: HttpServerRequest.HttpServerRequest
) =>
  paywall.options.httpVerb === undefined
    ? { ...paywall, options: { ...paywall.options, httpVerb: request.method } }
    : paywall

export const callOf = (
  request: HttpServerRequest.HttpServerRequest,
  names: ReadonlyArray<string>
): Paywall.Call<HttpServerRequest.HttpServerRequest> => ({
  request,
  token: Option.getOrUndefined(tokenFromHeaders(request.headers, names)),
  resourceUrl: resourceUrlOf(request)
})

// The handler's explicit `chargeCredits` wins over its `X-Credits-To-Charge` header. The body is
// never read: that would mean buffering streams, and the header says the same thing for free.
export const chargeSource = (
  response: HttpServerResponse.HttpServerResponse,
  requested: Option.Option<number>
): Credits.ChargeSource => Option.isSome(requested) ? { requested: requested.value } : { headers: response.headers }

// The override header is an instruction to the paywall, not part of the answer.
export const withoutChargeHeader = (response: HttpServerResponse.HttpServerResponse) =>
  Headers.has(response.headers, Credits.CREDITS_HEADER)
    ? HttpServerResponse.setBody(
      HttpServerResponse.empty({
        status: response.status,
        statusText: response.statusText,
        headers: Headers.remove(response.headers, Credits.CREDITS_HEADER),
        cookies: response.cookies
      }),
      response.body
    )
    : response

export const withReceipt = (response: HttpServerResponse.HttpServerResponse, settlement: X402.SettleResponse) =>
  HttpServerResponse.setHeaders(withoutChargeHeader(response), receiptHeaders(settlement))

export const failureResponse = <R>(
  paywall: Paywall.Paywall<HttpServerRequest.HttpServerRequest, R, HttpServerResponse.HttpServerResponse>,
  error: PaymentFailure
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.flatMap(
    Paywall.replacementFor(paywall, error),
    Option.match({ onSome: Effect.succeed, onNone: () => Effect.map(canonicalAnswer(error), toResponse) })
  )

// The canonical answer, with a 500's detail logged (redacted) under the id the caller gets.
export const canonicalAnswer = (error: PaymentFailure): Effect.Effect<Answer> => {
  const canonical = failureAnswer(error)
  if (canonical.status !== 500) return Effect.succeed(canonical)
  return Effect.flatMap(correlationId, (requestId) =>
    Effect.as(
      logInternal("the amount of a paid call could not be determined", requestId, Cause.fail(error)),
      { ...canonical, body: { ...canonical.body, requestId } }
    ))
}

const SSE = /^\s*text\/event-stream/i
const encoder = new TextEncoder()

/**
 * A paid answer's streamed body that fails midway must not look complete: the platform would end
 * it cleanly (a truncated answer that reads as whole). The failure is logged (redacted) under a
 * correlation id; an event stream gets an `event: error` frame; then the connection is aborted, so
 * that the client's read fails. The settlement stands: it happened when the headers went out.
 */
export const guardStream = (
  response: HttpServerResponse.HttpServerResponse,
  request: HttpServerRequest.HttpServerRequest
): HttpServerResponse.HttpServerResponse => {
  const body = response.body
  if (body._tag !== "Stream") return response
  const sse = SSE.test(body.contentType) || SSE.test(response.headers["content-type"] ?? "")
  const guarded = Stream.catchAllCause(
    body.stream,
    (cause) =>
      Cause.isInterruptedOnly(cause) ? Stream.failCause(cause) : Stream.unwrap(
        Effect.map(correlationId, (requestId) =>
          Stream.concat(
            sse
              ? Stream.make(encoder.encode(
                `event: error\ndata: ${
                  JSON.stringify({
                    error: "Internal Server Error",
                    message: "The answer failed while streaming",
                    requestId
                  })
                }\n\n`
              ))
              : Stream.empty,
            Stream.fromEffect(
              Effect.zipRight(
                logInternal("a paid answer failed while streaming; the connection was aborted", requestId, cause),
                abortConnection(request)
              )
            ).pipe(
              Stream.drain,
              // The platform sees a failure (it must not end the body as complete), never the original.
              Stream.concat(Stream.fail(new InternalFailure({ requestId, what: "the answer failed while streaming" })))
            )
          ))
      )
  )
  return HttpServerResponse.setBody(response, HttpBody.stream(guarded, body.contentType, body.contentLength))
}

interface NodeSocketLike {
  readonly destroyed: boolean
  readonly write: (data: string, callback: (error?: unknown) => void) => boolean
  readonly destroy: () => void
}

const socketOf = (request: HttpServerRequest.HttpServerRequest): NodeSocketLike | undefined => {
  const socket = typeof request.source === "object" && request.source !== null
    ? (request.source as { readonly socket?: unknown }).socket
    : undefined
  return typeof socket === "object" && socket !== null &&
      typeof (socket as NodeSocketLike).write === "function" && typeof (socket as NodeSocketLike).destroy === "function"
    ? socket as NodeSocketLike
    : undefined
}

// Destroys the connection once what was already written is flushed (the error frame), before the
// platform could end the body cleanly. A server without a Node socket cannot abort a body: there the
// stream's failure is left to the platform.
const abortConnection = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const socket = socketOf(request)
    if (socket === undefined || socket.destroyed) return resume(Effect.void)
    try {
      socket.write("", () => {
        socket.destroy()
        resume(Effect.void)
      })
    } catch {
      socket.destroy()
      resume(Effect.void)
    }
  })
