/**
 * Fuzzes every KeyAdmin method of a real server (needs Postgres) with the root key: messages derived from the
 * generated schemas by reflection, sent as JSON and as binary protobuf, and raw garbage in both encodings. Whatever
 * arrives, the answer is a success or a client error, never a server fault, and the server keeps serving.
 */
import { create, type DescMessage, type DescMethod, toBinary, toJsonString } from "@bufbuild/protobuf";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyAdmin } from "../../gen/keymesh/v1/admin_pb.js";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { gateway } from "../scenarios/support.js";
import { messageArbitrary, mutantArbitrary } from "../support/proto-arbitrary.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { createApprovalKeySpace } from "./approvals-support.js";

// Fixed seeds keep `npm test` reproducible; a failure prints its seed and path for replay. About 300 requests go
// out in each encoding.
const SEED = 0x6b6d;
const RUNS = 150;
const GARBAGE_RUNS = 100;

let t: TestServer;
// Filled in once the fixture exists; see ProtoArbitraryOptions.dictionary.
const dictionary: Record<string, string[]> = {
  scopes: ["things:read", "things:write", "things:write-approval", "admin:read"],
  default_scopes: ["things:read"],
  levels: ["read", "write"],
  creator_roles: ["Developer"],
  role: ["Developer"],
  method: ["POST", "GET", "*"],
  path: ["/things", "/things/*", "/**"],
  prefix: ["fz_", ""],
  id_prefix: ["AK-"],
  key_segment: ["fz01", ""],
  rejection_webhook_url: ["https://example.com/hook", ""],
  reason: ["not now"],
  name: ["fz-1"],
};
// Valid requests for mutants to start from, written once the fixture exists.
let seeds: Record<string, object> = {};
const methods: DescMethod[] = KeyAdmin.methods;

beforeAll(async () => {
  t = await startTestServer();
  const keySpaceId = await createApprovalKeySpace(t, "fuzzed");
  const { workspace } = await t.admin.createWorkspace({ name: "w", apiAccess: true });
  const workspaceId = workspace!.id;
  const { member } = await t.admin.addMember({ workspaceId, name: "m", role: "Developer" });
  // Several keys: the fuzzer revokes, rotates and deletes some of them along the way.
  const keys = await Promise.all(
    [1, 2, 3].map(() =>
      t.admin.createKey({
        keySpaceId,
        workspaceId,
        ownerType: OwnerType.ORGANIZATION,
        name: "agent",
        scopes: ["things:write-approval"],
      }),
    ),
  );
  const created = keys[0]!;
  const keyIds = keys.map((k) => k.key!.id);
  const gw = gateway(t, "fuzzed");
  const queued = await gw.request("POST", "/things", { authorization: `Bearer ${created.secret}` });
  gw.close();
  const approvalId = (JSON.parse(queued.body) as { approval: { id: string } }).approval.id;
  const memberId = member!.id;
  Object.assign(dictionary, {
    id: [keySpaceId, "fuzzed", workspaceId, memberId, ...keyIds, approvalId],
    key_space_id: [keySpaceId, "fuzzed"],
    workspace_id: [workspaceId],
    member_id: [memberId],
    owner_member_id: [memberId],
    target_id: keyIds,
  });
  const limits = { limits: [{ name: "fz-1", capacity: 10n, periodSeconds: 60n }] };
  seeds = {
    CreateKeySpace: {
      name: "seeded",
      format: { prefix: "sd_", style: KeyStyle.SINGLE },
      credentialSources: [{ kind: CredentialSourceKind.BEARER }],
      scopeModel: { scopes: ["a", "b"], ladders: [{ name: "l", levels: ["read", "write"] }] },
      routes: [{ method: "GET", path: "/x/*", scopes: ["a"], cost: 2 }],
      defaultKeyLimits: limits.limits,
      creatorRoles: ["Developer"],
      defaultScopes: ["a"],
    },
    UpdateKeySpace: {
      id: keySpaceId,
      name: "renamed",
      routes: { rules: [{ method: "POST", path: "/things" }] },
    },
    CreateWorkspace: { name: "seeded", plan: "pro", keyLimits: limits, maxKeyAgeDays: 30 },
    UpdateWorkspace: { id: workspaceId, plan: "team", ownerMemberId: memberId, workspaceLimits: limits },
    AddMember: { workspaceId, name: "seeded", role: "Developer" },
    UpdateMember: { id: memberId, role: "Admin" },
    CreateKey: {
      keySpaceId,
      workspaceId,
      ownerType: OwnerType.USER,
      memberId,
      name: "seeded",
      scopes: ["things:read"],
      metadata: { team: "fuzz", tags: ["a", 1, null] },
      limits,
      rejectionWebhookUrl: "https://example.com/hook",
      idempotencyKey: "seeded",
    },
    UpdateKey: { id: keyIds[1], name: "renamed", metadata: { n: 1 }, scopes: { values: ["things:read"] } },
    RotateKey: { id: keyIds[2], graceSeconds: 60n },
    ListKeys: { workspaceId, keySpaceId, pageSize: 2 },
    ListApprovals: { workspaceId, pageSize: 2 },
    RejectRequest: { id: approvalId, reason: "not now" },
    CreateRootKey: { name: "seeded", scopes: ["admin:read"] },
    ListAuditEvents: { targetId: keyIds[0], pageSize: 2 },
  };
});

afterAll(async () => {
  await t?.stop();
});

interface Answer {
  status: number;
  body: string;
}

