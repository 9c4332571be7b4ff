import { describe, expect, it } from "vitest";
import { createKeyCache } from "../../src/cache/key-cache.js";
import { type AuthorizerOptions, createAuthorizer } from "../../src/domain/authorizer.js";
import type { CheckRequest } from "../../src/domain/check-request.js";
import { createDigester } from "../../src/domain/digest.js";
import { identityOf } from "../../src/domain/identity.js";
import type { KeyEntry } from "../../src/domain/key-entry.js";
import { mintKey } from "../../src/domain/key-format.js";
import type { RateLimiter } from "../../src/domain/ports.js";
import type { Key, KeySpace, Workspace } from "../../src/domain/types.js";
import { denialFingerprint, identityFingerprint } from "../../src/domain/verdict.js";
import {
  createMemoryKeyLookup,
  createMemoryKeySpaces,
  createMemoryUsage,
} from "../../src/store/memory-lookup.js";

const digest = createDigester("p".repeat(32));

const space: KeySpace = {
  id: "ks_1",
  name: "trumpet",
  format: { prefix: "trpt_", workspaceSegment: true, style: "single", secretBytes: 0, idPrefix: "" },
  credentialSources: [{ kind: "bearer" }],
  scopeModel: { scopes: ["CreatePod"], hierarchies: [], ladders: [], fullAccessScope: "" },
  defaultKeyLimits: [],
  defaultWorkspaceLimits: [],
  quotas: { maxKeysPerWorkspace: 0, maxUserKeysPerMember: 0, maxOrganizationKeysPerWorkspace: 0 },
  rotationGraceSeconds: 0,
  maxKeyAgeDays: 0,
  routes: [{ method: "POST", path: "/v1/pods", scopes: ["CreatePod"], cost: 1 }],
  creatorRoles: [],
  forwardCredential: false,
  keyAgeWarningDays: 7,
  defaultScopes: [],
  unmatchedRoutes: "deny",
  caseInsensitiveRoutes: false,
  createdAt: new Date(),
};

const workspace: Workspace = {
  id: "ws_1",
  name: "acme",
  keySegment: "acme",
  status: "active",
  apiAccess: true,
  plan: "pro",
  keyLimits: null,
  workspaceLimits: null,
  maxKeyAgeDays: 0,
  ownerMemberId: "mem_owner",
  createdAt: new Date(),
};

function makeKey(
  overrides: Partial<Key> = {},
  ws: Partial<Workspace> = {},
): { secret: string; entry: KeyEntry } {
  const minted = mintKey(space.format, "acme");
  const key: Key = {
    id: `key_${Math.random().toString(36).slice(2)}`,
    keySpaceId: space.id,
    workspaceId: workspace.id,
    ownerType: "user",
    ownerMemberId: "mem_1",
    name: "ci",
    display: minted.display,
    scopes: ["CreatePod"],
    metadata: {},
    status: "active",
    createdAt: new Date(),
    updatedAt: new Date(),
    expiresAt: null,
    lastUsedAt: null,
    revokedAt: null,
    rotatedFromId: "",
    rotatedToId: "",
    limits: null,
    rejectionWebhookUrl: "",
    ...overrides,
  };
  const owner = {
    id: "mem_1",
    workspaceId: workspace.id,
    name: "u",
    role: "dev",
    status: "active" as const,
    createdAt: new Date(),
  };
  return {
    secret: minted.secret,
    entry: { key, digest: digest(minted.canonical), workspace: { ...workspace, ...ws }, owner },
  };
}

function setup(entries: KeyEntry[], extra: Partial<AuthorizerOptions> = {}) {
  const lookup = createMemoryKeyLookup(entries);
  const usage = createMemoryUsage();
  const authorizer = createAuthorizer({
    keySpaces: createMemoryKeySpaces([space]),
    lookup,
    cache: createKeyCache({ ttlMs: 60_000, maxEntries: 100, negativeTtlMs: 60_000, negativeMaxEntries: 100 }),
    digest,
    limiter: undefined,
    usage,
    defaultKeySpace: "",
    rateLimitFailure: "open",
    deadlineMs: 150,
    ...extra,
  });
  return { authorizer, lookup, usage };
}

function request(authorization: string | undefined, overrides: Partial<CheckRequest> = {}): CheckRequest {
  const headers = new Map<string, string>();
  if (authorization !== undefined) headers.set("authorization", authorization);
  return {
    keySpace: "trumpet",
    scopes: [],
    method: "POST",
    path: "/v1/pods",
    headers,
    cost: 0,
    ...overrides,
  };
}

