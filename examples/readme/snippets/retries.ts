// A client that retries a paid HTTP call safely: one idempotency key per logical call, sent with the
// same token on every attempt. A retry of a call that was charged gets the stored answer (or a 409
// "already paid" when it was too large to keep); it is never charged again.
export const paidCall = async (url: string, token: string, body: unknown): Promise<Response> => {
  const key = crypto.randomUUID() // 1 to 255 characters of A-Z a-z 0-9 _ - . :
  for (let attempt = 1;; attempt++) {
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "payment-signature": token, "idempotency-key": key, "content-type": "application/json" },
        body: JSON.stringify(body)
      })
      // 502: the settlement's outcome is unknown (or the facilitator was down); 409 "in progress":
      // the first attempt is still running. Both are safe to retry with the same key.
      const retryable = response.status === 502 ||
        (response.status === 409 && (await response.clone().json()).reason === "InProgress")
      if (!retryable || attempt === 3) return response
    } catch (error) {
      if (attempt === 3) throw error // the connection dropped: the same key makes the retry safe
    }
    await new Promise((resolve) => setTimeout(resolve, 200 * attempt))
  }
}
