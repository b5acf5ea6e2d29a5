/**
 * Builders of the events a paid Lambda receives: AgentCore Gateway interceptor events (REQUEST and
 * RESPONSE phases), API Gateway HTTP API (v2) / Function URL events, and Lambda contexts.
 *
 * @since 0.1.0
 */
import type * as AgentCore from "@effect-x402/lambda/AgentCore"
import type { APIGatewayProxyEventV2, Context } from "aws-lambda"

/**
 * A JSON-RPC id.
 *
 * @since 0.1.0
 * @category models
 */
export type JsonRpcId = string | number | null

/**
 * What a gateway REQUEST event is made of. By default: a `tools/call` of `Target___tool` with id
 * `"req-1"`, no token.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestOptions {
  /** The caller's token, sent in `tokenHeader`. */
  readonly token?: string | undefined
  /** Default `payment-signature`. */
  readonly tokenHeader?: string | undefined
  /** Extra request headers. */
  readonly headers?: Record<string, string> | undefined
  /** Default `tools/call`. */
  readonly method?: string | undefined
  /** The tool's name; prefixed with `target` and `___` unless it already has a `___`. */
  readonly tool?: string | undefined
  /** Default `Target`. */
  readonly target?: string | undefined
  readonly arguments?: Record<string, unknown> | undefined
  /** Default `"req-1"`; `null` and numbers are kept as they are. */
  readonly id?: JsonRpcId | undefined
  /** Replaces the whole JSON-RPC body. */
  readonly body?: unknown
  /** Leave the headers out, as a gateway without `passRequestHeaders` does. */
  readonly withoutHeaders?: boolean | undefined
}

/**
 * What a gateway RESPONSE event adds: the target's answer.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResponseOptions extends RequestOptions {
  /** Default 200. */
  readonly statusCode?: number | undefined
  readonly responseHeaders?: Record<string, string> | undefined
  /** The MCP result; wrapped in a JSON-RPC response with the request's id. */
  readonly result?: unknown
  /** Replaces the whole response body. */
  readonly responseBody?: unknown
  /**
   * An `x-nvm-agent-request-id` header on the request. The interceptor settles with it only when it
   * comes with the seal the REQUEST phase issued beside it: pass `forwardedHeaders` for that.
   */
  readonly agentRequestId?: string | undefined
  /**
   * The headers the REQUEST phase forwarded (its `transformedGatewayRequest.headers`), merged over
   * the request headers as the gateway does: they carry the issued request id and its seal.
   *
   * @since 0.2.0
   */
  readonly forwardedHeaders?: Record<string, string> | undefined
}

const hasOwn = (u: object, key: string) => Object.prototype.hasOwnProperty.call(u, key)

const bodyOf = (options: RequestOptions): unknown => {
  if (hasOwn(options, "body")) return options.body
  const method = options.method ?? "tools/call"
  const id = hasOwn(options, "id") ? options.id ?? null : "req-1"
  if (method !== "tools/call") return { jsonrpc: "2.0", id, method }
  const tool = options.tool ?? "tool"
  return {
    jsonrpc: "2.0",
    id,
    method,
    params: {
      name: tool.includes("___") ? tool : `${options.target ?? "Target"}___${tool}`,
      arguments: options.arguments ?? {}
    }
  }
}

/**
 * A JSON-RPC `tools/call` body.
 *
 * @since 0.1.0
 * @category builders
 */
export const toolCall = (
  name: string,
  args: Record<string, unknown> = {},
  id: JsonRpcId = "req-1"
): { readonly jsonrpc: "2.0"; readonly id: JsonRpcId; readonly method: "tools/call"; readonly params: unknown } => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params: { name, arguments: args }
})

const requestHeaders = (options: RequestOptions, extra: Record<string, string> = {}): Record<string, string> => ({
  "Content-Type": "application/json",
  ...options.headers,
  ...(options.token !== undefined ? { [options.tokenHeader ?? "payment-signature"]: options.token } : {}),
  ...extra
})

