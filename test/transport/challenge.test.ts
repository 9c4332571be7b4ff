/**
 * WWW-Authenticate challenges follow the key space's credential sources (pure; no Postgres, no Redis).
 * Properties over generated source lists, realms and deny reasons, read back with an RFC 9110 challenge parser.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { CredentialSource } from "../../src/domain/types.js";
import type { DenyReason, Verdict } from "../../src/domain/verdict.js";
import { challengeHeader, HEADER_CHALLENGE_SCHEME } from "../../src/transport/challenge.js";
import { resolveDecisionOptions, verdictToDecision } from "../../src/transport/decision.js";
import { parseChallenges } from "../support/challenges.js";

const UNAUTHENTICATED: DenyReason[] = [
  "missing",
  "malformed",
  "not_found",
  "revoked",
  "expired",
  "disabled",
  "key_too_old",
];
const OTHER: DenyReason[] = [
  "insufficient_scope",
  "workspace_disabled",
  "api_access_disabled",
  "rate_limited",
  "unavailable",
];

// Header names as the admin API admits them: lower case letters, digits and dashes, at most 64.
const headerName = fc.stringMatching(/^[a-z0-9-]{1,64}$/);
const source: fc.Arbitrary<CredentialSource> = fc.oneof(
  fc.constant<CredentialSource>({ kind: "bearer" }),
  fc.constant<CredentialSource>({ kind: "basic" }),
  headerName.map((header): CredentialSource => ({ kind: "header", header })),
);
const sources = fc.array(source, { minLength: 1, maxLength: 5 });
const realm = fc.string({ unit: "binary", maxLength: 40 });
const reason = fc.constantFrom(...UNAUTHENTICATED);

const schemeOf = (s: CredentialSource) =>
  s.kind === "bearer" ? "Bearer" : s.kind === "basic" ? "Basic" : HEADER_CHALLENGE_SCHEME;

function deny(r: DenyReason, credentialSources?: CredentialSource[]): Verdict {
  const verdict: Extract<Verdict, { kind: "deny" }> = { kind: "deny", reason: r, message: "no", limits: [] };
  if (credentialSources) verdict.credentialSources = credentialSources;
  return verdict;
}

describe("WWW-Authenticate follows the key space's credential sources", () => {
  it("names one parseable challenge per source, in the key space's order, and no scheme the key space does not read", () => {
    fc.assert(
      fc.property(sources, realm, reason, (list, r, why) => {
        const value = challengeHeader(why, list, { realm: r });
        expect(value).toMatch(/^[\t\x20-\x7e]*$/);
        const parsed = parseChallenges(value);
        // Distinct challenges in first-seen order: a source listed twice is challenged once.
        const expected: string[] = [];
        for (const s of list) {
          const key = s.kind === "header" ? `header:${s.header}` : s.kind;
          if (!expected.includes(key)) expected.push(key);
        }
        expect(
          parsed.map((c) =>
            c.scheme === HEADER_CHALLENGE_SCHEME ? `header:${c.params.header}` : c.scheme.toLowerCase(),
          ),
        ).toEqual(expected);
        expect(parsed.map((c) => c.scheme)).toEqual(
          expected.map((k) =>
            schemeOf(list.find((s) => (s.kind === "header" ? `header:${s.header}` : s.kind) === k)!),
          ),
        );
        expect(parsed.some((c) => c.scheme === "Basic")).toBe(list.some((s) => s.kind === "basic"));
        expect(parsed.some((c) => c.scheme === "Bearer")).toBe(list.some((s) => s.kind === "bearer"));
        for (const c of parsed) {
          expect(c.params.realm).toBe(r.replace(/[^\t\x20-\x7e]/g, "?").replace(/["\\]/g, ""));
          // RFC 6750 §3.1: invalid_token only for a token that was presented and refused.
          if (c.scheme === "Bearer")
            expect(c.params.error).toBe(why === "missing" ? undefined : "invalid_token");
          else expect(c.params.error).toBeUndefined();
        }
      }),
      { numRuns: 500 },
    );
  });

  it("never challenges with Basic or Bearer when the key space reads keys only from custom headers", () => {
    fc.assert(
      fc.property(fc.array(headerName, { minLength: 1, maxLength: 4 }), reason, (names, why) => {
        const list = names.map((header): CredentialSource => ({ kind: "header", header }));
        const d = verdictToDecision(deny(why, list));
        expect(d.httpStatus).toBe(401);
        const value = d.responseHeaders.find(([n]) => n === "www-authenticate")?.[1] ?? "";
        const parsed = parseChallenges(value);
        expect(parsed.map((c) => c.scheme)).toEqual(parsed.map(() => HEADER_CHALLENGE_SCHEME));
        expect(parsed.map((c) => c.params.header)).toEqual([...new Set(names)]);
      }),
    );
  });

  it("gives every 401 a challenge from the verdict's sources and no other status one", () => {
    fc.assert(
      fc.property(sources, fc.constantFrom(...UNAUTHENTICATED, ...OTHER), (list, why) => {
        const d = verdictToDecision(deny(why, list));
        const challenges = d.responseHeaders.filter(([n]) => n === "www-authenticate");
        if (d.httpStatus === 401) {
          expect(UNAUTHENTICATED).toContain(why);
          expect(challenges).toEqual([
            ["www-authenticate", challengeHeader(why, list, { realm: "keymesh" })],
          ]);
        } else expect(challenges).toEqual([]);
      }),
    );
  });

  it("falls back to the deployment's scheme when no key space judged the request", () => {
    fc.assert(
      fc.property(
        reason,
        fc.constantFrom<"Basic" | "Bearer" | undefined>("Basic", "Bearer", undefined),
        (why, scheme) => {
          const options = resolveDecisionOptions(scheme ? { challenge: scheme } : {});
          const value = verdictToDecision(deny(why), options).responseHeaders.find(
            ([n]) => n === "www-authenticate",
          )?.[1];
          expect(parseChallenges(value ?? "").map((c) => c.scheme)).toEqual([scheme ?? "Bearer"]);
          expect(challengeHeader(why, [], options)).toBe(value);
        },
      ),
    );
  });
});
