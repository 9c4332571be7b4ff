import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseKeySpaceFile } from "../../src/cli/keyspace-file.js";
import {
  compareSettings,
  desiredKeySpace,
  planKeySpace,
  updateRequest,
} from "../../src/cli/keyspace-plan.js";
import { declarationOf } from "../../src/cli/keyspace-render.js";
import { startTestServer, type TestServer } from "../support/server.js";

// Generated key space declarations in the file's own spelling; valid by construction, as apply is meant for them.
const FLAT = ["read", "write", "admin"];
const ladder = fc.record({
  name: fc.constant("records"),
  resources: fc.constantFrom([], ["contacts"]),
  levels: fc.constant(["read", "write-approval", "write"]),
  approval_of: fc.constantFrom({}, { "write-approval": "write" }),
  admin_only: fc.boolean(),
});
const limits = fc.uniqueArray(
  fc.record({
    name: fc.constantFrom("minute", "hour", "day"),
    capacity: fc.integer({ min: 1, max: 100_000 }),
    period_seconds: fc.constantFrom(60, 3600, 86_400),
  }),
  { maxLength: 2, selector: (l) => l.name },
);
const format = fc.oneof(
  fc.record({
    prefix: fc.constantFrom("", "tp_", "x-"),
    workspace_segment: fc.boolean(),
    style: fc.constantFrom("single", "prefix-dot-secret"),
  }),
  fc.constant({ style: "id-secret", id_prefix: "AK-" }),
);
const settings = fc
  .record({
    scopes: fc.subarray(FLAT, { minLength: 1 }),
    hierarchy: fc.boolean(),
    ladder: fc.option(ladder, { nil: undefined }),
    full: fc.constantFrom("", "admin"),
  })
  .chain((model) => {
    const known = [...model.scopes, ...(model.hierarchy ? ["h1", "h2"] : [])];
    return fc.record({
      credential_sources: fc.subarray(["bearer", "basic", { header: "x-api-key" }, { header: "api-key" }], {
        minLength: 1,
      }),
      scope_model: fc.constant({
        scopes: model.scopes,
        hierarchies: model.hierarchy ? [{ scopes: ["h1", "h2"] }] : [],
        ladders: model.ladder ? [model.ladder] : [],
        full_access_scope: model.full,
      }),
      routes: fc.array(
        fc.record({
          method: fc.constantFrom("GET", "POST", "*"),
          path: fc.constantFrom("/a", "/a/*", "/b/**"),
          scopes: fc.subarray(known),
          cost: fc.nat(3),
        }),
        { maxLength: 3 },
      ),
      default_scopes: fc.subarray(known, { maxLength: 1 }),
      unmatched_routes: fc.constantFrom("deny", "allow"),
      case_insensitive_routes: fc.boolean(),
      default_key_limits: limits,
      default_workspace_limits: limits,
      quotas: fc.record({
        max_keys_per_workspace: fc.nat(5),
        max_user_keys_per_member: fc.nat(5),
        max_organization_keys_per_workspace: fc.nat(5),
      }),
      rotation_grace_seconds: fc.nat(100_000),
      max_key_age_days: fc.nat(400),
      creator_roles: fc.subarray(["Developer", "Admin"]),
      forward_credential: fc.boolean(),
    });
  });

type Settings = Record<string, unknown> & { credential_sources: unknown[] };
const declare = (name: string, fixed: Record<string, unknown>, s: Settings) => {
  // ID/secret keys are read from Basic credentials only, so such a key space always has that source.
  const sources =
    (fixed.format as { style: string }).style === "id-secret" && !s.credential_sources.includes("basic")
      ? [...s.credential_sources, "basic"]
      : s.credential_sources;
  const [declaration] = parseKeySpaceFile(
    JSON.stringify({ name, ...fixed, ...s, credential_sources: sources }),
    `${name}.yaml`,
  );
  return declaration!;
};

describe("keyspaces apply semantics against keymesh (needs Postgres)", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t?.stop());

  it("a created key space plans as unchanged, and one update makes any other declaration match exactly", async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(format, fc.nat(30), settings, settings, async (fmt, warningDays, first, second) => {
        const name = `prop-${n++}`;
        const fixed = { format: fmt, key_age_warning_days: warningDays };
        const a = declare(name, fixed, first as Settings);
        const created = planKeySpace(a, undefined);
        if (created.action !== "create") throw new Error("expected a create");
        const { keySpace } = await t.admin.createKeySpace(created.request);
        // What keymesh stores reads back as the declaration: no setting shows a spurious change.
        expect(planKeySpace(a, keySpace).action).toBe("unchanged");
        // A key space exported as a file declares the same key space.
        const [exported] = parseKeySpaceFile(JSON.stringify(declarationOf(keySpace!)), "export.yaml");
        expect(compareSettings(keySpace!, desiredKeySpace(exported!.request))).toEqual([]);

        const b = declare(name, fixed, second as Settings);
        const plan = planKeySpace(b, keySpace);
        if (plan.action === "update") {
          expect(plan.changes.map((c) => c.setting)).not.toContain("format");
          await t.admin.updateKeySpace(updateRequest(plan.id, plan.desired, plan.changes));
        }
        const after = (await t.admin.getKeySpace({ id: keySpace!.id })).keySpace!;
        expect(compareSettings(after, desiredKeySpace(b.request))).toEqual([]);
        expect(planKeySpace(b, after).action).toBe("unchanged");
      }),
      { numRuns: 25 },
    );
  }, 120_000);
});
