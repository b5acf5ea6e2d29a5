/**
 * A DynamoDB-compatible store for the two-instance load test: dynalite in memory (pure JS) on
 * 127.0.0.1, started by the test, with the ledger's table (partition key `pk`), and a scan of every
 * row to reconcile against.
 */
import { type AttributeValue, CreateTableCommand, DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb"
import dynalite from "dynalite"
import type * as Http from "node:http"
import type * as Net from "node:net"

export const credentials = { accessKeyId: "load", secretAccessKey: "load" }
export const region = "us-east-1"

export interface Dynalite {
  readonly endpoint: string
  readonly tableName: string
  /** Requests that reached the store, by `X-Amz-Target` operation. */
  readonly requests: Map<string, number>
  /** Every row of the table. */
  readonly scan: () => Promise<Array<Record<string, AttributeValue>>>
  readonly close: () => Promise<void>
}

export const start = async (tableName = "x402-ledger-load"): Promise<Dynalite> => {
  const server: Http.Server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })
  const requests = new Map<string, number>()
  server.on("request", (req: Http.IncomingMessage) => {
    const target = String(req.headers["x-amz-target"] ?? "?").replace(/^DynamoDB_\d+\./, "")
    requests.set(target, (requests.get(target) ?? 0) + 1)
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", resolve)
  })
  const endpoint = `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`
  const client = new DynamoDBClient({ endpoint, region, credentials })
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST"
    })
  )
  requests.clear()
  const scan = async () => {
    const rows: Array<Record<string, AttributeValue>> = []
    let start: Record<string, AttributeValue> | undefined
    do {
      const page = await client.send(
        new ScanCommand({ TableName: tableName, ConsistentRead: true, ExclusiveStartKey: start })
      )
      rows.push(...(page.Items ?? []))
      start = page.LastEvaluatedKey
    } while (start !== undefined)
    return rows
  }
  return {
    endpoint,
    tableName,
    requests,
    scan,
    close: async () => {
      client.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
