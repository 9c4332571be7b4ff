/**
 * DeleteWorkspace leaves no key working behind it and no row pointing at a missing workspace; GetMember and
 * GetApproval read single objects. Needs Postgres (no Redis).
 */
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApprovalStatus, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { codeOf, gateway } from "../scenarios/support.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { createApprovalKeySpace } from "./approvals-support.js";

let t: TestServer;
let sql: postgres.Sql;
let gw: ReturnType<typeof gateway>;
let keySpaceId: string;

beforeAll(async () => {
  t = await startTestServer();
  sql = postgres(t.databaseUrl, { max: 2, onnotice: () => {} });
  keySpaceId = await createApprovalKeySpace(t, "deletable");
  gw = gateway(t, "deletable");
});

afterAll(async () => {
  gw?.close();
  await sql?.end();
  await t?.stop();
});

type KeyState = "active" | "revoked" | "expired";
interface Population {
  members: number;
  keys: { state: KeyState; user: boolean; approvals: number }[];
}

const population: fc.Arbitrary<Population> = fc.record({
  members: fc.integer({ min: 0, max: 2 }),
  keys: fc.array(
    fc.record({
      state: fc.constantFrom<KeyState>("active", "revoked", "expired"),
      user: fc.boolean(),
      approvals: fc.integer({ min: 0, max: 1 }),
    }),
    { maxLength: 4 },
  ),
});

/** POST /things with a key: 200 when it may, 202 when it queues an approval, 401 when it is not a key. */
const post = async (secret: string, extra: Record<string, string> = {}) =>
  (await gw.request("POST", "/things", { authorization: `Bearer ${secret}`, ...extra })).status;

/** Builds a workspace holding `p`: members, keys in each state, and approvals queued by those keys. */
async function build(p: Population) {
  const id = (await t.admin.createWorkspace({ name: "doomed", apiAccess: true })).workspace!.id;
  const members: string[] = [];
  for (let i = 0; i < p.members; i++)
    members.push((await t.admin.addMember({ workspaceId: id, name: `m${i}`, role: "Dev" })).member!.id);
  const keys: { id: string; secret: string; state: KeyState }[] = [];
  for (const spec of p.keys) {
    const user = spec.user && members.length > 0;
    const issued = await t.admin.createKey({
      keySpaceId,
      workspaceId: id,
      ownerType: user ? OwnerType.USER : OwnerType.ORGANIZATION,
      memberId: user ? members[0] : "",
      name: "k",
      scopes: spec.approvals > 0 ? ["things:write-approval"] : ["things:write"],
      idempotencyKey: `idem-${keys.length}`,
    });
    const key = { id: issued.key!.id, secret: issued.secret, state: spec.state };
    for (let i = 0; i < spec.approvals; i++) expect(await post(key.secret)).toBe(202);
    if (spec.state === "revoked") await t.admin.revokeKey({ id: key.id });
    // Keys cannot be created already expired, so the expiry is moved in the database.
    if (spec.state === "expired")
      await sql`update keys set expires_at = now() - interval '1 second' where id = ${key.id}`;
    keys.push(key);
  }
  return { id, members, keys };
}

/** Everything stored about a workspace, to compare before and after a refused deletion. */
const stored = (id: string) => sql`
  select (select row_to_json(w) from workspaces w where id = ${id}) as workspace,
         (select json_agg(m order by m.id) from members m where workspace_id = ${id}) as members,
         (select json_agg(k order by k.id) from keys k where workspace_id = ${id}) as keys,
         (select json_agg(a order by a.id) from approvals a where workspace_id = ${id}) as approvals,
         (select count(*)::int from idempotency where workspace_id = ${id}) as idempotency`;

