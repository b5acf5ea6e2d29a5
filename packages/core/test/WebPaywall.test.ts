import { WebPaywall } from "@effect-x402/core"
import { TestFacilitator, TestTelemetry } from "@effect-x402/testing"
import { assert, describe, it } from "@effect/vitest"
import { Layer } from "effect"

const ok = (text: string) => () => new Response(text, { status: 200, headers: { "content-type": "text/plain" } })

describe("WebPaywall", () => {
  it("refuses a route that is not METHOD /path at construction", () => {
    const { ledger } = TestFacilitator.seeded({ planId: "plan-1", credits: 1 })
    for (const route of ["weather", "GET weather", "GET /a b", ""]) {
      assert.throws(
        () => WebPaywall.routes({ [route]: { planId: "plan-1" } }, TestFacilitator.layer(ledger)),
        RangeError
      )
    }
  })

  it("prices the first matching route: method, :segment and a final *; HEAD like GET; others free", async () => {
    const { ledger, subscriber, token } = TestFacilitator.seeded({ planId: "plan-1", credits: 100 })
    const paywall = WebPaywall.routes({
      "GET /items/:id": { planId: "plan-1", credits: 2 },
      "/files/*": { planId: "plan-1", credits: 3 },
      "POST /items/:id": { planId: "plan-1", credits: 5 }
    }, TestFacilitator.layer(ledger))
    const at = (method: string, path: string, headers: Record<string, string> = {}) =>
      paywall.handle(new Request(`http://agent.test${path}`, { method, headers }), ok("the output"))
    const statusOf = async (method: string, path: string) => {
      const response = await at(method, path)
      return { status: response.status, body: response.status === 402 ? "" : await response.text() }
    }
    for (
      const [method, path] of [["GET", "/items/7"], ["HEAD", "/items/7"], ["POST", "/items/7"], [
        "DELETE",
        "/files/a/b"
      ]]
    ) {
      const response = await at(method, path)
      assert.strictEqual(response.status, 402, `${method} ${path}`)
      assert.isNotNull(response.headers.get("payment-required"))
    }
    for (const [method, path] of [["GET", "/items"], ["GET", "/items/7/more"], ["DELETE", "/items/7"]]) {
      assert.deepStrictEqual(await statusOf(method, path), { status: 200, body: "the output" }, `${method} ${path}`)
    }
    assert.strictEqual(ledger.calls.length, 0)

    for (const [method, path] of [["GET", "/items/7"], ["DELETE", "/files/x"]]) {
      assert.strictEqual((await at(method, path, { "payment-signature": token })).status, 200)
    }
    const paid = await at("POST", "/ITEMS//7/", { "payment-signature": token })
    assert.strictEqual(paid.status, 200)
    assert.strictEqual(await paid.text(), "the output")
    assert.deepStrictEqual(ledger.settlements.map((s) => s.credits), [2, 3, 5])
    assert.strictEqual(ledger.balance(subscriber, "plan-1"), 90)
    await paywall.dispose()
  })

  it("toFetchHandler: one price for every request; a failing handler is a 500 that charges nothing", async () => {
    const { ledger, token } = TestFacilitator.seeded({ planId: "plan-1", credits: 10 })
    // The server's logs are captured, not printed.
    const telemetry = TestTelemetry.make()
    const layer = Layer.merge(TestFacilitator.layer(ledger), telemetry.layer)
    const handler = WebPaywall.toFetchHandler({ planId: "plan-1", credits: 1 }, layer)(
      (request) => {
        if (new URL(request.url).pathname === "/boom") throw new Error("db password=hunter2 at 10.0.0.1")
        return new Response("fine")
      }
    )
    const unpaid = await handler(new Request("http://agent.test/anything"))
    assert.strictEqual(unpaid.status, 402)
    const paid = await handler(new Request("http://agent.test/anything", { headers: { "payment-signature": token } }))
    assert.strictEqual(await paid.text(), "fine")
    const failed = await handler(new Request("http://agent.test/boom", { headers: { "payment-signature": token } }))
    assert.strictEqual(failed.status, 500)
    const body = await failed.json() as { requestId: string }
    assert.notInclude(JSON.stringify(body), "hunter2")
    // The detail went to the log, redacted, under the id the caller got.
    const logged = telemetry.logs.find((line) => line.includes(body.requestId))
    assert.isDefined(logged)
    assert.include(logged, "password=<redacted>")
    assert.notInclude(telemetry.text(), "hunter2")
    assert.deepStrictEqual(ledger.settlements.map((s) => s.credits), [1])
    await handler.dispose()
  })
})
