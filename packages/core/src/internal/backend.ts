/**
 * One HTTP exchange with the Nevermined backend: constant headers, a per-attempt timeout, and the
 * mapping of every platform failure to a `FacilitatorError` that says truthfully whether the request
 * may have left.
 *
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { FacilitatorError, type FacilitatorOperation, TOKEN_ALREADY_USED_CODE } from "../PaymentError.js"
import type * as X402 from "../X402.js"
import * as Deadline from "./deadline.js"

/** The API version every call announces (docs/protocol.md §1). */
export const NEVERMINED_VERSION = "1.1"

/**
 * The largest answer read from the backend, by default: its answers are a few hundred bytes, so
 * 1 MiB is generous and still bounds the memory one call can take.
 *
 * @internal
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024

/**
 * A failed attempt, with what a retry policy needs to know beyond the public error.
 *
 * @internal
 */
export class AttemptFailed extends Data.TaggedError("AttemptFailed")<{
  readonly error: FacilitatorError
  /** The server's `Retry-After`, when it sent one. */
  readonly retryAfter: Option.Option<Duration.Duration>
}> {}

/**
 * What one exchange is.
 *
 * @internal
 */
export interface Call<A, I> {
  readonly operation: FacilitatorOperation
  readonly method: "GET" | "POST"
  readonly path: string
  /** The JSON body, already serialised. */
  readonly body?: string | undefined
  readonly schema: Schema.Schema<A, I>
  /**
   * A hand-written decoder of the usual answer, the same value as `schema` (pinned by a property
   * test): `undefined` for anything it does not recognise, which then goes through `schema` (its
   * refusals and their details are the Schema's).
   */
  readonly decode?: ((json: unknown) => A | undefined) | undefined
  /** This attempt's own timeout; none when a deadline around the whole operation bounds it. */
  readonly timeout?: Duration.Duration | undefined
  /** Secrets of this call (an access token) to scrub from any detail. */
  readonly secrets?: ReadonlyArray<string> | undefined
  /**
   * The services of the fiber the operation runs on, when the caller already holds them (one
   * `withFiberRuntime` per operation rather than one more per attempt).
   */
  readonly services?: ReadonlyMap<string, unknown> | undefined
  /**
   * The operation's end (epoch milliseconds, live clock), enforced inside the exchange: the lean
   * path's own timer aborts the request (no forked fiber); elsewhere a `Deadline.within`. Cut off,
   * the attempt fails `Timeout` with `requestSent: true` and this detail.
   */
  readonly cutOff?: { readonly at: number; readonly detail: string } | undefined
}

/**
 * @internal
 */
export interface Backend {
  readonly baseUrl: string
  readonly call: <A, I>(call: Call<A, I>) => Effect.Effect<A, AttemptFailed>
  /** Whether this backend calls `fetch` itself rather than through the `HttpClient`. */
  readonly lean: boolean
  /** Removes the key, the given secrets and anything shaped like a JWT from a text. */
  readonly scrub: (text: string, secrets?: ReadonlyArray<string>) => string
}

// Errors that mean no connection was ever made, so not a byte of the request left.
const NEVER_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
  "ConnectionRefused"
])

/**
 * The error codes found along a cause chain (`cause`, and the `errors` of an AggregateError, which
 * Node raises when every address of a host refused).
 *
 * @internal
 */
export const errorCodes = (error: unknown): ReadonlyArray<string> => {
  const codes: Array<string> = []
  const seen = new Set<unknown>()
  const visit = (u: unknown, depth: number): void => {
    if (depth > 8 || typeof u !== "object" || u === null || seen.has(u)) return
    seen.add(u)
    const code = (u as { readonly code?: unknown }).code
    if (typeof code === "string") codes.push(code)
    visit((u as { readonly cause?: unknown }).cause, depth + 1)
    const errors = (u as { readonly errors?: unknown }).errors
    if (Array.isArray(errors)) { for (const e of errors) visit(e, depth + 1) }
  }
  visit(error, 0)
  return codes
}

const JWT_LIKE = /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}/g
// Long opaque runs (base64 access tokens, such as v3 tokens) that no scrub list knows in advance.
// Hex values (`0x` addresses, transaction hashes) are kept: they are public and help debugging.
const OPAQUE_LIKE = /(?<![A-Za-z0-9+/_-])(?!0x)[A-Za-z0-9+/_-]{48,}={0,2}/g
const MAX_DETAIL = 200

const truncate = (text: string): string => text.length > MAX_DETAIL ? `${text.slice(0, MAX_DETAIL)}…` : text

