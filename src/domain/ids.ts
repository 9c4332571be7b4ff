import { randomBase62 } from "./encoding.js";

/** A new random identifier with a readable type prefix, such as `key_…` or `ws_…`. */
export function newId(prefix: "key" | "ws" | "ks" | "mem" | "apr"): string {
  return `${prefix}_${randomBase62(12)}`;
}