describe("authorizer", () => {
  it("allows a valid key with the route's scope and strips the credential header", async () => {
    const { secret, entry } = makeKey();
    const { authorizer, usage } = setup([entry]);
    const verdict = await authorizer.check(request(`Bearer ${secret}`));
    expect(verdict).toMatchObject({
      kind: "allow",
      stripHeaders: ["authorization"],
      identity: { keyId: entry.key.id },
    });
    expect(usage.counts.get(entry.key.id)).toBe(1);
  });

  it("a missing key, a malformed key and an unknown key are each told apart", async () => {
    const { authorizer, lookup } = setup([]);
    expect(await authorizer.check(request(undefined))).toMatchObject({ kind: "deny", reason: "missing" });
    expect(await authorizer.check(request("Bearer trpt_acme_garbage"))).toMatchObject({
      kind: "deny",
      reason: "malformed",
    });
    expect(lookup.lookups).toBe(0);
    const unknown = mintKey(space.format, "acme").secret;
    expect(await authorizer.check(request(`Bearer ${unknown}`))).toMatchObject({
      kind: "deny",
      reason: "not_found",
    });
    await authorizer.check(request(`Bearer ${unknown}`));
    expect(lookup.lookups).toBe(1);
  });

  it("a revoked, expired or closed-owner key is refused", async () => {
    const revoked = makeKey({ revokedAt: new Date() });
    const expired = makeKey({ expiresAt: new Date(Date.now() - 1000) });
    const closed = makeKey();
    closed.entry.owner = { ...closed.entry.owner!, status: "closed" };
    const { authorizer } = setup([revoked.entry, expired.entry, closed.entry]);
    expect(await authorizer.check(request(`Bearer ${revoked.secret}`))).toMatchObject({ reason: "revoked" });
    expect(await authorizer.check(request(`Bearer ${expired.secret}`))).toMatchObject({ reason: "expired" });
    expect(await authorizer.check(request(`Bearer ${closed.secret}`))).toMatchObject({ reason: "disabled" });
  });

  it("an organization key keeps working when its creator closes, and acts as the account owner", async () => {
    const org = makeKey({ ownerType: "organization" });
    org.entry.owner = { ...org.entry.owner!, status: "closed" };
    const { authorizer } = setup([org.entry]);
    expect(await authorizer.check(request(`Bearer ${org.secret}`))).toMatchObject({
      kind: "allow",
      identity: { actingMemberId: "mem_owner" },
    });
  });

  it("a disabled workspace and a plan without API access are refused", async () => {
    const disabled = makeKey({}, { status: "disabled" });
    const noPlan = makeKey({}, { apiAccess: false });
    const { authorizer } = setup([disabled.entry, noPlan.entry]);
    expect(await authorizer.check(request(`Bearer ${disabled.secret}`))).toMatchObject({
      reason: "workspace_disabled",
    });
    expect(await authorizer.check(request(`Bearer ${noPlan.secret}`))).toMatchObject({
      reason: "api_access_disabled",
      message: expect.stringContaining("plan"),
    });
  });

  it("a key lacking the route's scope is refused as insufficient scope", async () => {
    const { secret, entry } = makeKey({ scopes: [] });
    const { authorizer } = setup([entry]);
    expect(await authorizer.check(request(`Bearer ${secret}`))).toMatchObject({
      reason: "insufficient_scope",
    });
  });

  it("a key past the maximum age is refused, and one within a week of it is warned", async () => {
    const old = makeKey({ createdAt: new Date(Date.now() - 91 * 86_400_000) }, { maxKeyAgeDays: 90 });
    const aging = makeKey({ createdAt: new Date(Date.now() - 85 * 86_400_000) }, { maxKeyAgeDays: 90 });
    const { authorizer } = setup([old.entry, aging.entry]);
    expect(await authorizer.check(request(`Bearer ${old.secret}`))).toMatchObject({ reason: "key_too_old" });
    const warned = await authorizer.check(request(`Bearer ${aging.secret}`));
    expect(warned).toMatchObject({
      kind: "allow",
      warnings: [expect.stringContaining("rotated within 5 days")],
    });
  });

  it("a key of another key space answers exactly like an unknown key", async () => {
    const { secret, entry } = makeKey({ keySpaceId: "ks_other" });
    const unknown = makeKey();
    const { authorizer } = setup([entry]);
    const verdict = await authorizer.check(request(`Bearer ${secret}`));
    const denial = { reason: "not_found", message: "the API key is not valid" } as const;
    expect(verdict).toEqual({
      kind: "deny",
      ...denial,
      limits: [],
      credentialSources: space.credentialSources,
      fingerprint: denialFingerprint({ ...denial, credentialSources: space.credentialSources }),
    });
    expect(verdict).toEqual(await authorizer.check(request(`Bearer ${unknown.secret}`)));
  });

  it("a hanging key store still yields a decision by the deadline, as an error verdict", async () => {
    const { secret } = makeKey();
    const { authorizer } = setup([], {
      lookup: { findByDigest: () => new Promise(() => {}) },
      deadlineMs: 50,
    });
    expect(await authorizer.check(request(`Bearer ${secret}`))).toMatchObject({ kind: "error" });
  });

  it("a failing rate limiter fails open with a warning, or closed with 'unavailable', never as rate limited", async () => {
    const { secret, entry } = makeKey({ limits: [{ name: "minute", capacity: 10, periodSeconds: 60 }] });
    const rejecting: RateLimiter = {
      consume: () => Promise.reject(new Error("down")),
      close: async () => {},
    };
    const throwing: RateLimiter = {
      consume: () => {
        throw new Error("down");
      },
      close: async () => {},
    };
    for (const broken of [rejecting, throwing]) {
      const open = setup([entry], { limiter: broken, rateLimitFailure: "open" }).authorizer;
      expect(await open.check(request(`Bearer ${secret}`))).toMatchObject({
        kind: "allow",
        warnings: [expect.any(String)],
      });
      const closed = setup([entry], { limiter: broken, rateLimitFailure: "closed" }).authorizer;
      expect(await closed.check(request(`Bearer ${secret}`))).toMatchObject({
        kind: "deny",
        reason: "unavailable",
      });
    }
  });

  it("answers without a promise when no backend is asked, and with one for a store lookup or a rate limit", async () => {
    const valid = makeKey();
    const revoked = makeKey({ revokedAt: new Date() });
    const limited = makeKey({ limits: [{ name: "minute", capacity: 10, periodSeconds: 60 }] });
    const limiter: RateLimiter = {
      consume: async () => ({ allowed: true, statuses: [] }),
      close: async () => {},
    };
    const { authorizer } = setup([valid.entry, revoked.entry, limited.entry], { limiter });
    const unknown = mintKey(space.format, "acme").secret;
    const isPromise = (value: unknown) => value instanceof Promise;
    // The first sight of each key asks the store; the answer is cached, found or not.
    for (const secret of [valid.secret, revoked.secret, limited.secret, unknown]) {
      const first = authorizer.check(request(`Bearer ${secret}`));
      expect(isPromise(first)).toBe(true);
      await first;
    }
    const direct = [
      [request(undefined), "missing"],
      [request("Bearer trpt_acme_garbage"), "malformed"],
      [request(`Bearer ${unknown}`), "not_found"],
      [request(`Bearer ${revoked.secret}`), "revoked"],
    ] as const;
    for (const [req, reason] of direct) expect(authorizer.check(req)).toMatchObject({ kind: "deny", reason });
    expect(authorizer.check(request(`Bearer ${valid.secret}`))).toMatchObject({ kind: "allow", limits: [] });
    const charged = authorizer.check(request(`Bearer ${limited.secret}`));
    expect(isPromise(charged)).toBe(true);
    expect(await charged).toMatchObject({ kind: "allow" });
  });
});

