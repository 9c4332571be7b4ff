/** The body limit of HTTP /authz (src/transport/http/authz-handler.ts) behind listenHttp; no Postgres or Redis. */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpAuthzHandler } from "../../../src/transport/http/authz-handler.js";
import { type HttpListener, listenHttp } from "../../../src/transport/listen.js";
import { sendH1, sendH2 } from "../../support/raw-client.js";
import { createFakeAuthorizer } from "../fixtures.js";

const MAX = 1024;
const authorizer = createFakeAuthorizer();
let listener: HttpListener;

beforeAll(async () => {
  const handler = createHttpAuthzHandler({ authorizer, maxBodyBytes: MAX });
  listener = await listenHttp((req, res) => handler(req as never, res as never), {
    host: "127.0.0.1",
    port: 0,
    closeGraceMs: 100,
  });
});

afterAll(() => listener.close());

describe("HTTP /authz body limit (no Postgres, no Redis)", () => {
  it("passes a body up to the limit to the authorizer, and refuses a larger one with 413 without waiting for it (property)", async () => {
    const upload = fc.record({
      size: fc.integer({ min: 0, max: 4 * MAX }),
      declared: fc.constantFrom("exact", "none", "more"),
      http2: fc.boolean(),
      byte: fc.integer({ min: 0, max: 255 }),
    });
    await fc.assert(
      fc.asyncProperty(upload, async ({ size, declared, http2, byte }) => {
        const declaredLength =
          declared === "exact" ? size : declared === "more" ? size + 10 * MAX : undefined;
        const over = size > MAX || (declaredLength ?? 0) > MAX;
        const headers: Record<string, string> = { authorization: "Bearer allow" };
        if (declaredLength !== undefined) headers["content-length"] = String(declaredLength);
        const before = authorizer.seen.length;
        const request = {
          path: "/authz/v1/upload",
          headers,
          body: Buffer.alloc(size, byte),
          // A refusal must come while the rest of the body is still missing.
          stall: over,
        };
        const outcome = http2
          ? await sendH2(listener.port, request, 5000)
          : await sendH1(listener.port, request, 5000);
        if (over) {
          expect(outcome.status).toBe(413);
          expect(JSON.parse(outcome.body.toString())).toMatchObject({ error: { code: "payload_too_large" } });
          expect(authorizer.seen.length).toBe(before);
        } else {
          expect(outcome.status).toBe(200);
          const seen = authorizer.seen.at(-1)?.body;
          expect(seen === undefined ? Buffer.alloc(0) : Buffer.from(seen)).toEqual(Buffer.alloc(size, byte));
        }
      }),
      { numRuns: 80 },
    );
  });
});
