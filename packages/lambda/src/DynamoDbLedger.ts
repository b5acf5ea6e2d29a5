/**
 * The settlement ledger in one DynamoDB table, shared by every Lambda instance of an agent. Import
 * it by path (`@effect-x402/lambda/DynamoDbLedger`): it is not in the package's index, so a bundle
 * that does not use it carries no AWS SDK.
 *
 * Table: partition key `pk` (string), TTL on `expiresAt` (epoch seconds). Items:
 * - `req#<requestId>`: the entry (state, payer fingerprint, amount, receipt, stored result);
 * - `key#<payer>#<key>`: an idempotency key, naming the request id it was first recorded under.
 *
 * Every transition is a conditional write (`attribute_not_exists(pk)`, `#state = :expected`), so two
 * instances never both move one entry; reads are strongly consistent; an expired row is absent even
 * before DynamoDB's TTL sweep deletes it (which may take days).
 *
 * @since 0.2.0
 */
import {
  type AttributeValue,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand
} from "@aws-sdk/client-dynamodb"
import * as SettlementLedger from "@effect-x402/core/SettlementLedger"
import * as X402 from "@effect-x402/core/X402"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import * as Https from "node:https"

const { LedgerError, SettlementLedger: Tag } = SettlementLedger
type LedgerError = SettlementLedger.LedgerError
type Entry = SettlementLedger.Entry

/**
 * Options of the DynamoDB ledger.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options extends SettlementLedger.Options {
  readonly tableName: string
  /** Bring your own client (its timeouts and retries are then yours); it is not destroyed with the layer. */
  readonly client?: DynamoDBClient | undefined
  /** For tests and local servers; in Lambda the SDK finds the region and credentials itself. */
  readonly endpoint?: string | undefined
  readonly region?: string | undefined
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string } | undefined
  /**
   * Connection and request timeout of one attempt. Default 1 second: a ledger write takes
   * milliseconds, and a paid call should fail closed quickly rather than wait out the Lambda.
   */
  readonly timeout?: Duration.DurationInput | undefined
  /** Attempts per operation, first included (the SDK retries throttling and 5xx). Default 2. */
  readonly maxAttempts?: number | undefined
}

