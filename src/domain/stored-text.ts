/**
 * Rules for request text that keymesh looks up or stores. No HTTP field may carry a NUL (RFC 9110 §5.5), no stored
 * name or id holds one (KeyAdmin refuses them), and databases such as Postgres cannot hold one in text: a NUL is
 * refused up front instead of reaching a store that would fail on it.
 */

/** Key space names are at most 128 characters, which is at most 256 UTF-16 code units. */
const MAX_KEY_SPACE_REFERENCE = 256;

/** Whether `text` is free of NUL characters. */
export function isNulFree(text: string): boolean {
  return !text.includes("\0");
}

/** Whether `ref` could be a key space id or name; when not, it names no key space and needs no lookup. */
export function couldNameKeySpace(ref: string): boolean {
  return ref.length <= MAX_KEY_SPACE_REFERENCE && !ref.includes("\0");
}
