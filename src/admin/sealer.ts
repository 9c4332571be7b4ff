import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";

/** Seals short secrets with AES-256-GCM under a key derived from the pepper, so replays never need plaintext at rest. */
export interface Sealer {
  seal(plaintext: string): Buffer;
  open(sealed: Buffer): string | undefined;
}

/** Creates a sealer whose key is HMAC(pepper, purpose). */
export function createSealer(pepper: string, purpose = "keymesh idempotency replay v1"): Sealer {
  const key = createHmac("sha256", pepper).update(purpose).digest();
  return {
    seal(plaintext) {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      return Buffer.concat([iv, cipher.getAuthTag(), body]);
    },
    open(sealed) {
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, sealed.subarray(0, 12));
        decipher.setAuthTag(sealed.subarray(12, 28));
        return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]).toString("utf8");
      } catch {
        return undefined;
      }
    },
  };
}