// A backend error code such as `BCK.X402.0005`.
const CODE = /^[A-Z][A-Z0-9]*(?:\.[A-Z0-9_]+)+$/

const ownString = (record: unknown, key: string): string | undefined => {
  if (typeof record !== "object" || record === null || !Object.hasOwn(record, key)) return undefined
  const value = (record as Record<string, unknown>)[key]
  return typeof value === "string" ? value : undefined
}
const ownRecord = (record: unknown, key: string): unknown =>
  typeof record === "object" && record !== null && Object.hasOwn(record, key)
    ? (record as Record<string, unknown>)[key]
    : undefined

/**
 * The backend's error code and message in a non-2xx body, wherever the backend put them.
 *
 * @internal
 */
export const errorBody = (text: string): { readonly code?: string; readonly message?: string } => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return {}
  }
  const nested = ownRecord(json, "error")
  const candidates = [ownString(json, "code"), ownString(json, "errorCode"), ownString(nested, "code")]
  const code = candidates.find((c) => c !== undefined && CODE.test(c))
  const message = ownString(json, "message") ?? ownString(nested, "message") ?? ownString(json, "error")
  return {
    ...(code !== undefined ? { code } : {}),
    ...(message !== undefined ? { message } : {})
  }
}

// A path segment worth showing: a schema's own field name or an index, never a long server string.
const SHOWN_SEGMENT = /^(?:\d{1,6}|[A-Za-z_][A-Za-z0-9_]{0,31})$/

/**
 * What is wrong with an answer's shape, by path only. A `ParseError`'s own message quotes the values
 * it refused (`actual "..."`), and in an odd answer those may be an access token or other secrets,
 * so the detail names where the answer went wrong and never what it held.
 *
 * @internal
 */
export const shapeDetail = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) return "answer does not have the expected shape"
  const path = issue.path.map((segment) => {
    const text = String(segment)
    return SHOWN_SEGMENT.test(text) ? text : "…"
  }).join(".")
  const where = path.length > 0 ? path : "the top level"
  return issue._tag === "Missing"
    ? `answer does not have the expected shape: ${where} is missing`
    : `answer does not have the expected shape: unexpected value at ${where}`
}

/** Why a body could not be read in full. */
type ReadFailure = "TooLarge" | "Dropped"

/**
 * Reads a body as a stream and stops at `maxBytes`: whatever the server sends, a call holds at most
 * that much. Stopping early cancels the body, which closes the connection.
 */
const readCapped = (
  response: HttpClientResponse.HttpClientResponse,
  maxBytes: number
): Effect.Effect<string, ReadFailure> => {
  // `headers` converts the whole header list on every read: once here.
  const headers = response.headers
  const declared = Number(headers["content-length"])
  if (Number.isFinite(declared) && declared > maxBytes) {
    // Not a byte more than needed: take the first chunk only to cancel the body.
    return Stream.runForEachWhile(response.stream, () => Effect.succeed(false)).pipe(
      Effect.ignore,
      Effect.zipRight(Effect.fail("TooLarge" as const))
    )
  }
  const encoding = headers["content-encoding"]
  if (Number.isFinite(declared) && declared >= 0 && (encoding === undefined || encoding === "identity")) {
    // A declared length within the cap frames the body (the HTTP parser reads that many bytes and
    // no more), so it is read whole, without a stream per answer. Not when the body is encoded:
    // a compressed length says nothing of the decoded size.
    return Effect.mapError(response.text, (): ReadFailure => "Dropped")
  }
  return Effect.suspend(() => {
    const chunks: Array<Uint8Array> = []
    let size = 0
    let over = false
    return Stream.runForEachWhile(response.stream, (chunk) =>
      Effect.sync(() => {
        size += chunk.length
        if (size > maxBytes) {
          over = true
          return false
        }
        chunks.push(chunk)
        return true
      })).pipe(
        Effect.mapError((): ReadFailure => "Dropped"),
        Effect.flatMap(() => {
          if (over) return Effect.fail("TooLarge" as const)
          const bytes = new Uint8Array(size)
          let at = 0
          for (const chunk of chunks) {
            bytes.set(chunk, at)
            at += chunk.length
          }
          return Effect.succeed(new TextDecoder().decode(bytes))
        })
      )
  })
}

/**
 * Parses `Retry-After`: delay-seconds or an HTTP date.
 *
 * @internal
 */
export const parseRetryAfter = (value: string | undefined, now: number): Option.Option<Duration.Duration> => {
  if (value === undefined) return Option.none()
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Option.some(Duration.seconds(Number(trimmed)))
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? Option.none() : Option.some(Duration.millis(Math.max(0, date - now)))
}

