import * as DynamoDbLedger from "@effect-x402/lambda/DynamoDbLedger"
import { interceptor } from "@effect-x402/lambda/Interceptor"

// Every instance of the interceptor shares one settlement ledger: the DynamoDB table named by
// X402_LEDGER_TABLE. The REQUEST phase records each verified call there; the RESPONSE phase, on
// whichever instance it lands, settles it at most once, and answers a replay with the recorded receipt.
// Every instance needs the same X402_REQUEST_SEAL_KEY (a secret) to recognise the request ids the others issued.
export const handler = interceptor({
  planId: process.env.NVM_PLAN_ID ?? "plan-123",
  credits: 1,
  services: DynamoDbLedger.layerConfig()
})
