/**
 * What the idempotent path keeps in a ledger row's `result`: the credits settled and the paid result,
 * so an `unknown` attempt can be settled again with its amount.
 *
 * @internal
 */
import * as Option from "effect/Option"
import { own } from "./json.js"

/** A stored result and the credits it was settled for. */
export interface Envelope {
  readonly credits: number
  readonly value: string
}

/** Plain JSON on the way in (a paid call's path). */
export const encodeEnvelope = (envelope: Envelope): string => JSON.stringify(envelope)

/**
 * A stored row read back: untrusted. Accepts exactly what
 * `Schema.parseJson(Schema.Struct({ credits: Schema.NonNegativeInt, value: Schema.String }))` accepts
 * (a property test pins the two together), written out so that the Lambda bundle carries no
 * `parseJson` or integer refinements for what only a retry reads.
 */
export const decodeEnvelope = (stored: string): Option.Option<Envelope> => {
  let u: unknown
  try {
    u = JSON.parse(stored)
  } catch {
    return Option.none()
  }
  const credits = own(u, "credits")
  const value = own(u, "value")
  return typeof credits === "number" && Number.isSafeInteger(credits) && credits >= 0 && typeof value === "string"
    ? Option.some({ credits, value })
    : Option.none()
}
