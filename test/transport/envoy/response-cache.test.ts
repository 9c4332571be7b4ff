/**
 * Unit test (no Postgres, no Redis): the response cache and the encoder over it answer every verdict with the bytes
 * the uncached protobuf-es encoding gives, whatever came before and whatever was evicted.
 */
import { equals, fromBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CheckResponseSchema } from "../../../gen/envoy/service/auth/v3/external_auth_pb.js";
import type { CredentialSource } from "../../../src/domain/types.js";
import {
  denialFingerprint,
  type Identity,
  identityFingerprint,
  type LimitStatus,
  type Verdict,
} from "../../../src/domain/verdict.js";
import {
  DEFAULT_DECISION_OPTIONS,
  type DecisionOptions,
  isTransportError,
  verdictToDecision,
} from "../../../src/transport/decision.js";
import { createCheckEncoder } from "../../../src/transport/envoy/check-encode.js";
import { createResponseCache } from "../../../src/transport/envoy/response-cache.js";
import { encodeCheckResponse } from "../../../src/transport/envoy/wire/check-response.js";
import {
  completeCheckResponse,
  type FixedCheckResponse,
  prepareCheckResponse,
} from "../../../src/transport/envoy/wire/check-response-parts.js";
import { allow, DENY_REASONS, deny, identity, identityWith, limit } from "../fixtures.js";

// The answer to a 429 names the seconds until its buckets refill, read from the clock: both encodings must see one.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(1_900_000_000_000);
});
afterEach(() => vi.useRealTimers());

const decode = (bytes: Uint8Array) => fromBinary(CheckResponseSchema, bytes);

/** The answer the uncached reference encoding gives, or "unavailable" for a transport error. */
function reference(verdict: Verdict, options: DecisionOptions) {
  if (isTransportError(verdict, options)) return "unavailable" as const;
  return decode(encodeCheckResponse(verdictToDecision(verdict, options)));
}

function encodeThrough(encode: ReturnType<typeof createCheckEncoder>, verdict: Verdict) {
  const outcome = encode(verdict);
  return outcome.kind === "response" ? decode(outcome.bytes) : ("unavailable" as const);
}

function sameAnswer(a: ReturnType<typeof reference>, b: ReturnType<typeof reference>): boolean {
  if (a === "unavailable" || b === "unavailable") return a === b;
  return equals(CheckResponseSchema, a, b);
}

// Small pools, so that sequences revisit the same keys and near-misses (one field apart) often. The odd strings
// probe the fingerprints' separators and the header encoding.
const text = fc.constantFrom("", "a", "b", "1:a", "a1:", "#", "key_1", "ks_1", "ws_1", "é", "a,b", '"q"');
const header = fc.constantFrom("authorization", "x-api-key", "X-Key", "");
const source: fc.Arbitrary<CredentialSource> = fc.oneof(
  fc.constant<CredentialSource>({ kind: "bearer" }),
  fc.constant<CredentialSource>({ kind: "basic" }),
  header.map((h): CredentialSource => ({ kind: "header", header: h })),
);
const figure = fc.oneof(
  fc.integer({ min: 0, max: 2_000_000_000 }),
  fc.constantFrom(1.5, 1e21, 2 ** 53, -1, Number.POSITIVE_INFINITY, Number.NaN),
);
const limitStatus: fc.Arbitrary<LimitStatus> = fc.record({
  name: fc.constantFrom("minute", "hour"),
  appliesTo: fc.constantFrom("key" as const, "workspace" as const),
  limit: figure,
  remaining: figure,
  resetAt: figure,
  retryAfterSeconds: fc.constantFrom(0, 1, 7, 2.5),
});
const limits = fc.array(limitStatus, { maxLength: 2 });

