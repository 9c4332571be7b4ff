import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createKeyCache } from "../../src/cache/key-cache.js";
import { gateApproval } from "../../src/domain/approvals.js";
import { createAuthorizer } from "../../src/domain/authorizer.js";
import { createDigester } from "../../src/domain/digest.js";
import type { ApprovalGate, KeySpaceDirectory } from "../../src/domain/ports.js";
import { createMemoryKeyLookup, createMemoryUsage } from "../../src/store/memory-lookup.js";

// References no key space can have: a NUL anywhere, or longer than a 128-character name can be.
const unusableReference = fc.oneof(
  fc.tuple(fc.string(), fc.string()).map(([a, b]) => `${a}\u0000${b}`),
  fc.string({ minLength: 257, maxLength: 2000 }),
  fc.integer({ min: 257, max: 70_000 }).map((n) => "k".repeat(n)),
);

function authorizerOver(directory: KeySpaceDirectory) {
  return createAuthorizer({
    keySpaces: directory,
    lookup: createMemoryKeyLookup([]),
    cache: createKeyCache({ ttlMs: 60_000, maxEntries: 10, negativeTtlMs: 60_000, negativeMaxEntries: 10 }),
    digest: createDigester("p".repeat(32)),
    limiter: undefined,
    usage: createMemoryUsage(),
    defaultKeySpace: "",
    rateLimitFailure: "open",
    deadlineMs: 150,
  });
}

describe("text that cannot be stored never reaches a store", () => {
  it("a key space reference with a NUL or past any name's length is unknown, without a lookup", () => {
    const asked: string[] = [];
    // A directory whose store would fail on such text: the authorizer must not ask it.
    const directory: KeySpaceDirectory = {
      get(ref) {
        asked.push(ref);
        return Promise.reject(new Error("invalid byte sequence for encoding UTF8: 0x00"));
      },
      all: async () => [],
    };
    const authorizer = authorizerOver(directory);
    fc.assert(
      fc.property(unusableReference, (keySpace) => {
        const verdict = authorizer.check({
          keySpace,
          scopes: [],
          method: "GET",
          path: "/",
          headers: new Map([["authorization", "Bearer x"]]),
          cost: 0,
        });
        // Decided on the spot, like any unknown key space: a denial, never the store's error.
        expect(verdict).toMatchObject({ kind: "deny", reason: "not_found" });
      }),
      { seed: 31, numRuns: 300 },
    );
    expect(asked).toEqual([]);
  });

  it("an approval-level request with a NUL anywhere is refused without touching the approvals store", async () => {
    const calls: string[] = [];
    const gate: ApprovalGate = {
      async open() {
        calls.push("open");
        return "apr_1";
      },
      async redeem() {
        calls.push("redeem");
        return true;
      },
    };
    const nul = fc.tuple(fc.string(), fc.string()).map(([a, b]) => `${a}\u0000${b}`);
    const request = fc
      .record({
        method: fc.constantFrom("GET", "POST"),
        path: fc.constantFrom("/things", "/things/1"),
        headers: fc.dictionary(fc.constantFrom("x-a", "x-keymesh-approval", "accept"), fc.string(), {
          maxKeys: 3,
        }),
      })
      .chain((r) =>
        fc.oneof(
          nul.map((method) => ({ ...r, method })),
          nul.map((path) => ({ ...r, path })),
          fc
            .tuple(fc.constantFrom("x-a", "x-keymesh-approval", "authorization"), nul)
            .map(([name, value]) => ({
              ...r,
              headers: { ...r.headers, [name]: value },
            })),
          nul.map((name) => ({ ...r, headers: { ...r.headers, [name]: "v" } })),
        ),
      );
    await fc.assert(
      fc.asyncProperty(request, async ({ method, path, headers }) => {
        const outcome = await gateApproval(
          gate,
          "x-keymesh-approval",
          { method, path, headers: new Map(Object.entries(headers)) },
          { keyId: "key_1", workspaceId: "ws_1", keySpaceId: "ks_1", credentialHeaders: ["authorization"] },
          "things:write",
        );
        expect(outcome.kind).toBe("refused");
      }),
      { seed: 32, numRuns: 300 },
    );
    expect(calls).toEqual([]);
  });

  it("an approval ticket longer than any approval id is refused without a lookup", async () => {
    let redeemed = 0;
    const gate: ApprovalGate = {
      open: async () => "apr_1",
      redeem: async () => {
        redeemed++;
        return true;
      },
    };
    const outcome = await gateApproval(
      gate,
      "x-keymesh-approval",
      { method: "POST", path: "/things", headers: new Map([["x-keymesh-approval", "a".repeat(129)]]) },
      { keyId: "key_1", workspaceId: "ws_1", keySpaceId: "ks_1", credentialHeaders: [] },
      "things:write",
    );
    expect(outcome.kind).toBe("refused");
    expect(redeemed).toBe(0);
  });
});