/** What one exchange brought back, whichever way it went: an answer read whole, or why not. */
type Raw =
  | {
    readonly _tag: "Answer"
    readonly status: number
    readonly text: string
    readonly retryAfter: string | undefined
  }
  | { readonly _tag: "Unread"; readonly status: number; readonly failure: ReadFailure }
  | { readonly _tag: "Transport"; readonly cause: unknown }
  | { readonly _tag: "CutOff" }

// The context keys `FetchHttpClient` reads on every request: a `Fetch` or `RequestInit` service in
// the call's context must be honoured, so the lean path uses the first and leaves the second to the
// platform client.
const FETCH_KEY = "@effect/platform/FetchHttpClient/Fetch"
const REQUEST_INIT_KEY = "@effect/platform/FetchHttpClient/FetchOptions"

/**
 * Reads a web `Response` body, at most `maxBytes` of it: the same rules as `readCapped`.
 */
const readWebCapped = async (response: Response, maxBytes: number): Promise<Raw> => {
  const status = response.status
  // `headers` is a getter that builds a wrapper: read once.
  const headers = response.headers
  const lengthHeader = headers.get("content-length")
  const declared = lengthHeader === null ? Number.NaN : Number(lengthHeader)
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined)
    return { _tag: "Unread", status, failure: "TooLarge" }
  }
  // Only a refusal's `Retry-After` is read (as on the platform path).
  const retryAfter = status >= 200 && status < 300 ? undefined : headers.get("retry-after") ?? undefined
  const encoding = headers.get("content-encoding")
  if (Number.isFinite(declared) && declared >= 0 && (encoding === null || encoding === "identity")) {
    try {
      return { _tag: "Answer", status, text: await response.text(), retryAfter }
    } catch {
      return { _tag: "Unread", status, failure: "Dropped" }
    }
  }
  const body = response.body
  if (body === null) return { _tag: "Answer", status, text: "", retryAfter }
  const reader = body.getReader()
  const chunks: Array<Uint8Array> = []
  let size = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.length
      if (size > maxBytes) {
        await reader.cancel().catch(() => undefined)
        return { _tag: "Unread", status, failure: "TooLarge" }
      }
      chunks.push(value)
    }
  } catch {
    return { _tag: "Unread", status, failure: "Dropped" }
  }
  const bytes = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    bytes.set(chunk, at)
    at += chunk.length
  }
  return { _tag: "Answer", status, text: new TextDecoder().decode(bytes), retryAfter }
}

/**
 * Makes the exchange function over a client. The constant headers are built once here.
 *
 * With `lean`, an exchange calls `fetch` itself (the one `FetchHttpClient` would call, with the same
 * method, URL, headers and body) and reads the answer in one `Promise`, inside one `Effect.async`
 * whose signal aborts the request when the call is interrupted (a deadline, an interrupted caller).
 * `@effect/platform`'s client costs ~350 µs of CPU per request on top of `fetch` (an
 * `AbortController`, a `URL`, a `FinalizationRegistry` entry, a response wrapper, its context merge,
 * and a cached `Effect` run per body read), the largest part of a paid call over the wire. The same
 * bounds, failure kinds and redaction apply to both paths (the fault tests run on this one); the
 * caller decides when it is safe (`Nevermined`: only over its own marked fetch client, and only
 * when no tracer listens, so that the client's span is never lost).
 *
 * @internal
 */