const identityArb: fc.Arbitrary<Identity> = fc
  .record({
    keyId: fc.constantFrom("key_1", "key_2", "1:a", ""),
    keySpaceId: fc.constantFrom("ks_1", "ks_2"),
    workspaceId: fc.constantFrom("ws_1", "ws_2"),
    ownerType: fc.constantFrom("organization" as const, "user" as const),
    ownerMemberId: text,
    actingMemberId: text,
    scopes: fc.array(fc.constantFrom("pods:read", "pods:write", "1:a", ""), { maxLength: 3 }),
    name: text,
    metadata: fc.constant({}),
  })
  .chain((fields) =>
    // Mostly the right fingerprint; sometimes another identity's, as a copied or changed identity would carry.
    fc
      .oneof(
        { weight: 4, arbitrary: fc.constant(identityFingerprint(fields)) },
        { weight: 1, arbitrary: fc.constantFrom(identity.fingerprint, "", "identity 5:key_1") },
      )
      .map((fingerprint) => ({ ...fields, fingerprint })),
  );

const allowArb: fc.Arbitrary<Verdict> = fc.record({
  kind: fc.constant("allow" as const),
  identity: identityArb,
  limits,
  warnings: fc.array(fc.constantFrom("key must be rotated within 3 days", "w", ""), { maxLength: 2 }),
  stripHeaders: fc.array(header, { maxLength: 2 }),
});

const denyArb: fc.Arbitrary<Verdict> = fc
  .record(
    {
      kind: fc.constant("deny" as const),
      reason: fc.constantFrom(...DENY_REASONS),
      message: text,
      limits,
      approval: fc.record({
        id: fc.constantFrom("apr_1", "apr_2", "bad id\n"),
        status: fc.constant("pending" as const),
      }),
      credentialSources: fc.array(source, { maxLength: 3 }),
    },
    { requiredKeys: ["kind", "reason", "message", "limits"] },
  )
  .chain((denial) =>
    fc.constantFrom("none", "right", "stale").map(
      (fingerprint): Verdict =>
        fingerprint === "none"
          ? denial
          : {
              ...denial,
              fingerprint:
                fingerprint === "right"
                  ? denialFingerprint(denial)
                  : denialFingerprint({ reason: "not_found", message: "the API key is not valid" }),
            },
    ),
  );

const verdictArb: fc.Arbitrary<Verdict> = fc.oneof(
  { weight: 5, arbitrary: allowArb },
  { weight: 5, arbitrary: denyArb },
  { weight: 1, arbitrary: text.map((message): Verdict => ({ kind: "error", message })) },
);

const optionsArb: fc.Arbitrary<DecisionOptions> = fc.record({
  identityHeaderPrefix: fc.constantFrom("x-keymesh-", "x-auth-"),
  realm: fc.constantFrom("keymesh", 'r"e'),
  failureMode: fc.constantFrom("deny" as const, "error" as const),
  challenge: fc.constantFrom("Bearer" as const, "Basic" as const),
});