/**
 * A client for Lambda: short timeouts, few attempts, keep-alive (the SDK's default agent opens a
 * connection per request on Node 20).
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeClient = (options: Omit<Options, "tableName" | "client">): DynamoDBClient => {
  const millis = Duration.toMillis(Duration.decode(options.timeout ?? "1 second"))
  return new DynamoDBClient({
    ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
    ...(options.region !== undefined ? { region: options.region } : {}),
    ...(options.credentials !== undefined ? { credentials: { ...options.credentials } } : {}),
    maxAttempts: options.maxAttempts ?? 2,
    requestHandler: {
      connectionTimeout: millis,
      requestTimeout: millis,
      // Else a request past its timeout only logs a warning and goes on waiting.
      throwOnRequestTimeout: true,
      httpAgent: new Http.Agent({ keepAlive: true }),
      httpsAgent: new Https.Agent({ keepAlive: true })
    }
  })
}

// --- the store boundary ---------------------------------------------------------------------------

const Str = Schema.Struct({ S: Schema.String })
const Num = Schema.Struct({ N: Schema.compose(Schema.NumberFromString, Schema.Finite) })

const RequestItem = Schema.Struct({
  pk: Str,
  requestId: Str,
  payer: Str,
  idempotencyKey: Schema.optional(Str),
  amount: Num,
  state: Schema.Struct({ S: SettlementLedger.State }),
  receipt: Schema.optional(Schema.Struct({ S: Schema.parseJson(X402.SettleResponse) })),
  result: Schema.optional(Str),
  resultDropped: Schema.Struct({ BOOL: Schema.Boolean }),
  sealed: Schema.optional(Str),
  createdAt: Num,
  updatedAt: Num,
  expiresAt: Num
})
const decodeRequestItem = Schema.decodeUnknownEither(RequestItem)
const validateEntry = Schema.validateEither(SettlementLedger.Entry)
const encodeReceipt = Schema.encodeEither(Schema.parseJson(X402.SettleResponse))

const KeyItem = Schema.Struct({ pk: Str, requestId: Str, expiresAt: Num })
const decodeKeyItem = Schema.decodeUnknownEither(KeyItem)

const requestPk = (requestId: string) => `req#${requestId}`
// The payer fingerprint has no `#`, so `<payer>#<key>` cannot be forged by a key containing one.
const keyPk = (payer: string, key: string) => `key#${payer}#${key}`

const s = (value: string): AttributeValue => ({ S: value })
const n = (value: number): AttributeValue => ({ N: String(value) })
const seconds = (millis: number) => Math.floor(millis / 1000)

/** An item this version does not recognise is never trusted: `Corrupt`, fail closed. */
const entryOf = (
  operation: string,
  requestId: string,
  item: Record<string, AttributeValue>
): Either.Either<Entry, LedgerError> => {
  const corrupt = (detail: string) => new LedgerError({ reason: "Corrupt", operation, requestId, detail })
  const decoded = decodeRequestItem(item)
  if (Either.isLeft(decoded)) return Either.left(corrupt("unrecognised ledger row"))
  const row = decoded.right
  if (row.pk.S !== requestPk(requestId) || row.requestId.S !== requestId) {
    return Either.left(corrupt("row does not belong to this request id"))
  }
  return Either.mapLeft(
    validateEntry({
      requestId: row.requestId.S,
      payer: row.payer.S,
      ...(row.idempotencyKey !== undefined ? { idempotencyKey: row.idempotencyKey.S } : {}),
      amount: row.amount.N,
      state: row.state.S,
      ...(row.receipt !== undefined ? { receipt: row.receipt.S } : {}),
      ...(row.result !== undefined ? { result: row.result.S } : {}),
      resultDropped: row.resultDropped.BOOL,
      ...(row.sealed !== undefined ? { sealed: row.sealed.S } : {}),
      createdAt: row.createdAt.N,
      updatedAt: row.updatedAt.N,
      // Stored in epoch seconds (DynamoDB's TTL unit).
      expiresAt: row.expiresAt.N * 1000
    }),
    () => corrupt("invalid ledger entry")
  )
}

const itemOf = (entry: Entry): Record<string, AttributeValue> => ({
  pk: s(requestPk(entry.requestId)),
  requestId: s(entry.requestId),
  payer: s(entry.payer),
  ...(entry.idempotencyKey !== undefined ? { idempotencyKey: s(entry.idempotencyKey) } : {}),
  amount: n(entry.amount),
  state: s(entry.state),
  resultDropped: { BOOL: entry.resultDropped },
  // Ciphertext only (see `SettlementLedger.Entry.sealed`): a dump of the table reveals no token.
  ...(entry.sealed !== undefined ? { sealed: s(entry.sealed) } : {}),
  createdAt: n(entry.createdAt),
  updatedAt: n(entry.updatedAt),
  expiresAt: n(seconds(entry.expiresAt))
})

// --- requests -------------------------------------------------------------------------------------

/** A conditional write that found the condition false (internal: mapped per operation). */
class ConditionFailed extends Data.TaggedError("ConditionFailed")<{
  readonly item: Record<string, AttributeValue> | undefined
}> {}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null

const errorName = (cause: unknown): string =>
  isRecord(cause) && typeof cause.name === "string" ? cause.name : "UnknownError"