export const make = (options: {
  readonly client: HttpClient.HttpClient
  readonly baseUrl: string
  readonly apiKey: Redacted.Redacted<string>
  /** Answers longer than this are not read (`TooLarge`). Default {@link DEFAULT_MAX_RESPONSE_BYTES}. */
  readonly maxResponseBytes?: number | undefined
  /** Call `fetch` directly (see above). Default false. */
  readonly lean?: boolean | undefined
}): Backend => {
  const { baseUrl, client } = options
  const maxBytes = Math.max(1, Math.floor(options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES))
  const rawKey = Redacted.value(options.apiKey)
  const keySecrets = [rawKey, ...rawKey.split(":").filter((part) => part.length >= 8)]
  const headers = {
    accept: "application/json",
    "content-type": "application/json",
    authorization: `Bearer ${rawKey}`,
    "nevermined-version": NEVERMINED_VERSION
  }
  // The lean path needs a URL `fetch` takes as is: what the platform would refuse before sending
  // (`InvalidUrl`) goes through the platform, which says so.
  const lean = options.lean === true && URL.canParse(baseUrl)

  // Requests are immutable, so the headers and URL of a route are built once and reused.
  const baseRequests = new Map<string, HttpClientRequest.HttpClientRequest>()
  const baseRequest = (method: "GET" | "POST", path: string): HttpClientRequest.HttpClientRequest => {
    const key = `${method} ${path}`
    const cached = baseRequests.get(key)
    if (cached !== undefined) return cached
    const request = HttpClientRequest.make(method)(baseUrl + path, { headers })
    // Paths with ids (plans, holders) vary; keep the map small rather than remember them all.
    if (baseRequests.size < 64) baseRequests.set(key, request)
    return request
  }

  const scrub = (text: string, secrets: ReadonlyArray<string> = []): string => {
    let out = text
    for (const secret of [...keySecrets, ...secrets]) {
      if (secret.length > 0) out = out.split(secret).join("[redacted]")
    }
    return truncate(out.replace(JWT_LIKE, "[redacted]").replace(OPAQUE_LIKE, "[redacted]"))
  }

  // Through the platform client: its response read within the cap, as a `Raw`.
  const viaClient = (method: "GET" | "POST", path: string, body: string | undefined): Effect.Effect<Raw> => {
    const base = baseRequest(method, path)
    const request = body === undefined ? base : HttpClientRequest.bodyText(base, body, "application/json")
    return client.execute(request).pipe(
      Effect.matchEffect({
        onFailure: (error: HttpClientError.HttpClientError): Effect.Effect<Raw> =>
          Effect.succeed(
            error._tag === "RequestError" && error.reason !== "Transport"
              ? { _tag: "Transport", cause: new NotSent(error.reason) }
              : { _tag: "Transport", cause: error.cause }
          ),
        onSuccess: (response) =>
          readCapped(response, maxBytes).pipe(
            Effect.match({
              onFailure: (failure): Raw => ({ _tag: "Unread", status: response.status, failure }),
              onSuccess: (text): Raw => ({
                _tag: "Answer",
                status: response.status,
                text,
                retryAfter: response.status >= 200 && response.status < 300
                  ? undefined
                  : response.headers["retry-after"]
              })
            })
          )
      })
    )
  }

  // Through the client, with a cut-off as a `Deadline.within` (a forked fiber and a timer).
  const viaClientWithin = (
    method: "GET" | "POST",
    path: string,
    body: string | undefined,
    cutOff: Call<unknown, unknown>["cutOff"]
  ): Effect.Effect<Raw> =>
    cutOff === undefined ? viaClient(method, path, body) : Deadline.within(
      viaClient(method, path, body),
      cutOff.at - Date.now(),
      () => "CutOff" as const
    ).pipe(Effect.catchAll(() => Effect.succeed<Raw>({ _tag: "CutOff" })))

  const viaPlatform = <A>(
    method: "GET" | "POST",
    path: string,
    body: string | undefined,
    cutOff: Call<unknown, unknown>["cutOff"],
    interpret: (raw: Raw) => Effect.Effect<A, AttemptFailed>
  ): Effect.Effect<A, AttemptFailed> => Effect.flatMap(viaClientWithin(method, path, body, cutOff), interpret)

  // `fetch` itself, the whole exchange in one Promise (see `make`); the fiber resumes once, with
  // the interpreted answer (an exit when the answer is the usual one).
  const viaFetch = <A>(
    method: "GET" | "POST",
    path: string,
    body: string | undefined,
    cutOff: Call<unknown, unknown>["cutOff"],
    interpret: (raw: Raw) => Effect.Effect<A, AttemptFailed>,
    known?: ReadonlyMap<string, unknown>
  ): Effect.Effect<A, AttemptFailed> =>
    known !== undefined
      ? viaFetchWith(known, method, path, body, cutOff, interpret)
      : Effect.withFiberRuntime<A, AttemptFailed>((fiber) =>
        viaFetchWith(fiber.currentContext.unsafeMap, method, path, body, cutOff, interpret)
      )

  const viaFetchWith = <A>(
    services: ReadonlyMap<string, unknown>,
    method: "GET" | "POST",
    path: string,
    body: string | undefined,
    cutOff: Call<unknown, unknown>["cutOff"],
    interpret: (raw: Raw) => Effect.Effect<A, AttemptFailed>
  ): Effect.Effect<A, AttemptFailed> => {
    if (services.has(REQUEST_INIT_KEY)) return viaPlatform(method, path, body, cutOff, interpret)
    const fetchFn = (services.get(FETCH_KEY) as typeof globalThis.fetch | undefined) ?? globalThis.fetch
    const url = baseUrl + path
    return Effect.async<A, AttemptFailed>((resume) => {
      // Aborted when the call is interrupted or cut off: the request and its body stop there.
      const controller = new AbortController()
      let done = false
      const timer = cutOff === undefined ? undefined : setTimeout(() => {
        if (done) return
        done = true
        controller.abort()
        resume(interpret({ _tag: "CutOff" }))
      }, Math.max(0, cutOff.at - Date.now()))
      let sent: Promise<Response>
      try {
        sent = fetchFn(url, { method, headers, body: body ?? null, signal: controller.signal })
      } catch (cause) {
        sent = Promise.reject(cause)
      }
      sent.then(
        (response) => readWebCapped(response, maxBytes),
        (cause): Raw => ({ _tag: "Transport", cause })
      ).then((raw) => {
        if (done) return
        done = true
        if (timer !== undefined) clearTimeout(timer)
        resume(interpret(raw))
      })
      return Effect.sync(() => {
        done = true
        if (timer !== undefined) clearTimeout(timer)
        controller.abort()
      })
    })
  }

  const send = lean ? viaFetch : viaPlatform

  const call = <A, I>(spec: Call<A, I>): Effect.Effect<A, AttemptFailed> => {
    const { operation } = spec
    const fail = (
      fields: Omit<ConstructorParameters<typeof FacilitatorError>[0], "operation">,
      retryAfter: Option.Option<Duration.Duration> = Option.none()
    ) => Effect.fail(new AttemptFailed({ error: new FacilitatorError({ operation, ...fields }), retryAfter }))

    const interpret = (raw: Raw): Effect.Effect<A, AttemptFailed> => {
      if (raw._tag === "Transport") {
        if (raw.cause instanceof NotSent) {
          return fail({ kind: "Unreachable", requestSent: false, detail: `request not sent (${raw.cause.reason})` })
        }
        const codes = errorCodes(raw.cause)
        const refused = codes.find((code) => NEVER_SENT_CODES.has(code))
        if (refused !== undefined) {
          return fail({ kind: "Unreachable", requestSent: false, detail: `connection failed (${refused})` })
        }
        return fail({
          kind: "ConnectionDropped",
          requestSent: true,
          detail: codes.length > 0 ? `connection lost (${codes[0]})` : "connection lost"
        })
      }
      if (raw._tag === "CutOff") {
        return fail({ kind: "Timeout", requestSent: true, detail: spec.cutOff?.detail ?? "cut off" })
      }
      if (raw._tag === "Unread") {
        return raw.failure === "TooLarge"
          ? fail({
            kind: "TooLarge",
            requestSent: true,
            status: raw.status,
            detail: `answer larger than ${maxBytes} bytes, not read`
          })
          : fail({
            kind: "ConnectionDropped",
            requestSent: true,
            status: raw.status,
            detail: "connection lost while reading the answer"
          })
      }
      const { status, text } = raw
      if (status < 200 || status >= 300) {
        const body = errorBody(text)
        const alreadyUsed = body.code === TOKEN_ALREADY_USED_CODE
        return Effect.flatMap(Clock.currentTimeMillis, (now) =>
          fail(
            {
              kind: "HttpStatus",
              requestSent: true,
              status,
              ...(body.code !== undefined ? { code: body.code } : {}),
              ...(alreadyUsed ? { reason: "TokenAlreadyUsed" as const } : {}),
              ...(alreadyUsed
                ? { detail: "access token already used: a single-use token settles once; mint a new one" }
                : body.message !== undefined
                ? { detail: scrub(body.message, spec.secrets) }
                : {})
            },
            parseRetryAfter(raw.retryAfter, now)
          ))
      }
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        return fail({ kind: "MalformedResponse", requestSent: true, status, detail: "answer is not JSON" })
      }
      // Synchronous: the usual answer through the hand-written decoder, anything else through the
      // schema; either way an exit, no decoding fiber work.
      const known = spec.decode?.(json)
      if (known !== undefined) return Effect.succeed(known)
      const decoded = decoderOf(spec.schema)(json)
      return decoded._tag === "Right"
        ? Effect.succeed(decoded.right)
        : fail({ kind: "MalformedResponse", requestSent: true, status, detail: shapeDetail(decoded.left) })
    }

    const exchange = send(spec.method, spec.path, spec.body, spec.cutOff, interpret, spec.services)

    const timeout = spec.timeout
    if (timeout === undefined) return exchange
    return exchange.pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new AttemptFailed({
            error: new FacilitatorError({
              operation,
              kind: "Timeout",
              requestSent: true,
              detail: `no answer within ${Duration.format(timeout)}`
            }),
            retryAfter: Option.none()
          })
      })
    )
  }

  return { baseUrl, call, scrub, lean }
}

