/**
 * A DynamoDB-compatible server on loopback for the ledger tests, the two-instance load test
 * (`packages/testing/test/load`) and the bench (`bench/src/ledger.ts`): dynalite in memory (pure JS,
 * no native build), a request counter, a scan of every row, and a TCP proxy in front that a test can
 * pause (connections accepted, nothing forwarded: a slow store) or close (a store that is down).
 * The one dynalite helper of the repository: the others import it by path.
 */
import { type AttributeValue, CreateTableCommand, DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb"
import dynalite from "dynalite"
import type * as Http from "node:http"
import * as Net from "node:net"

export interface DynamoDbServer {
  readonly endpoint: string
  readonly proxyEndpoint: string
  readonly tableName: string
  /** Requests that reached dynalite, by `X-Amz-Target` operation. */
  readonly requests: Map<string, number>
  readonly resetCount: () => void
  /** Every row of a table (the ledger's by default), read consistently. */
  readonly scan: (tableName?: string) => Promise<Array<Record<string, AttributeValue>>>
  readonly pauseProxy: () => void
  readonly resumeProxy: () => void
  readonly closeProxy: () => Promise<void>
  readonly close: () => Promise<void>
}

export const credentials = { accessKeyId: "test", secretAccessKey: "test" }
export const region = "us-east-1"

const listen = (server: Net.Server): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve((server.address() as Net.AddressInfo).port))
  })

/** Creates a ledger table (partition key `pk`, on demand) on the server at `endpoint`. */
export const createTable = async (endpoint: string, tableName: string): Promise<void> => {
  const client = new DynamoDBClient({ endpoint, region, credentials })
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
        BillingMode: "PAY_PER_REQUEST"
      })
    )
  } finally {
    client.destroy()
  }
}

export const start = async (tableName = "x402-ledger"): Promise<DynamoDbServer> => {
  const server: Http.Server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })
  const requests = new Map<string, number>()
  server.on("request", (req: Http.IncomingMessage) => {
    const target = String(req.headers["x-amz-target"] ?? "?").replace(/^DynamoDB_\d+\./, "")
    requests.set(target, (requests.get(target) ?? 0) + 1)
  })
  const port = await listen(server)
  const endpoint = `http://127.0.0.1:${port}`

  let paused = false
  const sockets = new Set<Net.Socket>()
  const proxy = Net.createServer((socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => socket.destroy())
    // Paused: the connection is accepted and then nothing ever comes back.
    if (paused) return
    const upstream = Net.connect(port, "127.0.0.1")
    sockets.add(upstream)
    upstream.on("close", () => sockets.delete(upstream))
    upstream.on("error", () => socket.destroy())
    socket.pipe(upstream).pipe(socket)
  })
  const proxyPort = await listen(proxy)

  await createTable(endpoint, tableName)
  requests.clear()

  const scan = async (table = tableName) => {
    const client = new DynamoDBClient({ endpoint, region, credentials })
    try {
      const rows: Array<Record<string, AttributeValue>> = []
      let from: Record<string, AttributeValue> | undefined
      do {
        const page = await client.send(
          new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: from })
        )
        rows.push(...(page.Items ?? []))
        from = page.LastEvaluatedKey
      } while (from !== undefined)
      return rows
    } finally {
      client.destroy()
    }
  }

  const closeProxy = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy()
      if (!proxy.listening) return resolve()
      proxy.close(() => resolve())
    })
  return {
    endpoint,
    proxyEndpoint: `http://127.0.0.1:${proxyPort}`,
    tableName,
    requests,
    resetCount: () => requests.clear(),
    scan,
    pauseProxy: () => {
      paused = true
      // Kept-alive connections would still forward: cut them, so the next request opens a new one.
      for (const socket of sockets) socket.destroy()
    },
    resumeProxy: () => {
      paused = false
    },
    closeProxy,
    close: async () => {
      await closeProxy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
