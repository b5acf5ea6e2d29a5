/**
 * @since 0.1.0
 */

/**
 * What an adapter author needs beside `Paywall`: the one redaction rule, user callbacks (value,
 * Promise or Effect) as Effects, and the transport-neutral pieces of an answer.
 *
 * @since 0.2.0
 */
export * as Adapter from "./Adapter.js"

/**
 * Limits on the work one call may cause (JSON depth), shared by every adapter.
 *
 * @since 0.2.0
 */
export * as Bounds from "./Bounds.js"

/**
 * One span per paid call, and none when nobody listens: what an adapter wraps its call in.
 *
 * @since 0.2.0
 */
export * as CallSpan from "./CallSpan.js"

/**
 * How many credits a call costs: policy, validation, and the settle-amount override rules.
 *
 * @since 0.1.0
 */
export * as Credits from "./Credits.js"

/**
 * The facilitator service: verify and settle.
 *
 * @since 0.1.0
 */
export * as Facilitator from "./Facilitator.js"

/**
 * x402 payments for `HttpApi` endpoints: the `Paid` middleware tag, its layer, tags of your own.
 *
 * @since 0.2.0
 */
export * as HttpApiPaywall from "./HttpApiPaywall.js"

/**
 * The x402 HTTP transport as `@effect/platform` middleware for `HttpApp` and routes, and its pure mapping.
 *
 * @since 0.1.0
 */
export * as HttpPaywall from "./HttpPaywall.js"

/**
 * What a seller watches: calls paid, refused by reason, settle outcomes unknown, credits settled and
 * facilitator latency, as Effect `Metric`s (exported by any metrics layer, e.g. OpenTelemetry).
 *
 * @since 0.3.0
 */
export * as PaymentMetrics from "./PaymentMetrics.js"

/**
 * The x402 MCP in-band format, read and written in one place (docs/mcp.md): the token in
 * `params._meta["x402/payment"]`, the PaymentRequired as `structuredContent`, receipts in `_meta`.
 *
 * @since 0.3.0
 */
export * as McpInBand from "./McpInBand.js"

/**
 * The x402 MCP in-band transport: payment and receipt in `_meta`, payment required as a result.
 *
 * @since 0.1.0
 */
export * as McpPayment from "./McpPayment.js"

/**
 * The Nevermined backend: environments, API keys, the live facilitator.
 *
 * @since 0.1.0
 */
export * as Nevermined from "./Nevermined.js"

/**
 * The verified payment of the call being served, as a service for the paid handler.
 *
 * @since 0.1.0
 */
export * as PaymentContext from "./PaymentContext.js"

/**
 * The typed errors of the payment pipeline.
 *
 * @since 0.1.0
 */
export * as PaymentError from "./PaymentError.js"

/**
 * The pipeline: verify → execute → settle.
 *
 * @since 0.1.0
 */
export * as Paywall from "./Paywall.js"

/**
 * The settlement ledger: idempotent, replay-proof settlement across phases and instances.
 *
 * @since 0.2.0
 */
export * as SettlementLedger from "./SettlementLedger.js"

/**
 * The paying side: access tokens, delegations, plan balances.
 *
 * @since 0.1.0
 */
export * as Subscriber from "./Subscriber.js"

/**
 * An `HttpClient` that pays for x402-protected answers.
 *
 * @since 0.1.0
 */
export * as X402Client from "./X402Client.js"

/**
 * The x402 v2 wire types and header codec.
 *
 * @since 0.1.0
 */
export * as X402 from "./X402.js"

/**
 * x402 for Web-standard servers (Hono, Bun, Deno, Workers): a `(Request) => Promise<Response>`
 * paywall with a table of routes to prices.
 *
 * @since 0.2.0
 */
export * as WebPaywall from "./WebPaywall.js"

/**
 * A drop-in `fetch` that pays x402-protected answers (`X402Client` underneath), like `@x402/fetch`.
 *
 * @since 0.2.0
 */
export * as X402Fetch from "./X402Fetch.js"
