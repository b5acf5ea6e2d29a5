/**
 * The x402 v2 wire types, Nevermined flavour: PaymentRequired, the facilitator's verify and settle
 * answers, the AgentCore receipt, and the base64 header codec.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

/**
 * The x402 protocol version we speak.
 *
 * @since 0.1.0
 * @category constants
 */
export const X402_VERSION = 2

/**
 * Header that carries the base64 PaymentRequired on a payment-required answer.
 *
 * @since 0.1.0
 * @category constants
 */
export const PAYMENT_REQUIRED_HEADER = "payment-required"

/**
 * Header that carries the caller's x402 access token.
 *
 * @since 0.1.0
 * @category constants
 */
export const PAYMENT_SIGNATURE_HEADER = "payment-signature"

/**
 * Header that carries the base64 settlement receipt on a paid answer.
 *
 * @since 0.1.0
 * @category constants
 */
export const PAYMENT_RESPONSE_HEADER = "payment-response"

/**
 * Nevermined payment schemes: crypto plans settle through ERC-4337, fiat plans through a card delegation.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Scheme = /* @__PURE__ */ Schema.Literal("nvm:erc4337", "nvm:card-delegation")

/**
 * @since 0.1.0
 * @category models
 */
export type Scheme = typeof Scheme.Type

// `null` and absent are the same to every peer (docs/protocol.md), so optional fields accept both and
// decode to absent; encoding omits them (compact JSON, no nulls).
const optionalString = /* @__PURE__ */ Schema.optionalWith(Schema.String, { nullable: true, exact: true })
// One property signature per shape, shared by the structs below: each is built once at import.
const optionalUnknown = /* @__PURE__ */ Schema.optionalWith(Schema.Unknown, { exact: true })
const stringOrEmpty = /* @__PURE__ */ Schema.optionalWith(Schema.String, { nullable: true, default: () => "" })

