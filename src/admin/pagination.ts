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

/** Decodes a page token; an empty token is the first page, a forged one is an invalid argument. */
export function decodePageToken(token: string): Cursor | null {
  if (!token) return null;
  try {
    const value = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as Cursor;
    if (typeof value.at === "string" && typeof value.id === "string" && !Number.isNaN(Date.parse(value.at))) {
      return value;
    }
  } catch {
    // fall through to the error below
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