/**
 * A REQUEST-phase gateway event (what `requiresPayment` and the interceptor's first phase receive).
 *
 * @since 0.1.0
 * @category builders
 */
export const request = (options: RequestOptions = {}): AgentCore.InterceptorInput => ({
  interceptorInputVersion: "1.0",
  mcp: {
    gatewayRequest: {
      path: "/mcp",
      httpMethod: "POST",
      ...(options.withoutHeaders === true ? {} : { headers: requestHeaders(options) }),
      body: bodyOf(options)
    }
  }
})

/**
 * A RESPONSE-phase gateway event: the original request and the target's answer.
 *
 * @since 0.1.0
 * @category builders
 */
export const response = (options: ResponseOptions = {}): AgentCore.InterceptorInput => {
  const body = bodyOf(options)
  const id = typeof body === "object" && body !== null ? (body as { id?: JsonRpcId }).id ?? null : null
  return {
    interceptorInputVersion: "1.0",
    mcp: {
      gatewayRequest: {
        path: "/mcp",
        httpMethod: "POST",
        ...(options.withoutHeaders === true ? {} : {
          headers: requestHeaders(options, {
            ...(options.agentRequestId !== undefined ? { "x-nvm-agent-request-id": options.agentRequestId } : {}),
            ...options.forwardedHeaders
          })
        }),
        body
      },
      gatewayResponse: {
        statusCode: options.statusCode ?? 200,
        headers: { "Content-Type": "application/json", ...options.responseHeaders },
        body: hasOwn(options, "responseBody")
          ? options.responseBody
          : { jsonrpc: "2.0", id, result: options.result ?? { content: [{ type: "text", text: "ok" }] } }
      }
    }
  }
}

const base64 = (value: unknown): string =>
  Buffer.from(typeof value === "string" ? value : JSON.stringify(value), "utf8").toString("base64")

/**
 * A REQUEST-phase event for an HTTP target (AgentCore Runtime, passthrough): the `http` flavour, its
 * body base64 text.
 *
 * @since 0.3.0
 * @category builders
 */
export const httpRequest = (options: RequestOptions = {}): AgentCore.HttpInterceptorInput => ({
  interceptorInputVersion: "1.0",
  http: {
    gatewayRequest: {
      path: "/mcp",
      httpMethod: "POST",
      ...(options.withoutHeaders === true ? {} : { headers: requestHeaders(options) }),
      body: base64(bodyOf(options))
    }
  }
})

/**
 * What an HTTP target's RESPONSE event carries: the target's answer only.
 *
 * @since 0.3.0
 * @category models
 */
export interface HttpResponseOptions {
  /** Default 200. */
  readonly statusCode?: number | undefined
  readonly headers?: Record<string, string> | undefined
  /** The body (JSON, or raw text such as SSE); `null` as a gateway excluding it sends. */
  readonly body: unknown
  /** One event of a streamed answer. */
  readonly streaming?: boolean | undefined
}

/**
 * A RESPONSE-phase event for an HTTP target: `gatewayRequest` is `null`, as on AWS.
 *
 * @since 0.3.0
 * @category builders
 */
export const httpResponse = (options: HttpResponseOptions): AgentCore.HttpInterceptorInput => ({
  interceptorInputVersion: "1.0",
  http: {
    gatewayRequest: null,
    gatewayResponse: {
      statusCode: options.statusCode ?? 200,
      headers: { "Content-Type": "application/json", ...options.headers },
      body: options.body === null ? null : base64(options.body),
      ...(options.streaming === true ? { isStreamingResponse: true } : {})
    }
  }
})

/**
 * The request an HTTP-flavour REQUEST output forwards (body decoded), or `undefined`.
 *
 * @since 0.3.0
 * @category readers
 */
export const forwardedHttp = (
  output: unknown
): { readonly headers: Record<string, string>; readonly body: Record<string, unknown> } | undefined => {
  const request = (output as AgentCore.HttpInterceptorOutput | undefined)?.http?.transformedGatewayRequest
  if (request === undefined) return undefined
  return {
    headers: { ...request.headers },
    body: request.body === null ? {} : JSON.parse(Buffer.from(request.body, "base64").toString("utf8"))
  }
}

