/**
 * Text-format codecs for the one-dimensional arrays keymesh stores (`text[]`) and sends (`text[]`, `bigint[]`).
 *
 * postgres.js learns array types by querying `pg_type` on every new connection, outside any caller's promise: when
 * that query fails (a statement timeout while Postgres is slow), the rejection is unhandled and Node exits. With
 * these codecs the pool runs with `fetch_types: false` and needs no such query.
 *
 * Format: https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO
 */

/** The array type OIDs keymesh binds or reads (pg_type.dat: `_text`, `_int8`). */
export const TEXT_ARRAY_OID = 1009;
export const INT8_ARRAY_OID = 1016;

/** Writes a one-dimensional array literal, every element quoted, so any text (and any number) reads back as sent. */
export function serializeArray(values: unknown): string {
  if (!Array.isArray(values)) throw new TypeError("expected an array for an array parameter");
  return `{${values.map(serializeElement).join(",")}}`;
}

function serializeElement(value: unknown): string {
  if (value === null) return "NULL";
  if (Array.isArray(value)) throw new TypeError("nested arrays are not supported");
  return `"${String(value).replace(/[\\"]/g, "\\$&")}"`;
}

/**
 * Reads a one-dimensional text array literal as Postgres writes it: elements bare or double-quoted with backslash
 * escapes, unquoted NULL as null, an optional `[1:n]=` bounds prefix.
 */
export function parseTextArray(literal: string): (string | null)[] {
  let i = literal.startsWith("[") ? literal.indexOf("=") + 1 : 0;
  if (literal[i] !== "{" || literal[literal.length - 1] !== "}") throw malformed(literal);
  i++;
  const out: (string | null)[] = [];
  if (literal[i] === "}") return out;
  for (;;) {
    if (literal[i] === "{") throw new TypeError("multi-dimensional arrays are not supported");
    let element = "";
    if (literal[i] === '"') {
      i++;
      while (literal[i] !== '"') {
        if (i >= literal.length) throw malformed(literal);
        if (literal[i] === "\\") i++;
        element += literal[i++];
      }
      i++;
      out.push(element);
    } else {
      while (literal[i] !== "," && literal[i] !== "}") {
        if (i >= literal.length) throw malformed(literal);
        element += literal[i++];
      }
      out.push(element === "NULL" ? null : element);
    }
    if (literal[i] === "}") {
      if (i !== literal.length - 1) throw malformed(literal);
      return out;
    }
    if (literal[i] !== ",") throw malformed(literal);
    i++;
  }
}

function malformed(literal: string): TypeError {
  return new TypeError(`malformed array literal of ${literal.length} characters`);
}
