// The authorizer's route policy over in-memory stores: no Postgres or Redis.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createKeyCache } from "../../src/cache/key-cache.js";
import { createAuthorizer } from "../../src/domain/authorizer.js";
import type { CheckRequest } from "../../src/domain/check-request.js";
import { createDigester } from "../../src/domain/digest.js";
import { mintKey } from "../../src/domain/key-format.js";
import type { KeySpace } from "../../src/domain/types.js";
import type { Verdict } from "../../src/domain/verdict.js";
import {
  createMemoryKeyLookup,
  createMemoryKeySpaces,
  createMemoryUsage,
} from "../../src/store/memory-lookup.js";
import { normalPath, segment, spellingsOf } from "../support/path-spellings.js";

const digest = createDigester("q".repeat(32));

function billingSpace(overrides: Partial<KeySpace> = {}): KeySpace {
  return {
    id: `ks_${overrides.name ?? "billing"}`,
    name: "billing",
    format: { prefix: "bill_", workspaceSegment: false, style: "single", secretBytes: 0, idPrefix: "" },
    credentialSources: [{ kind: "bearer" }],
    scopeModel: {
      scopes: ["billing:read", "billing:write"],
      hierarchies: [],
      ladders: [],
      fullAccessScope: "",
    },
    defaultKeyLimits: [],
    defaultWorkspaceLimits: [],
    quotas: { maxKeysPerWorkspace: 0, maxUserKeysPerMember: 0, maxOrganizationKeysPerWorkspace: 0 },
    rotationGraceSeconds: 0,
    maxKeyAgeDays: 0,
    routes: [
      { method: "GET", path: "/billing/*", scopes: ["billing:read"], cost: 1 },
      { method: "POST", path: "/billing/*", scopes: ["billing:write"], cost: 1 },
    ],
    unmatchedRoutes: "deny",
    caseInsensitiveRoutes: false,
    creatorRoles: [],
    forwardCredential: false,
    keyAgeWarningDays: 7,
    defaultScopes: [],
    createdAt: new Date(),
    ...overrides,
  };
}

/** An authorizer over one key space holding one key with `scopes`; returns it with the key and the lookup. */
function setup(space: KeySpace, scopes: string[] = ["billing:read"]) {
  const minted = mintKey(space.format, "");
  const now = new Date();
  const entry = {
    key: {
      id: "key_1",
      keySpaceId: space.id,
      workspaceId: "ws_1",
      ownerType: "organization" as const,
      ownerMemberId: "",
      name: "reader",
      display: minted.display,
      scopes,
      metadata: {},
      status: "active" as const,
      createdAt: now,
      updatedAt: now,
      expiresAt: null,
      lastUsedAt: null,
      revokedAt: null,
      rotatedFromId: "",
      rotatedToId: "",
      limits: null,
      rejectionWebhookUrl: "",
    },
    digest: digest(minted.canonical),
    workspace: {
      id: "ws_1",
      name: "acme",
      keySegment: "",
      status: "active" as const,
      apiAccess: true,
      plan: "",
      keyLimits: null,
      workspaceLimits: null,
      maxKeyAgeDays: 0,
      ownerMemberId: "mem_owner",
      createdAt: now,
    },
    owner: null,
  };
  const lookup = createMemoryKeyLookup([entry]);
  const authorizer = createAuthorizer({
    keySpaces: createMemoryKeySpaces([space]),
    lookup,
    cache: createKeyCache({ ttlMs: 60_000, maxEntries: 100, negativeTtlMs: 60_000, negativeMaxEntries: 100 }),
    digest,
    limiter: undefined,
    usage: createMemoryUsage(),
    defaultKeySpace: "",
    rateLimitFailure: "open",
    deadlineMs: 1000,
  });
  const check = async (method: string, path: string, extra: Partial<CheckRequest> = {}): Promise<Verdict> =>
    authorizer.check({
      keySpace: space.name,
      scopes: [],
      method,
      path,
      headers: new Map([["authorization", `Bearer ${minted.secret}`]]),
      cost: 0,
      ...extra,
    });
  return { check, lookup };
}

/** A verdict's outcome: "allow", or the deny reason. */
const outcome = (v: Verdict) => (v.kind === "deny" ? v.reason : v.kind);