/**
 * What is being paid for.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Resource = /* @__PURE__ */ Schema.Struct({
  url: Schema.String,
  description: optionalString,
  mimeType: optionalString
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Resource extends Schema.Schema.Type<typeof Resource> {}

/**
 * Nevermined's `extra` on an `accepts` entry.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AcceptsExtra = /* @__PURE__ */ Schema.Struct({
  version: optionalString,
  agentId: optionalString,
  httpVerb: optionalString
})

/**
 * One way to pay: a plan, on a network, through a scheme.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Accepted = /* @__PURE__ */ Schema.Struct({
  scheme: Schema.String,
  network: Schema.String,
  planId: Schema.String,
  extra: /* @__PURE__ */ Schema.optionalWith(AcceptsExtra, { exact: true })
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Accepted extends Schema.Schema.Type<typeof Accepted> {}

/**
 * The x402 v2 PaymentRequired: sent (base64) in the `payment-required` header of a payment-required
 * answer, and sent to the facilitator with every verify and settle.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PaymentRequired = /* @__PURE__ */ Schema.Struct({
  x402Version: /* @__PURE__ */ Schema.Literal(X402_VERSION),
  resource: Resource,
  accepts: /* @__PURE__ */ Schema.NonEmptyArray(Accepted),
  extensions: /* @__PURE__ */ Schema.optionalWith(
    /* @__PURE__ */ Schema.Record({ key: Schema.String, value: Schema.Unknown }),
    { exact: true }
  )
})

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentRequired extends Schema.Schema.Type<typeof PaymentRequired> {}

/**
 * A credit amount on the wire: a decimal string. Numbers are tolerated on decode, since some
 * backends answer them unquoted.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Amount = /* @__PURE__ */ Schema.transform(
  /* @__PURE__ */ Schema.Union(Schema.String, Schema.Number),
  Schema.String,
  {
    strict: true,
    decode: (a) => typeof a === "number" ? String(a) : a,
    encode: (s) => s
  }
)

/**
 * The facilitator's answer to verify.
 *
 * @since 0.1.0
 * @category schemas
 */
export const VerifyResponse = /* @__PURE__ */ Schema.Struct({
  isValid: Schema.Boolean,
  invalidReason: optionalString,
  payer: optionalString,
  network: optionalString,
  agentRequestId: optionalString,
  urlMatching: optionalUnknown,
  agentRequest: optionalUnknown
})

// Python writes `null` for an amount the facilitator did not give: read as absent.
const optionalAmount = /* @__PURE__ */ Schema.optionalWith(Amount, { nullable: true, exact: true })

/**
 * @since 0.1.0
 * @category models
 */
export interface VerifyResponse extends Schema.Schema.Type<typeof VerifyResponse> {}

/**
 * The facilitator's answer to settle. `transaction` is `""` when nothing was settled.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SettleResponse = /* @__PURE__ */ Schema.Struct({
  success: Schema.Boolean,
  errorReason: optionalString,
  payer: optionalString,
  transaction: stringOrEmpty,
  network: stringOrEmpty,
  creditsRedeemed: optionalAmount,
  remainingBalance: optionalAmount,
  orderTx: optionalString
})

/**
 * @since 0.1.0
 * @category models
 */
export interface SettleResponse extends Schema.Schema.Type<typeof SettleResponse> {}

/**
 * The receipt in the `payment-response` header of an AgentCore answer (note: `transactionHash`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Receipt = /* @__PURE__ */ Schema.Struct({
  success: Schema.Boolean,
  transactionHash: Schema.String,
  network: Schema.String,
  creditsRedeemed: optionalAmount,
  remainingBalance: optionalAmount,
  errorReason: optionalString
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Receipt extends Schema.Schema.Type<typeof Receipt> {}

/**
 * The settlement as it appears in an MCP result's `_meta.x402` (note: `transaction`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const MetaX402 = /* @__PURE__ */ Schema.Struct({
  success: Schema.Boolean,
  transaction: Schema.String,
  network: Schema.String,
  creditsRedeemed: optionalAmount,
  remainingBalance: optionalAmount,
  errorReason: optionalString
})

/**
 * @since 0.1.0
 * @category models
 */
export interface MetaX402 extends Schema.Schema.Type<typeof MetaX402> {}

// Assigned field by field, not spread from conditional literals: this runs on every paid call. The
// transaction goes last, under the name each form gives it.
const pickSettlement = (settlement: SettleResponse, transactionKey: "transactionHash" | "transaction") => {
  const picked: { [key: string]: unknown } = { success: settlement.success, network: settlement.network }
  if (settlement.creditsRedeemed !== undefined) picked.creditsRedeemed = settlement.creditsRedeemed
  if (settlement.remainingBalance !== undefined) picked.remainingBalance = settlement.remainingBalance
  if (settlement.errorReason !== undefined) picked.errorReason = settlement.errorReason
  picked[transactionKey] = settlement.transaction
  return picked
}

/**
 * The AgentCore `payment-response` receipt of a settlement.
 *
 * @since 0.1.0
 * @category constructors
 */
export const receiptOf = (settlement: SettleResponse): Receipt =>
  pickSettlement(settlement, "transactionHash") as unknown as Receipt

/**
 * The `_meta.x402` form of a settlement.
 *
 * @since 0.1.0
 * @category constructors
 */
export const metaOf = (settlement: SettleResponse): MetaX402 =>
  pickSettlement(settlement, "transaction") as unknown as MetaX402

/**
 * What a PaymentRequired is built from.
 *
 * @since 0.1.0
 * @category models
 */
export interface PaymentRequiredOptions {
  /** One `accepts` entry per plan, in this order. */
  readonly planIds: ReadonlyArray<string>
  readonly agentId?: string | undefined
  /** The protected resource's URL; `""` when unknown. */
  readonly endpoint?: string | undefined
  readonly httpVerb?: string | undefined
  /** The network of every entry, or of each plan. */
  readonly network: string | ((planId: string) => string)
  readonly scheme?: string | undefined
  readonly description?: string | undefined
  readonly mimeType?: string | undefined
}

/**
 * Builds a PaymentRequired: one `accepts` entry per plan, all with the same `extra`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const paymentRequired = (options: PaymentRequiredOptions): PaymentRequired => {
  const extra = {
    version: "1",
    ...(options.agentId ? { agentId: options.agentId } : {}),
    ...(options.httpVerb ? { httpVerb: options.httpVerb } : {})
  }
  const network = options.network
  const accepts = options.planIds.map((planId): Accepted => ({
    scheme: options.scheme ?? "nvm:erc4337",
    network: typeof network === "function" ? network(planId) : network,
    planId,
    extra
  }))
  if (accepts.length === 0) {
    throw new RangeError("X402.paymentRequired: at least one plan id is required")
  }
  return {
    x402Version: X402_VERSION,
    resource: {
      url: options.endpoint ?? "",
      // Like the Python SDK: `description` and `mimeType` go on the wire only when configured
      // (docs/protocol.md §2); a default here would change every verify and settle body.
      ...(options.description !== undefined ? { description: options.description } : {}),
      ...(options.mimeType !== undefined ? { mimeType: options.mimeType } : {})
    },
    accepts: accepts as unknown as PaymentRequired["accepts"],
    extensions: {}
  }
}

// ---------------------------------------------------------------------------
// Header codec
// ---------------------------------------------------------------------------

/**
 * A base64 JSON header that could not be decoded, with what was wrong with it.
 *
 * @since 0.1.0
 * @category errors
 */
export class HeaderDecodeError
  extends /* @__PURE__ */ Schema.TaggedError<HeaderDecodeError>("@effect-x402/core/HeaderDecodeError")(
    "HeaderDecodeError",
    {
      header: Schema.String,
      reason: /* @__PURE__ */ Schema.Literal("NotBase64", "NotJson", "WrongShape"),
      detail: Schema.String
    }
  )
{
  override get message(): string {
    const what = this.reason === "NotBase64"
      ? "is not base64"
      : this.reason === "NotJson"
      ? "is not base64 JSON"
      : "has the wrong shape"
    return `Header ${this.header} ${what}: ${this.detail}`
  }
}

/**
 * Headers longer than this are refused before any decoding work: no legitimate PaymentRequired or
 * receipt comes close, and it bounds the cost of hostile input.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_HEADER_LENGTH = 64 * 1024

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const utf8Decoder = /* @__PURE__ */ new TextDecoder("utf-8", { fatal: true })
const utf8Encoder = /* @__PURE__ */ new TextEncoder()
// Node's Buffer is several times faster than a JS loop; elsewhere (browsers, workers) use atob/btoa.
interface BufferLike {
  from(s: string, encoding: "utf8" | "base64"): Uint8Array & { toString(encoding: "base64"): string }
}
const NodeBuffer = (globalThis as unknown as { Buffer?: BufferLike }).Buffer

const bytesToBase64 = (bytes: Uint8Array): string => {
  let binary = ""
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  }
  return btoa(binary)
}

/**
 * Standard, padded base64 of the UTF-8 of a string.
 *
 * @since 0.1.0
 * @category codec
 */
export const encodeBase64 = (text: string): string =>
  NodeBuffer ? NodeBuffer.from(text, "utf8").toString("base64") : bytesToBase64(utf8Encoder.encode(text))

/**
 * Strict base64 decoding to UTF-8 text: standard alphabet, padded, valid UTF-8.
 *
 * @since 0.1.0
 * @category codec
 */
export const decodeBase64 = (value: string): Either.Either<string, string> => {
  if (value.length > MAX_HEADER_LENGTH) return Either.left(`longer than ${MAX_HEADER_LENGTH} characters`)
  const trimmed = value.trim()
  if (trimmed.length === 0) return Either.left("empty")
  if (!BASE64.test(trimmed)) return Either.left("not base64")
  try {
    const bytes = NodeBuffer
      ? NodeBuffer.from(trimmed, "base64")
      : Uint8Array.from(atob(trimmed), (c) => c.charCodeAt(0))
    return Either.right(utf8Decoder.decode(bytes))
  } catch {
    return Either.left("not UTF-8")
  }
}

/**
 * A header codec for one wire type: compact JSON in standard base64.
 *
 * @since 0.1.0
 * @category codec
 */
export interface HeaderCodec<A> {
  readonly encode: (value: A) => string
  readonly decode: (header: string) => Effect.Effect<A, HeaderDecodeError>
  readonly decodeEither: (header: string) => Either.Either<A, HeaderDecodeError>
}

/**
 * Makes the header codec of a schema. Decoding tells apart input that is not base64, base64 that is
 * not JSON, and JSON of the wrong shape; it never throws.
 *
 * @since 0.1.0
 * @category codec
 */
export const headerCodec = <A, I>(header: string, schema: Schema.Schema<A, I>): HeaderCodec<A> => {
  // Compiled on first use, not at import: a cold start pays only for the codecs its calls use.
  let encoder: ((value: A) => I) | undefined
  let decoder: ((u: unknown) => Either.Either<A, ParseResult.ParseError>) | undefined
  const encodeSync = (value: A): I => (encoder ??= Schema.encodeSync(schema))(value)
  const decodeUnknown = (u: unknown) => (decoder ??= Schema.decodeUnknownEither(schema, { errors: "first" }))(u)
  const decodeEither = (value: string): Either.Either<A, HeaderDecodeError> => {
    if (typeof value !== "string") {
      return Either.left(new HeaderDecodeError({ header, reason: "NotBase64", detail: "not a string" }))
    }
    const text = decodeBase64(value)
    if (Either.isLeft(text)) {
      return Either.left(new HeaderDecodeError({ header, reason: "NotBase64", detail: text.left }))
    }
    let json: unknown
    try {
      json = JSON.parse(text.right)
    } catch {
      return Either.left(
        new HeaderDecodeError({ header, reason: "NotJson", detail: "base64 of text that is not JSON" })
      )
    }
    return Either.mapLeft(decodeUnknown(json), (error) =>
      new HeaderDecodeError({
        header,
        reason: "WrongShape",
        detail: ParseResult.TreeFormatter.formatErrorSync(error)
      }))
  }
  return {
    encode: (value) => encodeBase64(JSON.stringify(encodeSync(value))),
    decodeEither,
    decode: (value) => Effect.suspend(() => decodeEither(value))
  }
}

/**
 * Codec of the `payment-required` header.
 *
 * @since 0.1.0
 * @category codec
 */
export const PaymentRequiredHeader: HeaderCodec<PaymentRequired> = /* @__PURE__ */ headerCodec(
  PAYMENT_REQUIRED_HEADER,
  PaymentRequired
)

/**
 * Codec of the AgentCore `payment-response` header (the receipt).
 *
 * @since 0.1.0
 * @category codec
 */
export const ReceiptHeader: HeaderCodec<Receipt> = /* @__PURE__ */ headerCodec(PAYMENT_RESPONSE_HEADER, Receipt)

/**
 * Codec of the plain-HTTP `payment-response` header (the facilitator's settle answer).
 *
 * @since 0.1.0
 * @category codec
 */
export const SettleResponseHeader: HeaderCodec<SettleResponse> = /* @__PURE__ */ headerCodec(
  PAYMENT_RESPONSE_HEADER,
  SettleResponse
)

/**
 * The version of an access token, read from the token itself as the backend does: 3 (single-use,
 * bound to an agent, a resource URL and a verb) when its decoded payload carries a non-empty string
 * `payload.authorization.nonce`, else 2 (reusable). Never what was asked for: a backend that predates
 * v3 drops the request, and a newer one may mint v3 unasked. Nothing is verified here.
 *
 * @since 0.2.0
 * @category tokens
 */
export const accessTokenVersion = (token: Redacted.Redacted<string> | string): 2 | 3 => {
  const text = typeof token === "string" ? token : Redacted.value(token)
  // Tokens are base64url (or base64) JSON; an opaque token is read as v2.
  if (text.length > MAX_HEADER_LENGTH || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) return 2
  const standard = text.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "")
  const decoded = decodeBase64(standard + "=".repeat((4 - (standard.length % 4)) % 4))
  if (Either.isLeft(decoded)) return 2
  let json: unknown
  try {
    json = JSON.parse(decoded.right)
  } catch {
    return 2
  }
  const nonce = (json as { payload?: { authorization?: { nonce?: unknown } } } | null)?.payload?.authorization?.nonce
  return typeof nonce === "string" && nonce.trim() !== "" ? 3 : 2
}

/**
 * Whether an access token is single-use (v3): spent by its first settle, so never to be reused.
 *
 * @since 0.2.0
 * @category tokens
 */
export const isSingleUseAccessToken = (token: Redacted.Redacted<string> | string): boolean =>
  accessTokenVersion(token) === 3
