import type { Digester } from "./digest.js";
import { parsePresentedKey } from "./key-format.js";
import type { KeyFormat } from "./types.js";

/** What a presented key string is: malformed for its format, or its canonical form and that form's digest. */
export type ParsedKey =
  | { readonly format: KeyFormat; readonly canonical: undefined }
  | { readonly format: KeyFormat; readonly canonical: string; readonly digest: Buffer; readonly hex: string };

/** Presented strings whose parse is kept: enough for the hot keys of a busy instance, bounded in memory. */
export const PRESENTED_MEMO_SIZE = 4096;

/** No key format allows a longer key (see parsePresentedKey). */
const MAX_MEMO_LENGTH = 512;

/**
 * Creates a memo of parsePresentedKey and the HMAC of its result, per presented string: they are the largest
 * costs of a cached Check, and a client sends the same key, good or bad, again and again. It holds raw keys in memory, so it is strictly bounded: two generations of at most half the
 * size each, the older dropped whole when the younger fills (LRU-like, without reordering a Map on every hit).
 * An entry answers only for the format object it was parsed with; key spaces are replaced, never edited.
 */
export function createPresentedMemo(
  digest: Digester,
  size = PRESENTED_MEMO_SIZE,
): (format: KeyFormat, presented: string) => ParsedKey {
  let young = new Map<string, ParsedKey>();
  let old = new Map<string, ParsedKey>();
  return (format, presented) => {
    // parsePresentedKey refuses these at once; keeping them would let a client fill the memo with large strings.
    if (presented.length > MAX_MEMO_LENGTH) return { format, canonical: undefined };
    let found = young.get(presented);
    if (found?.format === format) return found;
    found = old.get(presented);
    if (found?.format !== format) found = parse(digest, format, presented);
    young.set(presented, found);
    if (young.size >= size / 2) {
      old = young;
      young = new Map();
    }
    return found;
  };
}

function parse(digest: Digester, format: KeyFormat, presented: string): ParsedKey {
  const canonical = parsePresentedKey(format, presented);
  if (canonical === undefined) return { format, canonical };
  const d = digest(canonical);
  return { format, canonical, digest: d, hex: d.toString("hex") };
}
