/**
 * @since 0.1.0
 */

/**
 * The AgentCore Gateway interceptor wire: events, call reading, answers.
 *
 * @since 0.1.0
 */
export * as AgentCore from "./AgentCore.js"

/**
 * x402 over plain HTTP for API Gateway HTTP APIs (v2) and Lambda Function URLs.
 *
 * @since 0.1.0
 */
export * as HttpHandler from "./HttpHandler.js"

/**
 * The two-phase AgentCore Gateway interceptor: REQUEST verifies, RESPONSE settles.
 *
 * @since 0.1.0
 */
export * as Interceptor from "./Interceptor.js"

/**
 * One Effect runtime per Lambda cold start, reused by warm invocations.
 *
 * @since 0.1.0
 */
export * as LambdaRuntime from "./LambdaRuntime.js"

/**
 * The `@requires_payment` decorator of the Python SDK: verify, run and settle in one Lambda invocation.
 *
 * @since 0.1.0
 */
export * as RequiresPayment from "./RequiresPayment.js"