describe("route policy in the authorizer", () => {
  it("refuses a path no rule matches with 403-class no_route when the key space has rules and says deny", async () => {
    const { check } = setup(billingSpace());
    expect(outcome(await check("GET", "/billing/x"))).toBe("allow");
    expect(outcome(await check("POST", "/billing/x"))).toBe("insufficient_scope");
    expect(await check("GET", "/elsewhere")).toMatchObject({ kind: "deny", reason: "no_route" });
    expect(outcome(await check("PUT", "/billing/x"))).toBe("no_route");
    expect(outcome(await check("GET", ""))).toBe("no_route");
  });

  it("lets an unmatched path through with the default scopes when the key space says allow", async () => {
    const { check } = setup(billingSpace({ unmatchedRoutes: "allow", defaultScopes: ["billing:read"] }));
    expect(outcome(await check("GET", "/elsewhere"))).toBe("allow");
    const strict = setup(billingSpace({ unmatchedRoutes: "allow", defaultScopes: ["billing:write"] }));
    expect(outcome(await strict.check("GET", "/elsewhere"))).toBe("insufficient_scope");
  });

  it("decides by explicitly demanded scopes, which replace the rules, without refusing an unmatched path", async () => {
    const { check } = setup(billingSpace());
    expect(outcome(await check("GET", "/elsewhere", { scopes: ["billing:read"] }))).toBe("allow");
    expect(outcome(await check("GET", "/elsewhere", { scopes: ["billing:write"] }))).toBe(
      "insufficient_scope",
    );
  });

  it("refuses an invalid path as invalid_path before the key is looked up, whatever the key", async () => {
    const { check, lookup } = setup(billingSpace());
    for (const path of [
      "/billing%2Fx",
      "/billing/..%5Cx",
      "/billing\\x",
      "/billing/x%00",
      "/../billing/x",
      "x",
    ]) {
      expect(outcome(await check("GET", path)), path).toBe("invalid_path");
      expect(outcome(await check("GET", path, { headers: new Map() })), path).toBe("invalid_path");
    }
    expect(lookup.lookups).toBe(0);
    expect(await check("GET", "/billing%2fx")).toMatchObject({
      message: "the request path contains an encoded slash or backslash",
    });
  });

  it("does not read the path of a key space without route rules", async () => {
    const { check } = setup(billingSpace({ routes: [] }));
    expect(outcome(await check("POST", "/files/a%2Fb"))).toBe("allow");
  });

  it("matches case-sensitively unless the key space sets case-insensitive routes", async () => {
    const exact = setup(billingSpace());
    expect(outcome(await exact.check("GET", "/BILLING/x"))).toBe("no_route");
    const folded = setup(billingSpace({ caseInsensitiveRoutes: true }));
    expect(outcome(await folded.check("GET", "/BILLING/x"))).toBe("allow");
    expect(outcome(await folded.check("POST", "/Billing/x"))).toBe("insufficient_scope");
  });

  for (const unmatchedRoutes of ["deny", "allow"] as const) {
    it(`property (${unmatchedRoutes} unmatched): a spelling of a request is decided as the request, or refused as invalid_path`, async () => {
      const space = billingSpace({ name: `billing-${unmatchedRoutes}`, unmatchedRoutes });
      const { check } = setup(space);
      const path = fc.oneof(
        normalPath,
        segment.map((s) => `/billing/${s}`),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom("GET", "POST", "PUT"),
          spellingsOf(path),
          async (method, { path: p, spelling }) => {
            const expected = outcome(await check(method, p));
            const got = outcome(await check(method, spelling.path));
            if (got !== "invalid_path") expect(got).toBe(expected);
          },
        ),
        { numRuns: 3000 },
      );
    });
  }

  it("property: no spelling of POST /billing/<x> is allowed for a billing:read key", async () => {
    for (const unmatchedRoutes of ["deny", "allow"] as const) {
      const { check } = setup(billingSpace({ unmatchedRoutes }));
      await fc.assert(
        fc.asyncProperty(spellingsOf(segment.map((s) => `/billing/${s}`)), async ({ spelling }) => {
          expect(["insufficient_scope", "invalid_path"]).toContain(
            outcome(await check("POST", spelling.path)),
          );
        }),
        { numRuns: 2000 },
      );
    }
  });
});