describe("DeleteWorkspace (needs Postgres)", () => {
  it("deletes a workspace with everything in it, or refuses while a key still works without force (generated)", async () => {
    await fc.assert(
      fc.asyncProperty(population, fc.boolean(), async (p, force) => {
        const ws = await build(p);
        const active = ws.keys.filter((k) => k.state === "active");
        const before = await stored(ws.id);
        const outcome = await t.admin.deleteWorkspace({ id: ws.id, force }).catch((e: unknown) => e);
        if (active.length > 0 && !force) {
          expect(await codeOf(Promise.reject(outcome))).toBe(Code.FailedPrecondition);
          expect(String(outcome)).toMatch(/active key.*force/);
          expect(await stored(ws.id)).toEqual(before);
          for (const key of active) expect(await post(key.secret)).not.toBe(401);
          // Clean up so that later runs see only their own workspace.
          await t.admin.deleteWorkspace({ id: ws.id, force: true });
          return;
        }
        expect(outcome).toMatchObject({
          deletedKeys: ws.keys.length,
          revokedKeys: active.length,
          deletedMembers: ws.members.length,
          deletedApprovals: p.keys.reduce((n, k) => n + k.approvals, 0),
        });
        const [after] = await stored(ws.id);
        expect(after).toEqual({
          workspace: null,
          members: null,
          keys: null,
          approvals: null,
          idempotency: 0,
        });
        const ids = ws.keys.map((k) => k.id);
        if (ids.length > 0) {
          const [usage] = await sql`select count(*)::int as n from key_usage where key_id in ${sql(ids)}`;
          expect(usage!.n).toBe(0);
        }
        expect(await codeOf(t.admin.getWorkspace({ id: ws.id }))).toBe(Code.NotFound);
        for (const key of ws.keys) expect(await post(key.secret)).toBe(401);
        // The audit log keeps the workspace and every key it took with it.
        const { events } = await t.admin.listAuditEvents({ targetId: ws.id, pageSize: 10 });
        expect(events[0]?.action).toBe("workspace.delete");
        for (const key of ws.keys) {
          const trail = await t.admin.listAuditEvents({ targetId: key.id, pageSize: 10 });
          expect(trail.events[0]?.action).toBe("key.delete");
        }
      }),
      { numRuns: 15 },
    );
  }, 120_000);

  it("never leaves a key or member behind when creates race a forced deletion (generated)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 3 }),
        async (keys, delay) => {
          const ws = await build({ members: 1, keys: [{ state: "active", user: false, approvals: 0 }] });
          const creates = Array.from({ length: keys }, () =>
            t.admin.createKey({
              keySpaceId,
              workspaceId: ws.id,
              ownerType: OwnerType.ORGANIZATION,
              name: "racer",
              scopes: ["things:write"],
            }),
          );
          const member = t.admin.addMember({ workspaceId: ws.id, name: "late", role: "Dev" });
          await new Promise((resolve) => setTimeout(resolve, delay));
          const deletion = t.admin.deleteWorkspace({ id: ws.id, force: true });
          const settled = await Promise.allSettled([...creates, member]);
          expect(await codeOf(deletion)).toBe("ok");
          for (const result of settled) {
            if (result.status === "rejected")
              expect(await codeOf(Promise.reject(result.reason))).toBe(Code.NotFound);
          }
          expect((await stored(ws.id))[0]).toMatchObject({ workspace: null, members: null, keys: null });
          for (const result of settled.slice(0, keys)) {
            if (result.status === "fulfilled" && "secret" in result.value)
              expect(await post(result.value.secret)).toBe(401);
          }
        },
      ),
      { numRuns: 10 },
    );
  }, 120_000);

  it("answers NOT_FOUND for a workspace that does not exist, and refuses the system workspace to every caller", async () => {
    expect(await codeOf(t.admin.deleteWorkspace({ id: "ws_nope" }))).toBe(Code.NotFound);
    expect(await codeOf(t.admin.deleteWorkspace({ id: "ws_keymesh", force: true }))).toBe(
      Code.PermissionDenied,
    );
    expect(await codeOf(t.admin.deleteWorkspace({ id: "" }))).toBe(Code.InvalidArgument);
    const [rootKeys] = await sql`select count(*)::int as n from keys where workspace_id = 'ws_keymesh'`;
    expect(rootKeys!.n).toBeGreaterThan(0);
  });
});

describe("GetMember and GetApproval (needs Postgres)", () => {
  it("GetMember returns the member ListMembers lists, and NOT_FOUND for an unknown id", async () => {
    const ws = await build({ members: 2, keys: [] });
    const { members } = await t.admin.listMembers({ workspaceId: ws.id });
    for (const member of members) expect((await t.admin.getMember({ id: member.id })).member).toEqual(member);
    expect(await codeOf(t.admin.getMember({ id: "mem_nope" }))).toBe(Code.NotFound);
  });

  it("GetApproval returns the queued request with its headers, as ListApprovals does, through its decision", async () => {
    const ws = await build({ members: 0, keys: [{ state: "active", user: false, approvals: 1 }] });
    const { approvals } = await t.admin.listApprovals({ workspaceId: ws.id });
    expect(approvals).toHaveLength(1);
    const queued = approvals[0]!;
    expect((await t.admin.getApproval({ id: queued.id })).approval).toEqual(queued);
    expect(queued.headers).not.toHaveProperty("authorization");
    await t.admin.rejectRequest({ id: queued.id, reason: "not today" });
    const decided = (await t.admin.getApproval({ id: queued.id })).approval!;
    expect(decided).toMatchObject({ status: ApprovalStatus.REJECTED, reason: "not today" });
    expect(await codeOf(t.admin.getApproval({ id: "apr_nope" }))).toBe(Code.NotFound);
  });
});
