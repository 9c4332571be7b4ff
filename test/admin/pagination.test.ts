import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AdminError } from "../../src/admin/errors.js";
import { type Cursor, decodePageToken, encodePageToken } from "../../src/admin/pagination.js";

const base64url = (text: string) => Buffer.from(text).toString("base64url");

// Cursors as the server writes them: a row's created_at and id.
const issued = fc.record({
  at: fc
    .date({
      min: new Date("1970-01-01T00:00:00Z"),
      max: new Date("9999-12-31T23:59:59.999Z"),
      noInvalidDate: true,
    })
    .map((d) => d.toISOString()),
  id: fc
    .tuple(
      fc.constantFrom("key", "ws", "ks", "mem", "apr"),
      fc.string({ unit: fc.constantFrom(..."aZ09"), minLength: 12, maxLength: 12 }),
    )
    .map(([prefix, body]) => `${prefix}_${body}`),
});

// Tokens no server issued: garbage, huge numbers, and well-formed tokens whose fields are out of range or mistyped.
const forged = fc.oneof(
  fc.string({ minLength: 1 }),
  fc.string({ unit: "binary", minLength: 1 }),
  fc.bigInt({ min: 10n ** 18n }).map(String),
  fc.json().map(base64url),
  fc
    .record({
      at: fc.oneof(
        fc
          .date({ noInvalidDate: false })
          .map((d) => (Number.isNaN(d.getTime()) ? "Invalid Date" : d.toISOString())),
        fc
          .integer({ min: 10_000, max: 275_000 })
          .map((y) => `+${String(y).padStart(6, "0")}-01-01T00:00:00.000Z`),
        fc.constantFrom(
          "0000-01-01T00:00:00.000Z",
          "2024-02-30T00:00:00.000Z",
          "2024-01-01",
          "Tue, 1 Jan 2030",
        ),
        fc.string(),
        fc.integer(),
      ),
      id: fc.oneof(fc.string(), fc.constant("key_a\u0000b"), fc.constant("x".repeat(200)), fc.integer()),
    })
    .map((cursor) => base64url(JSON.stringify(cursor))),
);

function outcome(token: string): Cursor | null | "invalid" {
  try {
    return decodePageToken(token);
  } catch (error) {
    if (error instanceof AdminError && error.code === "invalid_argument" && error.field === "page_token") {
      return "invalid";
    }
    throw error;
  }
}

describe("page tokens", () => {
  it("a token the server issued decodes to the cursor it was made from", () => {
    fc.assert(
      fc.property(issued, (cursor) => {
        expect(decodePageToken(encodePageToken(cursor))).toEqual(cursor);
      }),
      { seed: 7, numRuns: 500 },
    );
  });

  it("any other token is invalid_argument naming page_token, or a cursor Postgres can compare", () => {
    fc.assert(
      fc.property(forged, (token) => {
        const decoded = outcome(token);
        if (decoded === "invalid") return;
        // The rare forged token that happens to be well-formed must still be one the server could have issued.
        expect(decoded).not.toBeNull();
        expect(new Date(decoded!.at).toISOString()).toBe(decoded!.at);
        // Postgres reads four-digit years from 0001; a signed six-digit year or year 0 is an error there.
        expect(decoded!.at).toMatch(/^(?!0000)\d{4}-/);
        expect(decoded!.id).toMatch(/^[A-Za-z0-9_]{1,128}$/);
      }),
      { seed: 8, numRuns: 2000 },
    );
  });

  it("timestamps outside 0001-9999, impossible dates and ids with a NUL are refused", () => {
    for (const at of [
      "+275760-09-13T00:00:00.000Z",
      "0000-01-01T00:00:00.000Z",
      "2024-02-30T00:00:00.000Z",
    ]) {
      expect(outcome(base64url(JSON.stringify({ at, id: "key_1" })))).toBe("invalid");
    }
    expect(outcome(base64url(JSON.stringify({ at: "2024-01-01T00:00:00.000Z", id: "key\u0000" })))).toBe(
      "invalid",
    );
    expect(outcome("9999999999999999999")).toBe("invalid");
    expect(outcome("")).toBeNull();
  });
});