// One compiled decoder per answer schema, not one per call. The answer schemas are synchronous.
const decoders = new WeakMap<Schema.Schema.Any, (u: unknown) => Either.Either<unknown, ParseResult.ParseError>>()
const decoderOf = <A, I>(schema: Schema.Schema<A, I>): (u: unknown) => Either.Either<A, ParseResult.ParseError> => {
  let decode = decoders.get(schema)
  if (decode === undefined) {
    decode = Schema.decodeUnknownEither(schema, { errors: "first" })
    decoders.set(schema, decode)
  }
  return decode as (u: unknown) => Either.Either<A, ParseResult.ParseError>
}

// ---------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------

// The JSON of each PaymentRequired sent, by identity: a paywall sends the same value (cached per
// paywall and resource URL, never mutated: its type is readonly throughout) on every call, and
// serialising it is most of a body's cost.
const paymentRequiredJson = new WeakMap<X402.PaymentRequired, string>()

/**
 * The body of a verify or settle request: the bytes `JSON.stringify` writes for
 * `{ paymentRequired, x402AccessToken, maxAmount: String(maxAmount), agentRequestId? }` (pinned by
 * a property test), with the PaymentRequired's JSON made once per value.
 *
 * @internal
 */
export const encodeBody = (
  paymentRequired: X402.PaymentRequired,
  token: string,
  maxAmount: number,
  agentRequestId: string | undefined
): string => {
  let required = paymentRequiredJson.get(paymentRequired)
  if (required === undefined) {
    required = JSON.stringify(paymentRequired)
    paymentRequiredJson.set(paymentRequired, required)
  }
  const id = agentRequestId !== undefined ? `,"agentRequestId":${JSON.stringify(agentRequestId)}` : ""
  return `{"paymentRequired":${required},"x402AccessToken":${JSON.stringify(token)},"maxAmount":${
    JSON.stringify(String(maxAmount))
  }${id}}`
}

