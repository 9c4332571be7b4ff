// The admin decision table and its functions, in process: no Postgres, no Redis.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KeyAdmin } from "../../gen/keymesh/v1/admin_pb.js";
import {
  ADMIN_POLICY,
  type AdminOperation,
  type AdminTarget,
  authorize,
  authorizeCall,
  authorizeGrant,
  permits,
} from "../../src/admin/admin-policy.js";
import { AdminError } from "../../src/admin/errors.js";
import { EXPECTED, LADDER, meets, rung } from "./admin-expectations.js";

const methods = KeyAdmin.methods.map((m) => m.name);

// Scopes a root key could carry or a caller could ask for: the admin ones, near misses, and other vocabularies.
const scopeLike = fc.constantFrom(
  ...LADDER,
  "admin:*",
  "admin",
  "Admin:root",
  "admin:root ",
  "admin:roots",
  "*",
  "root",
  "billing:read",
  "CreatePod",
);
const scopeSet = fc.uniqueArray(scopeLike, { maxLength: 5 });
const operation = fc.constantFrom(...(Object.keys(ADMIN_POLICY) as AdminOperation[]));
const target = fc.constantFrom<AdminTarget>("customer", "system");

function outcome(run: () => void): "allowed" | AdminError["code"] {
  try {
    run();
    return "allowed";
  } catch (error) {
    if (error instanceof AdminError) return error.code;
    throw error;
  }
}

describe("the admin decision table", () => {
  it("has exactly one rule for every KeyAdmin method, and the rules the tests expect", () => {
    expect(Object.keys(ADMIN_POLICY).sort()).toEqual([...methods].sort());
    for (const method of methods) {
      const rule = ADMIN_POLICY[method as AdminOperation] as Record<string, string>;
      const wanted = Object.fromEntries(
        Object.entries(EXPECTED[method] ?? {}).map(([k, v]) => [k, v === "nobody" ? "never" : v]),
      );
      expect({ method, rule }).toEqual({ method, rule: wanted });
    }
  });

  it("allows a call only when the caller's own scopes reach the rule for its target (generated)", () => {
    fc.assert(
      fc.property(scopeSet, operation, target, (scopes, op, where) => {
        const actor = { keyId: "key_x", scopes };
        const allowed = meets(scopes, EXPECTED[op]?.[where]);
        expect(permits(actor, op, where)).toBe(allowed);
        expect(outcome(() => authorize(actor, op, where))).toBe(allowed ? "allowed" : "permission_denied");
      }),
      { numRuns: 3000 },
    );
  });

  it("lets a caller past the first gate only when some target of the method is open to it (generated)", () => {
    fc.assert(
      fc.property(scopeSet, operation, (scopes, op) => {
        const actor = { keyId: "key_x", scopes };
        const anyTarget = Object.values(EXPECTED[op] ?? {}).some((need) => meets(scopes, need));
        expect(outcome(() => authorizeCall(actor, op))).toBe(anyTarget ? "allowed" : "permission_denied");
      }),
      { numRuns: 2000 },
    );
  });

  it("grants a root key only admin scopes, and only those the caller holds itself (generated)", () => {
    fc.assert(
      fc.property(scopeSet, scopeSet, (held, requested) => {
        const actor = { keyId: "key_x", scopes: held };
        const foreign = requested.some((s) => !(LADDER as readonly string[]).includes(s));
        const expected = foreign
          ? "invalid_argument"
          : rung(requested) <= rung(held)
            ? "allowed"
            : "permission_denied";
        expect(outcome(() => authorizeGrant(actor, requested))).toBe(expected);
      }),
      { numRuns: 3000 },
    );
  });

  it("never lets a caller without admin:root touch a root key, whatever it asks for (generated)", () => {
    const rootKeyOps = ["GetKey", "UpdateKey", "RotateKey", "RevokeKey", "ActivateKey", "DeleteKey"] as const;
    fc.assert(
      fc.property(
        scopeSet.filter((s) => !s.includes("admin:root")),
        fc.constantFrom(...rootKeyOps),
        (scopes, op) => {
          expect(permits({ keyId: "key_x", scopes }, op, "system")).toBe(false);
          expect(permits({ keyId: "key_x", scopes }, "CreateRootKey", "system")).toBe(false);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
