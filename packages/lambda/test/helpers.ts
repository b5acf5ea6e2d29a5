import { X402 } from "@effect-x402/core"
import type { AgentCore } from "@effect-x402/lambda"
import { afterEach, assert, beforeEach } from "@effect/vitest"
import type { Layer } from "effect"
import { Cause, Either, Logger } from "effect"

/** The response the gateway would send, asserting there is one. */
export const responseOf = (output: AgentCore.InterceptorOutput) => {
  const response = output.mcp.transformedGatewayResponse
  assert.isDefined(response, "expected a transformedGatewayResponse")
  assert.strictEqual(output.interceptorOutputVersion, "1.0")
  return response!
}

/** The request the gateway would forward, asserting there is one. */
export const forwardedOf = (output: AgentCore.InterceptorOutput) => {
  const request = output.mcp.transformedGatewayRequest
  assert.isDefined(request, "expected a transformedGatewayRequest")
  assert.isUndefined(output.mcp.transformedGatewayResponse)
  return request!
}

export const headerOf = (output: AgentCore.InterceptorOutput, name: string): string | undefined => {
  const headers = responseOf(output).headers ?? {}
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase())
  return key === undefined ? undefined : headers[key]
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any

export const bodyOf = (output: AgentCore.InterceptorOutput): Json => responseOf(output).body

export const resultOf = (output: AgentCore.InterceptorOutput): Json => bodyOf(output).result

/** The parsed JSON text of an error result. */
export const errorOf = (output: AgentCore.InterceptorOutput): Json => {
  const result = resultOf(output)
  assert.strictEqual(result.isError, true)
  return JSON.parse(result.content[0].text)
}

export const paymentRequiredOf = (output: AgentCore.InterceptorOutput): X402.PaymentRequired => {
  const header = headerOf(output, "payment-required")
  assert.isDefined(header, "expected a payment-required header")
  return Either.getOrThrow(X402.PaymentRequiredHeader.decodeEither(header!))
}

export const receiptOf = (output: AgentCore.InterceptorOutput): X402.Receipt => {
  const header = headerOf(output, "payment-response")
  assert.isDefined(header, "expected a payment-response header")
  return Either.getOrThrow(X402.ReceiptHeader.decodeEither(header!))
}

/** A logger layer that keeps every line (message and cause) for assertions. */
export const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ cause, logLevel, message }) => {
    const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
    lines.push(
      `${logLevel.label} ${text} ${Cause.isEmpty(cause) ? "" : Cause.pretty(cause, { renderErrorCause: true })}`
    )
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) as Layer.Layer<never> }
}

/** Unsets `names` before each test of the file and restores their values after it. */
export const isolateEnv = (names: ReadonlyArray<string>): void => {
  let saved: Record<string, string | undefined> = {}
  beforeEach(() => {
    saved = Object.fromEntries(names.map((name) => [name, process.env[name]]))
    for (const name of names) delete process.env[name]
  })
  afterEach(() => {
    for (const name of names) {
      if (saved[name] === undefined) delete process.env[name]
      else process.env[name] = saved[name]
    }
  })
}
