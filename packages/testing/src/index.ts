/**
 * @since 0.1.0
 */

/**
 * Builders of AgentCore gateway events, API Gateway v2 events and Lambda contexts.
 *
 * @since 0.1.0
 */
export * as AgentCoreEvents from "./AgentCoreEvents.js"

/**
 * A wire-compatible Nevermined backend on loopback, backed by the test ledger, with fault injection.
 *
 * @since 0.1.0
 */
export * as FakeNevermined from "./FakeNevermined.js"

/**
 * A local AgentCore Gateway: MCP over HTTP on loopback, each call turned into an interceptor event
 * for a Lambda handler invoked in-process (decorator or interceptor flavour).
 *
 * @since 0.1.0
 */
export * as LocalGateway from "./LocalGateway.js"

/**
 * An in-memory credit ledger served as a `Facilitator` layer, with scripted faults and a call log.
 *
 * @since 0.1.0
 */
export * as TestFacilitator from "./TestFacilitator.js"

/**
 * Captures log lines and spans of a program, for assertions (e.g. that no secret leaks).
 *
 * @since 0.1.0
 */
export * as TestTelemetry from "./TestTelemetry.js"

/**
 * The paying side on the in-memory ledger: a `Subscriber` layer without HTTP.
 *
 * @since 0.2.0
 */
export * as TestSubscriber from "./TestSubscriber.js"