describe("key cache", () => {
  it("a lookup that began before an invalidation does not fill the cache with what it read", async () => {
    const cache = createKeyCache({
      ttlMs: 60_000,
      maxEntries: 10,
      negativeTtlMs: 60_000,
      negativeMaxEntries: 10,
    });
    const { entry } = makeKey();
    const readAt = cache.generation;
    cache.invalidate({ type: "key", id: entry.key.id });
    cache.set("d", entry, readAt);
    expect(cache.get("d").kind).toBe("unknown");
    cache.set("d", entry, cache.generation);
    expect(cache.get("d").kind).toBe("hit");
  });

  /** An authorizer over a cache with a 10 s TTL on a clock the test moves. */
  function withClock(entries: KeyEntry[]) {
    let t = 1_000_000;
    const cache = createKeyCache({
      ttlMs: 10_000,
      maxEntries: 10,
      negativeTtlMs: 10_000,
      negativeMaxEntries: 10,
      now: () => t,
    });
    const { authorizer, lookup } = setup(entries, { cache });
    return { authorizer, lookup, advance: (ms: number) => (t += ms) };
  }
  const settled = () => new Promise((resolve) => setImmediate(resolve));

  it("re-reads a key in use in the background before its TTL ends, so no Check waits on the store", async () => {
    const { secret, entry } = makeKey();
    const { authorizer, lookup, advance } = withClock([entry]);
    await authorizer.check(request(`Bearer ${secret}`));
    advance(7_000);
    expect(authorizer.check(request(`Bearer ${secret}`))).toMatchObject({ kind: "allow" });
    expect(lookup.lookups).toBe(1);
    // Within the last fifth of the TTL: still answered from the cache, at once, and re-read once meanwhile.
    advance(1_500);
    expect(authorizer.check(request(`Bearer ${secret}`))).toMatchObject({ kind: "allow" });
    expect(authorizer.check(request(`Bearer ${secret}`))).toMatchObject({ kind: "allow" });
    await settled();
    expect(lookup.lookups).toBe(2);
    // Past the first TTL, the re-read entry answers without a lookup.
    advance(5_000);
    expect(authorizer.check(request(`Bearer ${secret}`))).toMatchObject({ kind: "allow" });
    expect(lookup.lookups).toBe(2);
  });

  it("ends a cached key that the background re-read no longer finds", async () => {
    const { secret, entry } = makeKey();
    const { authorizer, lookup, advance } = withClock([entry]);
    await authorizer.check(request(`Bearer ${secret}`));
    lookup.findByDigest = async () => undefined;
    advance(8_500);
    expect(authorizer.check(request(`Bearer ${secret}`))).toMatchObject({ kind: "allow" });
    await settled();
    expect(authorizer.check(request(`Bearer ${secret}`))).toMatchObject({
      kind: "deny",
      reason: "not_found",
    });
  });

  it("keeps serving a key whose background re-read fails until its TTL, then surfaces the failure", async () => {
    const { secret, entry } = makeKey();
    const { authorizer, lookup, advance } = withClock([entry]);
    await authorizer.check(request(`Bearer ${secret}`));
    lookup.findByDigest = () => Promise.reject(new Error("database down"));
    advance(8_500);
    expect(authorizer.check(request(`Bearer ${secret}`))).toMatchObject({ kind: "allow" });
    await settled();
    expect(authorizer.check(request(`Bearer ${secret}`))).toMatchObject({ kind: "allow" });
    advance(2_000);
    expect(await authorizer.check(request(`Bearer ${secret}`))).toMatchObject({ kind: "error" });
  });
});