// ---------------------------------------------------------------------------
// The usual answers, decoded by hand
// ---------------------------------------------------------------------------

const hasOwn = Object.prototype.hasOwnProperty

// `Schema.optionalWith(Schema.String, { nullable: true, exact: true })`: absent or null → no key,
// a string → itself, anything else → not recognised (`false`).
const optionalString = (o: object, key: string, out: Record<string, unknown>): boolean => {
  if (!hasOwn.call(o, key)) return true
  const value = (o as Record<string, unknown>)[key]
  if (value === null) return true
  if (typeof value !== "string") return false
  out[key] = value
  return true
}

const isObject = (u: unknown): u is object => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * `X402.VerifyResponse` decoded by hand: the same value, keys in the schema's order (pinned by a
 * property test), or `undefined` for anything off the schema's types (then the schema decides).
 *
 * @internal
 */
export const decodeVerifyResponse = (json: unknown): X402.VerifyResponse | undefined => {
  if (!isObject(json) || !hasOwn.call(json, "isValid")) return undefined
  const o = json as Record<string, unknown>
  const isValid = o["isValid"]
  if (typeof isValid !== "boolean") return undefined
  const out: Record<string, unknown> = { isValid }
  if (
    !optionalString(o, "invalidReason", out) || !optionalString(o, "payer", out) ||
    !optionalString(o, "network", out) || !optionalString(o, "agentRequestId", out)
  ) return undefined
  if (hasOwn.call(o, "urlMatching")) out["urlMatching"] = o["urlMatching"]
  if (hasOwn.call(o, "agentRequest")) out["agentRequest"] = o["agentRequest"]
  return out as unknown as X402.VerifyResponse
}

// `Schema.optionalWith(Schema.String, { nullable: true, default: () => "" })`.
const defaultedString = (o: Record<string, unknown>, key: string, out: Record<string, unknown>): boolean => {
  const value = hasOwn.call(o, key) ? o[key] : undefined
  if (value === undefined || value === null) {
    out[key] = ""
    return true
  }
  if (typeof value !== "string") return false
  out[key] = value
  return true
}

// `Schema.optionalWith(X402.Amount, { nullable: true, exact: true })`: a number becomes its string.
const optionalAmount = (o: Record<string, unknown>, key: string, out: Record<string, unknown>): boolean => {
  if (!hasOwn.call(o, key)) return true
  const value = o[key]
  if (value === null) return true
  if (typeof value === "string") out[key] = value
  else if (typeof value === "number") out[key] = String(value)
  else return false
  return true
}

