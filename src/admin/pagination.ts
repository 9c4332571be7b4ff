import { invalid } from "./errors.js";

/** A keyset position: the sort value and id of the last row of a page. */
export interface Cursor {
  at: string;
  id: string;
}

/** Encodes a cursor as an opaque page token. */
export function encodePageToken(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString("base64url");
}

// What encodePageToken writes: base64url of a small JSON object. Anything longer or of other characters is forged.
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{1,512}$/;
// The sort value is a Date's toISOString() with a four-digit year; the id one of ours (a prefix and base62).
const AT_SHAPE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ID_SHAPE = /^[A-Za-z0-9_]{1,128}$/;

function isCursor(value: unknown): value is Cursor {
  if (typeof value !== "object" || value === null) return false;
  const { at, id } = value as Record<string, unknown>;
  if (typeof at !== "string" || typeof id !== "string" || !AT_SHAPE.test(at) || !ID_SHAPE.test(id))
    return false;
  const date = new Date(at);
  // Round-tripping rejects impossible dates such as 2024-02-30, which Date would roll over; Postgres has no year 0.
  return !Number.isNaN(date.getTime()) && date.toISOString() === at && date.getUTCFullYear() >= 1;
}

/** Decodes a page token; an empty token is the first page, a forged or damaged one is an invalid argument. */
export function decodePageToken(token: string): Cursor | null {
  if (!token) return null;
  if (TOKEN_SHAPE.test(token)) {
    try {
      const value: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
      if (isCursor(value)) return { at: value.at, id: value.id };
    } catch {
      // fall through to the error below
    }
  }
  throw invalid("page_token", "is not a token this server issued");
}

/** Clamps a requested page size to 1..1000, defaulting to 100. */
export function pageSize(requested: number): number {
  return Math.min(Math.max(requested || 100, 1), 1000);
}

/** Splits `limit + 1` fetched rows into a page and the token for the next one. */
export function paginate<T extends { id: string; created_at: Date }>(
  rows: T[],
  limit: number,
): { page: T[]; nextPageToken: string } {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    page,
    nextPageToken:
      rows.length > limit && last ? encodePageToken({ at: last.created_at.toISOString(), id: last.id }) : "",
  };
}