/**
 * The answer an HTTP-flavour output sends (body decoded as text), or `undefined`.
 *
 * @since 0.3.0
 * @category readers
 */
export const answeredHttp = (
  output: unknown
):
  | { readonly statusCode: number; readonly headers: Record<string, string>; readonly text: string | null }
  | undefined =>
{
  const response = (output as AgentCore.HttpInterceptorOutput | undefined)?.http?.transformedGatewayResponse
  if (response === undefined) return undefined
  return {
    statusCode: response.statusCode,
    headers: { ...response.headers },
    text: response.body === null ? null : Buffer.from(response.body, "base64").toString("utf8")
  }
}

/**
 * What an API Gateway HTTP API (v2) / Function URL event is made of. By default `POST /agent` with
 * a JSON body `{}`.
 *
 * @since 0.1.0
 * @category models
 */
export interface HttpOptions {
  readonly method?: string | undefined
  readonly path?: string | undefined
  /** Query string, without `?`. */
  readonly query?: string | undefined
  readonly headers?: Record<string, string> | undefined
  /** Sent in `payment-signature` (or `tokenHeader`). */
  readonly token?: string | undefined
  readonly tokenHeader?: string | undefined
  /** A JSON body (serialised), or raw text. */
  readonly json?: unknown
  readonly body?: string | undefined
  readonly isBase64Encoded?: boolean | undefined
  /** Default `abc123.execute-api.us-east-1.amazonaws.com`. */
  readonly domainName?: string | undefined
}

/**
 * An API Gateway HTTP API (v2) event; a Lambda Function URL sends the same shape. Header names are
 * lower-cased, as API Gateway does.
 *
 * @since 0.1.0
 * @category builders
 */
export const apiGatewayV2 = (options: HttpOptions = {}): APIGatewayProxyEventV2 => {
  const method = options.method ?? "POST"
  const path = options.path ?? "/agent"
  const domainName = options.domainName ?? "abc123.execute-api.us-east-1.amazonaws.com"
  const headers: Record<string, string> = { host: domainName }
  const add = (name: string, value: string) => {
    headers[name.toLowerCase()] = value
  }
  if (options.json !== undefined || options.body === undefined) add("content-type", "application/json")
  for (const [name, value] of Object.entries(options.headers ?? {})) add(name, value)
  if (options.token !== undefined) add(options.tokenHeader ?? "payment-signature", options.token)
  const body = options.body ?? (method === "GET" ? undefined : JSON.stringify(options.json ?? {}))
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString: options.query ?? "",
    headers,
    requestContext: {
      accountId: "123456789012",
      apiId: "abc123",
      domainName,
      domainPrefix: domainName.split(".")[0],
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "203.0.113.7", userAgent: "vitest" },
      requestId: "req-http-1",
      routeKey: "$default",
      stage: "$default",
      time: "01/Jan/2026:00:00:00 +0000",
      timeEpoch: 1767225600000
    },
    ...(body !== undefined ? { body } : {}),
    isBase64Encoded: options.isBase64Encoded ?? false
  }
}

/**
 * A Lambda context. By default function `paid-agent` in `us-east-1`.
 *
 * @since 0.1.0
 * @category builders
 */
export const context = (options: {
  readonly functionName?: string | undefined
  readonly invokedFunctionArn?: string | undefined
  readonly awsRequestId?: string | undefined
  readonly remainingTimeInMillis?: number | undefined
} = {}): Context => {
  const functionName = options.functionName ?? "paid-agent"
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: options.invokedFunctionArn ?? `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: "512",
    awsRequestId: options.awsRequestId ?? "00000000-0000-4000-8000-000000000001",
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "2026/01/01/[$LATEST]0123456789abcdef",
    getRemainingTimeInMillis: () => options.remainingTimeInMillis ?? 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined
  }
}