/**
 * `X402.SettleResponse` decoded by hand: the same value, keys in the schema's order (pinned by a
 * property test), or `undefined` for anything off the schema's types (then the schema decides).
 *
 * @internal
 */
export const decodeSettleResponse = (json: unknown): X402.SettleResponse | undefined => {
  if (!isObject(json) || !hasOwn.call(json, "success")) return undefined
  const o = json as Record<string, unknown>
  const success = o["success"]
  if (typeof success !== "boolean") return undefined
  const out: Record<string, unknown> = { success }
  if (
    !optionalString(o, "errorReason", out) || !optionalString(o, "payer", out) ||
    !defaultedString(o, "transaction", out) || !defaultedString(o, "network", out) ||
    !optionalAmount(o, "creditsRedeemed", out) || !optionalAmount(o, "remainingBalance", out) ||
    !optionalString(o, "orderTx", out)
  ) return undefined
  return out as unknown as X402.SettleResponse
}

/** A request the platform refused before sending it (an invalid URL, a body it could not encode). */
class NotSent {
  constructor(readonly reason: string) {}
}

/** @internal */
export interface RetrySettings {
  readonly maxAttempts: number
  readonly baseDelay: Duration.Duration
  readonly maxDelay: Duration.Duration
}

/** @internal */
export const retrySettings = (options?: {
  readonly maxAttempts?: number | undefined
  readonly baseDelay?: Duration.DurationInput | undefined
  readonly maxDelay?: Duration.DurationInput | undefined
}): RetrySettings => ({
  maxAttempts: Math.max(1, Math.floor(options?.maxAttempts ?? 3)),
  baseDelay: Duration.decode(options?.baseDelay ?? Duration.millis(100)),
  maxDelay: Duration.decode(options?.maxDelay ?? Duration.seconds(2))
})

/** @internal */
export const isTransient = (failure: AttemptFailed): boolean => {
  const error = failure.error
  if (error.kind === "Unreachable") return true
  return error.kind === "HttpStatus" && (error.status === 429 || error.status === 502 || error.status === 503 ||
    error.status === 504)
}

/** @internal */
export const isNeverSent = (failure: AttemptFailed): boolean => !failure.error.requestSent

/**
 * What settle may retry: a request that provably never left, or a 429, which is the backend's
 * definite "not applied, come back later". Anything else after the request left may have burned
 * the credits.
 *
 * @internal
 */
export const isSafeSettleRetry = (failure: AttemptFailed): boolean =>
  isNeverSent(failure) || (failure.error.kind === "HttpStatus" && failure.error.status === 429)

/**
 * Runs attempts until one succeeds, a failure is not retryable, the attempts are spent, or the next
 * wait would not fit before the deadline. A hand-written loop rather than `Effect.retry`, because the
 * wait depends on the failure (`Retry-After`) and on the time left, and the caller must see the last
 * real failure rather than a timeout when the budget runs out.
 */
export const withRetries = <A>(options: {
  readonly attempt: (timeout: Duration.Duration) => Effect.Effect<A, AttemptFailed>
  readonly retryable: (failure: AttemptFailed) => boolean
  readonly budget: Duration.Duration
  readonly maxAttempts: number
  readonly baseDelay: Duration.Duration
  readonly maxDelay: Duration.Duration
}): Effect.Effect<A, FacilitatorError> =>
  Effect.flatMap(
    Clock.currentTimeMillis,
    (start) => retryLoop(options, options.attempt, start + Duration.toMillis(options.budget))
  )