describe("the Check encoder over the response cache", () => {
  it("answers every verdict of a random sequence exactly as the uncached encoding, through hits and evictions", () => {
    fc.assert(
      fc.property(
        optionsArb,
        fc.integer({ min: 0, max: 6 }),
        fc.array(verdictArb, { minLength: 1, maxLength: 60 }),
        (options, size, verdicts) => {
          const encode = createCheckEncoder(options, size);
          // Each verdict twice over: once in order, once again after the rest have come and gone.
          for (const verdict of [...verdicts, ...verdicts.toReversed()]) {
            const got = encodeThrough(encode, verdict);
            if (!sameAnswer(got, reference(verdict, options))) return false;
          }
          return true;
        },
      ),
      { numRuns: 300 },
    );
  });

  it("answers a verdict changed in place after it was answered with the changed content", () => {
    fc.assert(
      fc.property(
        fc.tuple(allowArb, identityArb),
        fc.tuple(denyArb, denyArb),
        ([allowed, other], [denied, otherDenial]) => {
          const encode = createCheckEncoder(DEFAULT_DECISION_OPTIONS, 4);
          encodeThrough(encode, allowed);
          encodeThrough(encode, denied);
          // The fingerprints stay as they were: only the fields change, as a careless caller would change them.
          const { fingerprint: _identity, ...fields } = other;
          Object.assign((allowed as Extract<Verdict, { kind: "allow" }>).identity, fields);
          const { fingerprint: _denial, ...changed } = otherDenial as Extract<Verdict, { kind: "deny" }>;
          Object.assign(denied, changed);
          return [allowed, denied].every((v) =>
            sameAnswer(encodeThrough(encode, v), reference(v, DEFAULT_DECISION_OPTIONS)),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("createResponseCache", () => {
  const build = (v: Verdict) => prepareCheckResponse(verdictToDecision(v));
  const bytes = (fixed: FixedCheckResponse) => Buffer.from(completeCheckResponse(fixed, []));

  it("keeps one entry for verdicts that differ only in their rate-limit figures", () => {
    const cache = createResponseCache();
    const a = cache.fixedPart(allow({ limits: [limit({ remaining: 5 })] }), build);
    const b = cache.fixedPart(allow({ limits: [limit({ remaining: 4 })] }), build);
    expect(b).toBe(a);
    expect([cache.size, cache.hits, cache.misses]).toEqual([1, 1, 1]);
  });

  it("misses for an identity changed under the same fingerprint, and keeps the new one", () => {
    const cache = createResponseCache();
    cache.fixedPart(allow(), build);
    const narrowed = allow({ identity: { ...identity, scopes: ["pods:read"] } });
    expect(bytes(cache.fixedPart(narrowed, build))).toEqual(bytes(build(narrowed)));
    cache.fixedPart(narrowed, build);
    expect([cache.size, cache.hits, cache.misses]).toEqual([1, 1, 2]);
  });

  it("tells apart the headers to strip, the warnings and the credential sources a 401 challenges for", () => {
    const cache = createResponseCache();
    const verdicts = [
      allow(),
      allow({ stripHeaders: [] }),
      allow({ warnings: ["w"] }),
      deny("not_found"),
      deny("not_found", { credentialSources: [{ kind: "header", header: "x-api-key" }] }),
      deny("not_found", { credentialSources: [{ kind: "basic" }] }),
    ];
    for (const v of verdicts) cache.fixedPart(v, build);
    for (const v of verdicts) expect(bytes(cache.fixedPart(v, build))).toEqual(bytes(build(v)));
    // One identity has one slot, holding its latest variant; each denial has its own.
    expect(cache.size).toBe(4);
  });

  it("evicts the least recently used entry when full, keeps an entry in use, and keeps nothing at size 0", () => {
    const cache = createResponseCache(2);
    const [missing, revoked, expired] = [deny("missing"), deny("revoked"), deny("expired")];
    cache.fixedPart(missing, build);
    cache.fixedPart(revoked, build);
    for (let i = 0; i < 5; i++) {
      cache.fixedPart(missing, build);
      cache.fixedPart(expired, build);
      cache.fixedPart(revoked, build);
    }
    expect(cache.size).toBe(2);
    const before = cache.hits;
    cache.fixedPart(missing, build);
    expect(cache.hits).toBe(before);
    const none = createResponseCache(0);
    none.fixedPart(allow(), build);
    none.fixedPart(allow(), build);
    expect([none.size, none.hits]).toEqual([0, 0]);
  });

  it("keeps a busy identity while one-off denials stream past it", () => {
    const cache = createResponseCache(8);
    const busy = allow();
    for (let i = 0; i < 1000; i++) {
      cache.fixedPart(busy, build);
      cache.fixedPart(deny("insufficient_scope", { message: `the API key lacks the scope s${i}` }), build);
    }
    expect(cache.size).toBe(8);
    expect(cache.hits).toBe(999);
  });

  it("never keeps an answer carrying an approval ticket, which no other request shares", () => {
    const cache = createResponseCache();
    cache.fixedPart(deny("approval_required", { approval: { id: "apr_1", status: "pending" } }), build);
    expect(cache.size).toBe(0);
  });

  it("answers the same bytes for an identity whatever fingerprint it carries", () => {
    const cache = createResponseCache();
    const stale = allow({ identity: identityWith({ ...identity, keyId: "key_2" }) });
    if (stale.kind === "allow") stale.identity.fingerprint = identity.fingerprint;
    cache.fixedPart(allow(), build);
    expect(bytes(cache.fixedPart(stale, build))).toEqual(bytes(build(stale)));
  });
});
