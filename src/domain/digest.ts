import { createHmac, timingSafeEqual } from "node:crypto";

/** Computes the keyed digest under which a key is stored: HMAC-SHA-256 with the server pepper. */
export type Digester = (canonical: string) => Buffer;

/** Creates a digester bound to `pepper`. */
export function createDigester(pepper: string): Digester {
  return (canonical) => createHmac("sha256", pepper).update(canonical, "utf8").digest();
}

/** Compares two digests in constant time. */
export function digestsEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
