/** Why a request path cannot be matched against route rules; every such path is refused as `invalid_path`. */
export interface PathProblem {
  readonly problem:
    | "not_absolute"
    | "encoded_separator"
    | "backslash"
    | "nul"
    | "bad_percent_encoding"
    | "above_root"
    | "ambiguous_dot_segment";
  /** Safe to show the client: it never repeats the path. */
  readonly message: string;
}

const problem = (kind: PathProblem["problem"], message: string): PathProblem =>
  Object.freeze({ problem: kind, message });

const NOT_ABSOLUTE = problem("not_absolute", "the request path must start with /");
const ENCODED_SEPARATOR = problem(
  "encoded_separator",
  "the request path contains an encoded slash or backslash",
);
const BACKSLASH = problem("backslash", "the request path contains a backslash");
const NUL = problem("nul", "the request path contains a NUL character");
const BAD_PERCENT = problem("bad_percent_encoding", "the request path has invalid percent-encoding");
const ABOVE_ROOT = problem("above_root", "the request path climbs above the root");
const AMBIGUOUS = problem(
  "ambiguous_dot_segment",
  "the request path has a .. segment after an empty one, which servers resolve differently",
);

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const BACKSLASH_CODE = 0x5c;
const QUERY = 0x3f;
const FRAGMENT = 0x23;

/**
 * The one form of a request path that route rules are matched against, or why there is none.
 *
 * - The query (`?…`) and fragment (`#…`) are cut off (RFC 3986 §3.4, §3.5).
 * - Percent-encoded unreserved characters (ALPHA DIGIT `-` `.` `_` `~`, RFC 3986 §2.3) are decoded, hex digits
 *   of either case; every other percent-encoding is kept, with its hex digits upper-cased (§6.2.2.1), so
 *   `%c3%a9` and `%C3%A9` are one path.
 * - Dot segments are removed (§5.2.4, after the decoding, as §6.2.2 orders them), and repeated slashes merged.
 *
 * Refused, because servers behind a proxy resolve them in different ways: a path that is not absolute, an encoded
 * slash or backslash (`%2F`, `%5C`), a raw backslash, a NUL (raw or `%00`), a `%` not followed by two hex digits,
 * a `..` that would climb above the root (§5.2.4 would silently stop at the root), and a `..` that would remove
 * an empty segment (`/a//../b` is `/a/b` when dot segments go first, `/b` when slashes are merged first).
 *
 * The empty path (no request line given, as KeyVerify allows) stays empty. A path needing none of this is
 * returned as it is (or cut at its query), with no further allocation.
 */
export function normalizePath(raw: string): string | PathProblem {
  const length = raw.length;
  if (length === 0) return raw;
  if (raw.charCodeAt(0) !== SLASH) return NOT_ABSOLUTE;
  for (let i = 0; i < length; i++) {
    const c = raw.charCodeAt(i);
    if (c === QUERY || c === FRAGMENT) return raw.slice(0, i);
    if (c === PERCENT || c === BACKSLASH_CODE || c === 0) return slowNormalize(raw);
    if (c === SLASH) {
      const next = raw.charCodeAt(i + 1);
      // `//`, `/.` and `/..` start a segment that the slow path must look at; `/file.json` does not.
      if (next === SLASH || next === DOT) return slowNormalize(raw);
    }
  }
  return raw;
}

/** Whether a string is a path normalizePath returns unchanged: what a route rule's path must be. */
export function isNormalPath(path: string): boolean {
  return normalizePath(path) === path;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function isUnreserved(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2d ||
    c === DOT ||
    c === 0x5f ||
    c === 0x7e
  );
}

const HEX = "0123456789ABCDEF";

/** Decodes unreserved characters and upper-cases the other escapes, stopping at the query or fragment. */
function decodeUnreserved(raw: string): string | PathProblem {
  let out = "";
  let from = 0;
  let i = 0;
  for (; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === QUERY || c === FRAGMENT) break;
    if (c === 0) return NUL;
    if (c === BACKSLASH_CODE) return BACKSLASH;
    if (c !== PERCENT) continue;
    const hi = hexValue(raw.charCodeAt(i + 1));
    const lo = hexValue(raw.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return BAD_PERCENT;
    const value = hi * 16 + lo;
    if (value === SLASH || value === BACKSLASH_CODE) return ENCODED_SEPARATOR;
    if (value === 0) return NUL;
    out += raw.slice(from, i) + (isUnreserved(value) ? String.fromCharCode(value) : `%${HEX[hi]}${HEX[lo]}`);
    i += 2;
    from = i + 1;
  }
  return out + raw.slice(from, i);
}

function slowNormalize(raw: string): string | PathProblem {
  const decoded = decodeUnreserved(raw);
  if (typeof decoded !== "string") return decoded;
  // decoded starts with "/": its segments are what follows each slash.
  const segments = decoded.split("/");
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!;
    const last = i === segments.length - 1;
    if (segment === ".") {
      // A final dot segment leaves the directory it names: `/a/.` is `/a/` (§5.2.4 step 2B).
      if (last) out.push("");
      continue;
    }
    if (segment === "..") {
      if (out.length === 0) return ABOVE_ROOT;
      if (out.pop() === "") return AMBIGUOUS;
      if (last) out.push("");
      continue;
    }
    out.push(segment);
  }
  // Merge repeated slashes: drop empty segments, except a last one, which is the trailing slash.
  let path = "";
  for (let i = 0; i < out.length; i++) {
    if (out[i] === "" && i < out.length - 1) continue;
    path += `/${out[i]}`;
  }
  return path === "" ? "/" : path;
}