describe("identityOf", () => {
  it("gives every allow of an unchanged entry the same frozen identity, and a fresh one once the entry changes", async () => {
    const { secret, entry } = makeKey({ ownerType: "organization", scopes: ["CreatePod"] });
    const { authorizer } = setup([entry]);
    const first = await authorizer.check(request(`Bearer ${secret}`));
    const second = await authorizer.check(request(`Bearer ${secret}`));
    if (first.kind !== "allow" || second.kind !== "allow") throw new Error("expected allows");
    expect(second.identity).toBe(first.identity);
    expect(Object.isFrozen(first.identity) && Object.isFrozen(first.identity.scopes)).toBe(true);
    expect(first.identity).toMatchObject({ keyId: entry.key.id, actingMemberId: "mem_owner" });

    // Entries are meant to be replaced whole; one whose key or workspace record is swapped still gets a fresh identity.
    const swapped: KeyEntry = { ...entry };
    const before = identityOf(swapped);
    swapped.key = { ...entry.key, scopes: ["DeletePod"] };
    expect(identityOf(swapped)).not.toBe(before);
    expect(identityOf(swapped).scopes).toEqual(["DeletePod"]);
    expect(identityOf(swapped).fingerprint).toBe(identityFingerprint(identityOf(swapped)));
    expect(identityOf(swapped).fingerprint).not.toBe(before.fingerprint);
    swapped.workspace = { ...entry.workspace, ownerMemberId: "mem_new" };
    expect(identityOf(swapped)).toMatchObject({ actingMemberId: "mem_new" });
  });
});
