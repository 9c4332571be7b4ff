/** Unit test (no Postgres, no Redis): fingerprints name a verdict's content, and nothing else. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { CredentialSource } from "../../src/domain/types.js";
import {
  type DenyReason,
  denialFingerprint,
  type IdentityFields,
  identityFingerprint,
} from "../../src/domain/verdict.js";

// Few values, with the fingerprints' own punctuation among them, so that pairs often differ in one field only or
// could run one part into the next if parts were not delimited.
const text = fc.constantFrom("", "a", "1:a", "a1:", "#", "1#", "-#", "identity ", "deny 1:a", "é");

const identityFields = fc.record({
  keyId: text,
  keySpaceId: text,
  workspaceId: text,
  ownerType: fc.constantFrom("organization" as const, "user" as const),
  ownerMemberId: text,
  actingMemberId: text,
  scopes: fc.array(text, { maxLength: 3 }),
  name: text,
  metadata: fc.constant({}),
});
const named = (i: IdentityFields) => [
  i.keyId,
  i.keySpaceId,
  i.workspaceId,
  i.ownerType,
  i.ownerMemberId,
  i.actingMemberId,
  i.scopes,
];

const source: fc.Arbitrary<CredentialSource> = fc.oneof(
  fc.constant<CredentialSource>({ kind: "bearer" }),
  fc.constant<CredentialSource>({ kind: "basic" }),
  text.map((header): CredentialSource => ({ kind: "header", header })),
);
const denial = fc.record(
  {
    reason: fc.constantFrom<DenyReason>("not_found", "missing", "approval_required"),
    message: text,
    credentialSources: fc.array(source, { maxLength: 3 }),
    approval: fc.record({ id: text, status: fc.constant("pending" as const) }),
  },
  { requiredKeys: ["reason", "message"] },
);

describe("identityFingerprint", () => {
  it("is shared by two identities exactly when every field but name and metadata is equal", () => {
    fc.assert(
      fc.property(identityFields, identityFields, (a, b) => {
        const same = JSON.stringify(named(a)) === JSON.stringify(named(b));
        return (identityFingerprint(a) === identityFingerprint(b)) === same;
      }),
      { numRuns: 5000 },
    );
  });
});

describe("denialFingerprint", () => {
  it("is shared by two denials exactly when reason, message, credential sources and ticket are equal", () => {
    fc.assert(
      fc.property(denial, denial, (a, b) => {
        const content = (d: typeof a) =>
          JSON.stringify([d.reason, d.message, d.credentialSources ?? null, d.approval ?? null]);
        return (denialFingerprint(a) === denialFingerprint(b)) === (content(a) === content(b));
      }),
      { numRuns: 5000 },
    );
  });

  it("tells a denial without credential sources from one with an empty list", () => {
    expect(denialFingerprint({ reason: "missing", message: "m" })).not.toBe(
      denialFingerprint({ reason: "missing", message: "m", credentialSources: [] }),
    );
  });
});