// `attempt` apart from the settings: a caller with its own attempt passes it here rather than a
// spread copy of its options (one object fewer per operation).
const retryLoop = <A>(
  options: {
    readonly retryable: (failure: AttemptFailed) => boolean
    readonly maxAttempts: number
    readonly baseDelay: Duration.Duration
    readonly maxDelay: Duration.Duration
  },
  attemptOf: (timeout: Duration.Duration) => Effect.Effect<A, AttemptFailed>,
  deadline: number,
  timed = true
): Effect.Effect<A, FacilitatorError> => {
  // Untimed (the attempts enforce the end themselves), an attempt needs no clock read first.
  const loop = (attempt: number): Effect.Effect<A, FacilitatorError> =>
    timed
      ? Effect.flatMap(Clock.currentTimeMillis, (now) => run(attempt, Duration.millis(Math.max(0, deadline - now))))
      : run(attempt, Duration.zero)
  const run = (attempt: number, timeLeft: Duration.Duration): Effect.Effect<A, FacilitatorError> =>
    Effect.catchAll(attemptOf(timeLeft), (failure) => {
      if (attempt >= options.maxAttempts || !options.retryable(failure)) return Effect.fail(failure.error)
      return Effect.gen(function*() {
        const backoff = Math.min(
          Duration.toMillis(options.maxDelay),
          Duration.toMillis(options.baseDelay) * 2 ** (attempt - 1)
        )
        // Full jitter on the backoff; a server's Retry-After is honoured as given.
        const wait = Option.match(failure.retryAfter, {
          onNone: () => Effect.map(Random.nextRange(backoff / 2, backoff), Math.round),
          onSome: (d) => Effect.succeed(Duration.toMillis(d))
        })
        const delay = yield* wait
        const at = yield* Clock.currentTimeMillis
        if (at + delay >= deadline) return yield* Effect.fail(failure.error)
        yield* Effect.logDebug("Nevermined: retrying").pipe(
          Effect.annotateLogs({
            operation: failure.error.operation,
            attempt,
            kind: failure.error.kind,
            status: failure.error.status ?? "-",
            delayMs: delay
          })
        )
        yield* Effect.sleep(Duration.millis(delay))
        return yield* loop(attempt + 1)
      })
    })
  return loop(1)
}

/**
 * `withRetries` under one deadline for the whole operation: the budget, capped by the call's
 * `deadline` (epoch milliseconds) when there is one. One timer per operation, not a timeout race per
 * attempt; the retry rules are the same (a wait that would not fit before the deadline fails at once
 * with the last real failure). Past the call's deadline nothing is sent (`requestSent: false`); cut
 * off in flight, the request may have landed (`requestSent: true`).
 *
 * @internal
 */
export const withRetriesWithin = <A>(options: {
  readonly operation: FacilitatorOperation
  /** One attempt; with `cutOff`, the attempt enforces the operation's end itself. */
  readonly attempt: (cutOff?: { readonly at: number; readonly detail: string }) => Effect.Effect<A, AttemptFailed>
  /**
   * The attempts enforce the end themselves (a lean exchange's own timer): on the live clock no
   * `Deadline.within` (a forked fiber per operation) is needed.
   */
  readonly inlineCutOff?: boolean | undefined
  readonly retryable: (failure: AttemptFailed) => boolean
  readonly budget: Duration.Duration
  readonly deadline?: number | undefined
  readonly maxAttempts: number
  readonly baseDelay: Duration.Duration
  readonly maxDelay: Duration.Duration
}): Effect.Effect<A, FacilitatorError> => Effect.withFiberRuntime((fiber) => retriesWithinOn(fiber, options))

// The budget is the layer's own `Duration`: its text is made once, not on every operation.
const budgetDetails = new WeakMap<Duration.Duration, string>()
const budgetDetail = (budget: Duration.Duration): string => {
  let detail = budgetDetails.get(budget)
  if (detail === undefined) {
    detail = `no answer within ${Duration.format(budget)}`
    budgetDetails.set(budget, detail)
  }
  return detail
}

/**
 * `withRetriesWithin` on the fiber the caller already holds (inside its own `withFiberRuntime`).
 *
 * @internal
 */
export const retriesWithinOn = <A>(
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  options: Parameters<typeof withRetriesWithin<A>>[0]
): Effect.Effect<A, FacilitatorError> => {
  // On the live clock, `Date.now()` is the clock: no clock read through the fiber.
  const live = Deadline.isLiveClock(fiber)
  const within = (start: number): Effect.Effect<A, FacilitatorError> => {
    const { deadline, operation } = options
    if (deadline !== undefined && deadline <= start) {
      return Effect.fail(Deadline.passed(operation))
    }
    const budgetEnd = start + Duration.toMillis(options.budget)
    const byCall = deadline !== undefined && deadline < budgetEnd
    const end = byCall ? deadline : budgetEnd
    const detail = byCall ? "cut off at the call's deadline" : budgetDetail(options.budget)
    if (live && options.inlineCutOff === true) {
      // A wait that would not fit before `end` is refused by the loop; an attempt is cut off by
      // its own timer: nothing else can outlive the end.
      const cutOff = { at: end, detail }
      return retryLoop(options, () => options.attempt(cutOff), end, false)
    }
    return Deadline.within(
      retryLoop(options, () => options.attempt(), end),
      end - start,
      () => new FacilitatorError({ operation, kind: "Timeout", requestSent: true, detail })
    )
  }
  return live ? within(Date.now()) : Effect.flatMap(Clock.currentTimeMillis, within)
}