async function call(method: DescMethod, body: Uint8Array | string, contentType: string): Promise<Answer> {
  const res = await fetch(`${t.httpUrl}/${KeyAdmin.typeName}/${method.name}`, {
    method: "POST",
    headers: {
      "content-type": contentType,
      "connect-protocol-version": "1",
      authorization: `Bearer ${t.rootKey}`,
    },
    body,
    signal: AbortSignal.timeout(20_000),
  });
  return { status: res.status, body: await res.text() };
}

/** A server fault: a 5xx, or an error code that blames the server. */
function isFault(answer: Answer): boolean {
  return answer.status >= 500 || /"code":"(internal|unknown|data_loss|unavailable)"/.test(answer.body);
}

// Methods with many fields have the most to get wrong; they are picked more often than Get/Revoke-style ones.
const methodArbitrary = fc.oneof(
  ...methods.map((m) => ({ weight: m.input.fields.length > 2 ? 3 : 1, arbitrary: fc.constant(m) })),
);

// Clean messages pass the generic input rules and often buf.validate; mutants of a valid request get one odd value
// past validation into the services and Postgres; wild ones carry anything the encoding can.
function requestArbitrary(method: DescMethod) {
  const input = method.input as DescMessage;
  return fc.oneof(
    messageArbitrary(input, { dictionary, clean: true }),
    messageArbitrary(input, { dictionary }),
    mutantArbitrary(input, seeds[method.name] ?? {}, { dictionary }),
  );
}

async function expectServing(): Promise<void> {
  const health = await fetch(`${t.httpUrl}/healthz`);
  expect(health.status).toBe(200);
  await expect(t.admin.listWorkspaces({})).resolves.toBeDefined();
}

describe("KeyAdmin under fuzzed input with the root key (needs Postgres)", () => {
  it("the requests mutants start from are valid", async () => {
    for (const [name, seed] of Object.entries(seeds)) {
      const method = methods.find((m) => m.name === name)!;
      const answer = await call(
        method,
        toBinary(method.input, create(method.input, seed as never)),
        "application/proto",
      );
      expect(answer.status, `${name}: ${answer.body}`).toBe(200);
    }
  });

  it("schema-derived messages as binary protobuf never get a server fault", async () => {
    await fc.assert(
      fc.asyncProperty(
        methodArbitrary.chain((m) => fc.tuple(fc.constant(m), requestArbitrary(m))),
        async ([method, message]) => {
          const answer = await call(method, toBinary(method.input, message), "application/proto");
          expect(isFault(answer), `${method.name}: ${answer.status} ${answer.body}`).toBe(false);
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
    await expectServing();
  });

  it("schema-derived messages as JSON never get a server fault", async () => {
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(
        methodArbitrary.chain((m) => fc.tuple(fc.constant(m), requestArbitrary(m))),
        async ([method, message]) => {
          let json: string;
          try {
            json = toJsonString(method.input, message);
          } catch {
            // Values JSON cannot carry (a NaN in a Struct, a timestamp out of range) go out as binary only.
            return;
          }
          sent++;
          const answer = await call(method, json, "application/json");
          expect(isFault(answer), `${method.name}: ${answer.status} ${answer.body}`).toBe(false);
        },
      ),
      { seed: SEED + 1, numRuns: RUNS },
    );
    expect(sent).toBeGreaterThan(RUNS / 2);
    await expectServing();
  });

  it("JSON of the right field names with values of any type never gets a server fault", async () => {
    const bodies = methodArbitrary.chain((m) => {
      const names = m.input.fields.flatMap((f) => [f.jsonName, f.name]);
      const key = names.length
        ? fc.oneof(fc.constantFrom(...names), fc.string({ maxLength: 12 }))
        : fc.string({ maxLength: 12 });
      return fc.tuple(fc.constant(m), fc.dictionary(key, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }));
    });
    await fc.assert(
      fc.asyncProperty(bodies, async ([method, body]) => {
        const answer = await call(method, JSON.stringify(body), "application/json");
        expect(isFault(answer), `${method.name}: ${answer.status} ${answer.body}`).toBe(false);
      }),
      { seed: SEED + 2, numRuns: GARBAGE_RUNS },
    );
  });

  it("garbage bytes and broken JSON never get a server fault", async () => {
    const garbage = fc.oneof(
      fc.uint8Array({ maxLength: 256 }).map((b) => ({ body: b, type: "application/proto" })),
      fc.string({ unit: "binary", maxLength: 256 }).map((s) => ({ body: s, type: "application/json" })),
      fc.tuple(fc.json(), fc.nat(), fc.string({ maxLength: 3 })).map(([json, at, cut]) => ({
        body: json.slice(0, at % (json.length + 1)) + cut,
        type: "application/json",
      })),
    );
    await fc.assert(
      fc.asyncProperty(methodArbitrary, garbage, async (method, { body, type }) => {
        const answer = await call(method, body, type);
        expect(isFault(answer), `${method.name}: ${answer.status} ${answer.body}`).toBe(false);
      }),
      { seed: SEED + 3, numRuns: GARBAGE_RUNS },
    );
    await expectServing();
  });

  it("valid binary messages damaged in flight (truncated, flipped bytes) never get a server fault", async () => {
    const damaged = methodArbitrary.chain((m) =>
      fc.tuple(
        fc.constant(m),
        requestArbitrary(m),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat(),
      ),
    );
    await fc.assert(
      fc.asyncProperty(damaged, async ([method, message, flips, cut]) => {
        const bytes = toBinary(method.input, message);
        for (const [at, value] of flips) if (bytes.length) bytes[at % bytes.length] = value;
        const answer = await call(method, bytes.subarray(0, cut % (bytes.length + 1)), "application/proto");
        expect(isFault(answer), `${method.name}: ${answer.status} ${answer.body}`).toBe(false);
      }),
      { seed: SEED + 4, numRuns: GARBAGE_RUNS },
    );
    await expectServing();
  });
});
