import fc from "fast-check";

// Generators for request paths and for other spellings of the same path, as an attacker would write them to slip
// past route rules: dot segments, `x/..`, doubled slashes, percent-encoded unreserved characters in either hex
// case, and a query or fragment. Shared by the unit properties and the end-to-end ones over the transports.

const UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~";
const SUB_DELIMS = "!$&'()*+,;=:@";

/** One character of a segment, or a percent-encoded byte that is not unreserved, in normal (upper-case) form. */
const token = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...UNRESERVED) },
  { weight: 1, arbitrary: fc.constantFrom(...SUB_DELIMS) },
  { weight: 1, arbitrary: fc.constantFrom("%20", "%C3%A9", "%25", "%3F", "%23", "%E2%82%AC") },
);

/** A path segment in normal form: never empty, never a dot segment. */
export const segment = fc
  .array(token, { minLength: 1, maxLength: 8 })
  .map((tokens) => tokens.join(""))
  .filter((s) => s !== "." && s !== "..");

/** A path in normal form with at least one segment, such as `/billing/x`. */
export const normalPath = fc
  .array(segment, { minLength: 1, maxLength: 5 })
  .map((segments) => `/${segments.join("/")}`);

/** A way of spelling a path differently, applied to its list of segments. */
export type SpellingOp =
  | { kind: "dot"; at: number }
  | { kind: "climb"; at: number; via: string }
  | { kind: "empty"; at: number };

const op: fc.Arbitrary<SpellingOp> = fc.oneof(
  fc.record({ kind: fc.constant("dot" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("climb" as const), at: fc.nat(), via: segment }),
  fc.record({ kind: fc.constant("empty" as const), at: fc.nat() }),
);

/** What to do to each character and escape: keep it, or percent-encode it in upper, lower or mixed hex. */
const encoding = fc.array(fc.constantFrom("keep", "keep", "upper", "lower", "mixed"), {
  minLength: 64,
  maxLength: 64,
});

/** A query or fragment: anything, including what would be refused or change the path if it were not cut off. */
const tail = fc.oneof(
  fc.constant(""),
  fc
    .tuple(
      fc.constantFrom("?", "#", "?a=1#", "?"),
      fc.array(fc.constantFrom(..."ab/.%2F5c\\?#=&"), { maxLength: 12 }),
    )
    .map(([start, chars]) => start + chars.join("")),
);

/** A spelling of `path`, and whether it had an empty segment inserted (which may make it ambiguous, so refused). */
export interface Spelling {
  path: string;
  insertedEmpty: boolean;
}

/** Applies spelling operations to a path in normal form. */
export function spell(
  path: string,
  ops: readonly SpellingOp[],
  encode: readonly string[],
  suffix: string,
): Spelling {
  const segments = path.split("/").slice(1);
  let insertedEmpty = false;
  for (const o of ops) {
    // Always before an existing segment, so the last segment stays last and no trailing slash appears.
    const at = o.at % segments.length;
    if (o.kind === "dot") segments.splice(at, 0, ".");
    else if (o.kind === "climb") segments.splice(at, 0, o.via, "..");
    else {
      segments.splice(at, 0, "");
      insertedEmpty = true;
    }
  }
  let n = 0;
  const encoded = segments.map((s) =>
    s.replace(/%[0-9A-F]{2}|[^%]/g, (t) => {
      const how = encode[n++ % encode.length];
      if (t.length === 3) return how === "lower" || how === "mixed" ? t.toLowerCase() : t;
      if (how === "keep" || !UNRESERVED.includes(t)) return t;
      const hex = t.charCodeAt(0).toString(16).toUpperCase();
      if (how === "upper") return `%${hex}`;
      if (how === "lower") return `%${hex.toLowerCase()}`;
      return `%${hex[0]!.toLowerCase()}${hex[1]}`;
    }),
  );
  return { path: `/${encoded.join("/")}${suffix}`, insertedEmpty };
}

/** A path in normal form with one of its other spellings. */
export function spellingsOf(path: fc.Arbitrary<string>): fc.Arbitrary<{ path: string; spelling: Spelling }> {
  return fc
    .tuple(path, fc.array(op, { maxLength: 5 }), encoding, tail)
    .map(([p, ops, encode, suffix]) => ({ path: p, spelling: spell(p, ops, encode, suffix) }));
}

/** Something a path must not carry: an encoded slash or backslash in any hex case. */
export const encodedSeparator = fc.constantFrom("%2F", "%2f", "%5C", "%5c");

/** Inserts `insert` between two characters or escapes of a path's segments (never inside an escape). */
export function insertInto(path: string, insert: string, at: number): string {
  const cut = path.search(/[?#]/);
  const end = cut < 0 ? path.length : cut;
  const positions: number[] = [];
  for (const m of path.slice(0, end).matchAll(/%[0-9A-Fa-f]{2}|[^%]/g)) {
    if (m.index > 0) positions.push(m.index);
  }
  positions.push(end);
  const i = positions[at % positions.length]!;
  return path.slice(0, i) + insert + path.slice(i);
}