/**
 * Makes the DynamoDB ledger. Without `options.client` it creates one (see `makeClient`) and
 * destroys it with the scope.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<SettlementLedger.SettlementLedger.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const client = options.client ?? (yield* Effect.acquireRelease(
      Effect.sync(() => makeClient(options)),
      (client) => Effect.sync(() => client.destroy())
    ))
    const TableName = options.tableName
    const ttlMillis = Duration.toMillis(Duration.decode(options.ttl ?? SettlementLedger.DEFAULT_TTL))
    const maxResultBytes = options.maxResultBytes ?? SettlementLedger.DEFAULT_MAX_RESULT_BYTES
    // A wall-clock bound over the SDK's own timeouts and retries (backoff included): whatever the
    // socket does, the caller gets `Unavailable`, never a hang.
    const attemptMillis = Duration.toMillis(Duration.decode(options.timeout ?? "1 second"))
    const budget = Duration.millis(attemptMillis * (options.maxAttempts ?? 2) + 500)

    const send = <A>(
      operation: string,
      requestId: string | undefined,
      f: (signal: AbortSignal) => Promise<A>
    ): Effect.Effect<A, LedgerError | ConditionFailed> =>
      Effect.tryPromise({
        try: f,
        catch: (cause): LedgerError | ConditionFailed => {
          const name = errorName(cause)
          if (name === "ConditionalCheckFailedException") {
            const item = isRecord(cause) && isRecord(cause.Item)
              ? cause.Item as Record<string, AttributeValue>
              : undefined
            return new ConditionFailed({ item })
          }
          // Only the error's name: an SDK message may echo request data.
          return new LedgerError({ reason: "Unavailable", operation, requestId, detail: name })
        }
      }).pipe(
        Effect.timeoutFail({
          duration: budget,
          onTimeout: () => new LedgerError({ reason: "Unavailable", operation, requestId, detail: "timed out" })
        })
      )

    const onlyLedger = <A>(
      effect: Effect.Effect<A, LedgerError | ConditionFailed>,
      operation: string,
      requestId?: string
    ) =>
      Effect.catchTag(effect, "ConditionFailed", () =>
        Effect.fail(
          new LedgerError({ reason: "Unavailable", operation, requestId, detail: "unexpected condition failure" })
        ))

    const readItem = (operation: string, pk: string, requestId?: string) =>
      onlyLedger(
        send(operation, requestId, (abortSignal) =>
          client.send(new GetItemCommand({ TableName, Key: { pk: s(pk) }, ConsistentRead: true }), { abortSignal })),
        operation,
        requestId
      ).pipe(Effect.map((out) =>
        out.Item
      ))

    const liveEntry = (
      operation: string,
      requestId: string,
      item: Record<string, AttributeValue> | undefined,
      now: number
    ): Effect.Effect<Option.Option<Entry>, LedgerError> => {
      if (item === undefined) return Effect.succeedNone
      const entry = entryOf(operation, requestId, item)
      if (Either.isLeft(entry)) return Effect.fail(entry.left)
      return Effect.succeed(entry.right.expiresAt <= now ? Option.none() : Option.some(entry.right))
    }

    const get = (requestId: string, operation = "get") =>
      Effect.flatMap(
        Effect.clockWith((clock) => clock.currentTimeMillis),
        (now) =>
          Effect.flatMap(readItem(operation, requestPk(requestId), requestId), (item) =>
            liveEntry(operation, requestId, item, now))
      )

    const findByKey = (payer: string, key: string, operation = "findByKey") =>
      Effect.gen(function*() {
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const item = yield* readItem(operation, keyPk(payer, key))
        if (item === undefined) return Option.none<Entry>()
        const decoded = decodeKeyItem(item)
        if (Either.isLeft(decoded) || decoded.right.pk.S !== keyPk(payer, key)) {
          return yield* new LedgerError({ reason: "Corrupt", operation, detail: "unrecognised idempotency key row" })
        }
        if (decoded.right.expiresAt.N * 1000 <= now) return Option.none<Entry>()
        const entry = yield* get(decoded.right.requestId.S, operation)
        // The entry must be the one this payer recorded under this key.
        return Option.filter(entry, (e) => e.payer === payer && e.idempotencyKey === key)
      })

    // Conditional update `from → fields`; a miss reads the row to say why (DynamoDB can return it
    // with the failure, `ReturnValuesOnConditionCheckFailure`, saving that read; local servers may not).
    const transition = (
      operation: string,
      requestId: string,
      from: SettlementLedger.State,
      fields: Pick<Entry, "state" | "receipt" | "result" | "resultDropped">
    ): Effect.Effect<Either.Either<Entry, Option.Option<Entry>>, LedgerError> =>
      Effect.gen(function*() {
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const names: Record<string, string> = {
          "#state": "state",
          "#updatedAt": "updatedAt",
          "#expiresAt": "expiresAt"
        }
        const values: Record<string, AttributeValue> = {
          ":from": s(from),
          ":to": s(fields.state),
          ":now": n(now),
          ":nowSec": n(seconds(now))
        }
        const sets = ["#state = :to", "#updatedAt = :now"]
        const removes: Array<string> = []
        if (fields.state !== "settling") {
          // The sealed material is needed only until the attempt ends: an ended row keeps none.
          names["#sealed"] = "sealed"
          removes.push("#sealed")
          names["#resultDropped"] = "resultDropped"
          values[":resultDropped"] = { BOOL: fields.resultDropped }
          sets.push("#resultDropped = :resultDropped")
          names["#receipt"] = "receipt"
          names["#result"] = "result"
          if (fields.receipt !== undefined) {
            const encoded = encodeReceipt(fields.receipt)
            if (Either.isLeft(encoded)) {
              return yield* new LedgerError({ reason: "InvalidInput", operation, requestId, detail: "invalid receipt" })
            }
            values[":receipt"] = s(encoded.right)
            sets.push("#receipt = :receipt")
          } else removes.push("#receipt")
          if (fields.result !== undefined) {
            values[":result"] = s(fields.result)
            sets.push("#result = :result")
          } else removes.push("#result")
        }
        const update = `SET ${sets.join(", ")}${removes.length > 0 ? ` REMOVE ${removes.join(", ")}` : ""}`
        const out = yield* send(operation, requestId, (abortSignal) =>
          client.send(
            new UpdateItemCommand({
              TableName,
              Key: { pk: s(requestPk(requestId)) },
              UpdateExpression: update,
              ConditionExpression: "#state = :from AND #expiresAt > :nowSec",
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: values,
              ReturnValues: "ALL_NEW",
              ReturnValuesOnConditionCheckFailure: "ALL_OLD"
            }),
            { abortSignal }
          )).pipe(
            Effect.map(Either.right),
            Effect.catchTag("ConditionFailed", (failed) => Effect.succeed(Either.left(failed.item)))
          )
        if (Either.isRight(out)) {
          if (out.right.Attributes === undefined) {
            return yield* new LedgerError({ reason: "Corrupt", operation, requestId, detail: "no attributes returned" })
          }
          const entry = entryOf(operation, requestId, out.right.Attributes)
          return Either.isLeft(entry) ? yield* entry.left : Either.right(entry.right)
        }
        const current = out.left ?? (yield* readItem(operation, requestPk(requestId), requestId))
        return Either.left(yield* liveEntry(operation, requestId, current, now))
      })

    const settle =
      (operation: string, from: SettlementLedger.State) => (requestId: string, outcome: SettlementLedger.Outcome) =>
        Effect.flatMap(
          transition(operation, requestId, from, SettlementLedger.outcomeFields(outcome, maxResultBytes)),
          Either.match({
            onRight: Effect.succeed,
            onLeft: Option.match({
              onNone: () => Effect.fail(new LedgerError({ reason: "NotFound", operation, requestId })),
              onSome: (entry) =>
                Effect.fail(new LedgerError({ reason: "Conflict", operation, requestId, state: entry.state }))
            })
          })
        )

    const record = (input: SettlementLedger.RecordInput) =>
      Effect.gen(function*() {
        const invalid = SettlementLedger.validateRecord(input)
        if (invalid !== undefined) return yield* invalid
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const { idempotencyKey, requestId } = input
        // Whole seconds, so the entry returned matches the row read back.
        const expiresAt = seconds(now + ttlMillis) * 1000
        const entry: Entry = {
          requestId,
          payer: input.payer,
          ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
          amount: input.amount,
          state: "verified",
          resultDropped: false,
          ...(input.sealed !== undefined ? { sealed: input.sealed } : {}),
          createdAt: now,
          updatedAt: now,
          expiresAt
        }
        // An expired row that the TTL sweep has not deleted yet counts as absent.
        const absent = {
          ConditionExpression: "attribute_not_exists(pk) OR #expiresAt <= :nowSec",
          ExpressionAttributeNames: { "#expiresAt": "expiresAt" },
          ExpressionAttributeValues: { ":nowSec": n(seconds(now)) }
        }
        // The entry first, then its key: a key item then always names a written entry. (A
        // `TransactWriteItems` would do both at once, at twice the write cost, and local
        // DynamoDB-compatible servers such as dynalite lack it.)
        yield* send("record", requestId, (abortSignal) =>
          client.send(new PutItemCommand({ TableName, Item: itemOf(entry), ...absent }), { abortSignal })).pipe(
            Effect.catchTag("ConditionFailed", () =>
              Effect.fail(new LedgerError({ reason: "Conflict", operation: "record", requestId })))
          )
        if (idempotencyKey === undefined) {
          return { _tag: "Recorded", entry } as SettlementLedger.Recorded
        }
        const wonKey = yield* send("record", requestId, (abortSignal) =>
          client.send(
            new PutItemCommand({
              TableName,
              Item: {
                pk: s(keyPk(input.payer, idempotencyKey)),
                requestId: s(requestId),
                expiresAt: n(seconds(expiresAt))
              },
              ...absent
            }),
            { abortSignal }
          )).pipe(
            Effect.as(true),
            Effect.catchTag("ConditionFailed", () =>
              Effect.succeed(false))
          )
        if (wonKey) {
          return { _tag: "Recorded", entry } as SettlementLedger.Recorded
        }
        // Another call of this payer holds the key: answer with its entry, and drop ours (still
        // `verified`, never forwarded) so nothing can claim it.
        const existing = yield* findByKey(input.payer, idempotencyKey, "record")
        yield* send("record", requestId, (abortSignal) =>
          client.send(
            new DeleteItemCommand({
              TableName,
              Key: { pk: s(requestPk(requestId)) },
              ConditionExpression: "#state = :verified",
              ExpressionAttributeNames: { "#state": "state" },
              ExpressionAttributeValues: { ":verified": s("verified") }
            }),
            { abortSignal }
          )).pipe(Effect.ignore)
        if (Option.isNone(existing)) {
          return yield* new LedgerError({
            reason: "Conflict",
            operation: "record",
            requestId,
            detail: "idempotency key names no live entry"
          })
        }
        return { _tag: "Duplicate", entry: existing.value } as SettlementLedger.Recorded
      })

    const claim = (requestId: string) =>
      Effect.map(
        transition("claim", requestId, "verified", { state: "settling", resultDropped: false }),
        Either.match({
          onRight: (entry): SettlementLedger.Claim => ({ _tag: "Claimed", entry }),
          onLeft: Option.match({
            onNone: (): SettlementLedger.Claim => ({ _tag: "Absent" }),
            onSome: (entry): SettlementLedger.Claim => ({ _tag: "Taken", entry })
          })
        })
      )

    const traced =
      <Args extends Array<unknown>, A>(name: string, f: (...args: Args) => Effect.Effect<A, LedgerError>) =>
      (...args: Args) => Effect.withSpan(f(...args), name, { captureStackTrace: false })

    return {
      record: traced("DynamoDbLedger.record", record),
      claim: traced("DynamoDbLedger.claim", claim),
      finish: traced("DynamoDbLedger.finish", settle("finish", "settling")),
      resolveUnknown: traced("DynamoDbLedger.resolveUnknown", settle("resolveUnknown", "unknown")),
      get: traced("DynamoDbLedger.get", (requestId: string) => get(requestId)),
      findByKey: traced("DynamoDbLedger.findByKey", (payer: string, key: string) => findByKey(payer, key))
    } satisfies SettlementLedger.SettlementLedger.Service
  })

/**
 * The DynamoDB ledger as a layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<SettlementLedger.SettlementLedger> =>
  Layer.scoped(Tag, make(options))

/**
 * The DynamoDB ledger, its table named by `X402_LEDGER_TABLE` (or `options.tableName`).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  options?: Omit<Options, "tableName"> & { readonly tableName?: Config.Config<string> | undefined }
): Layer.Layer<SettlementLedger.SettlementLedger, ConfigError.ConfigError> =>
  Layer.scoped(
    Tag,
    Effect.flatMap(
      options?.tableName ?? Config.nonEmptyString("X402_LEDGER_TABLE"),
      (tableName) => make({ ...options, tableName })
    )
  )
