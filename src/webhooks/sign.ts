import { createHmac, timingSafeEqual } from "node:crypto";

/** The headers of a signed webhook: a timestamp and `t=<ts>,v1=<hex HMAC-SHA-256(secret, "<ts>.<body>")>`. */
export function signWebhook(secret: string, body: string, timestamp: number): Record<string, string> {
  const signature = createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
  return {
    "x-keymesh-timestamp": String(timestamp),
    "x-keymesh-signature": `t=${timestamp},v1=${signature}`,
  };
}

/** Checks a webhook signature as a receiver would, refusing timestamps older than `toleranceSeconds`. */
export function verifyWebhook(
  secret: string,
  body: string,
  header: string,
  nowSeconds = Math.floor(Date.now() / 1000),
  toleranceSeconds = 300,
): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!match) return false;
  const timestamp = Number(match[1]);
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = createHmac("sha256", secret).update(`${timestamp}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(match[2]!, "hex"));
}

/** Derives the webhook signing secret from the pepper, so every instance signs alike without another setting. */
export function webhookSigningSecret(pepper: string): string {
  return createHmac("sha256", pepper).update("keymesh webhook signing v1").digest("base64url");
}
