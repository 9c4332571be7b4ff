import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { createEnvoyClient } from "../support/envoy-client.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { CLI_TIMEOUT_MS, cliEnv, json, runCli } from "./support.js";

// `workspaces delete`, `members get` and `approvals show` run as subprocesses against a real server.
describe("deleting workspaces and reading members and approvals through the CLI (needs Postgres)", () => {
  let t: TestServer;
  let env: Record<string, string>;
  let keySpaceId: string;

  beforeAll(async () => {
    t = await startTestServer();
    env = cliEnv(t);
    const applied = await runCli(["keyspaces", "apply", "-f", "examples/trustpager.yaml"], env);
    expect(applied.code).toBe(0);
    keySpaceId = (await t.admin.getKeySpace({ id: "trustpager" })).keySpace!.id;
  });
  afterAll(() => t?.stop());

  const key = async (workspaceId: string, scopes: string[]) =>
    t.admin.createKey({
      keySpaceId,
      workspaceId,
      ownerType: OwnerType.ORGANIZATION,
      name: "ci",
      scopes,
    });

  it(
    "deletes a workspace only with --yes, and one whose keys still work only with --force, after which they are denied",
    async () => {
      const ws = (await t.admin.createWorkspace({ name: "Doomed", apiAccess: true })).workspace!.id;
      await t.admin.addMember({ workspaceId: ws, name: "Ann", role: "Developer" });
      const { secret } = await key(ws, ["contacts:write"]);
      const check = ["check", "--key-space", "trustpager", "--method", "POST", "--path", "/api/contacts"];
      expect((await runCli([...check, secret], env)).code).toBe(0);

      const unconfirmed = await runCli(["workspaces", "delete", ws], env);
      expect(unconfirmed.code).toBe(64);
      expect(unconfirmed.stderr).toContain("add --yes to confirm");

      const refused = await runCli(["workspaces", "delete", ws, "--yes"], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/1 active key.*keymesh keys revoke.*--force deletes them/s);
      expect((await t.admin.getWorkspace({ id: ws })).workspace!.id).toBe(ws);
      expect((await runCli([...check, secret], env)).code).toBe(0);

      const deleted = await runCli(["workspaces", "delete", ws, "--yes", "--force", "-o", "json"], env);
      expect(deleted.stderr).toContain(`deleted workspace ${ws}: 1 key(s), 1 of them active until now`);
      expect(deleted.code).toBe(0);
      expect(json(deleted)).toEqual({
        id: ws,
        deletedKeys: 1,
        revokedKeys: 1,
        deletedMembers: 1,
        deletedApprovals: 0,
      });
      const denied = await runCli([...check, "-o", "json", secret], env);
      expect(denied.code).toBe(2);
      expect(json(denied)).toMatchObject({ decision: "deny", status: 401 });
      const gone = await runCli(["workspaces", "get", ws], env);
      expect(gone.code).toBe(3);
      expect(gone.stderr).toContain("keymesh workspaces list");

      // The system workspace holds the root keys: no root key may delete it, so a higher scope is no advice.
      const system = await runCli(["workspaces", "delete", "ws_keymesh", "--yes", "--force"], env);
      expect(system.code).toBe(2);
      expect(system.stderr).toContain("no root key may do this");
      expect(system.stderr).not.toContain("higher admin scope");
    },
    CLI_TIMEOUT_MS,
  );

  it(
    "shows one member and one approval by id, and exits 3 for ids that do not exist",
    async () => {
      const ws = (await t.admin.createWorkspace({ name: "Readers", apiAccess: true })).workspace!.id;
      const { member } = await t.admin.addMember({ workspaceId: ws, name: "Bo", role: "Admin" });
      const shown = await runCli(["members", "get", member!.id, "-o", "json"], env);
      expect(shown.code).toBe(0);
      expect(json(shown)).toMatchObject({ id: member!.id, workspaceId: ws, name: "Bo", role: "Admin" });
      expect((await runCli(["members", "get", "mem_nope"], env)).code).toBe(3);

      const { secret } = await key(ws, ["contacts:write-approval"]);
      const envoy = createEnvoyClient(t.grpcAddress);
      const answer = await envoy.check({
        method: "POST",
        path: "/api/contacts",
        headers: { authorization: `Bearer ${secret}`, "x-request-note": "hello" },
        contextExtensions: { "keymesh.key_space": "trustpager" },
      });
      envoy.close();
      const approvalId = (JSON.parse(answer.denied_response!.body) as { approval: { id: string } }).approval
        .id;
      const approval = await runCli(["approvals", "show", approvalId, "-o", "json"], env);
      expect(approval.code).toBe(0);
      expect(json(approval)).toMatchObject({
        id: approvalId,
        workspaceId: ws,
        status: "APPROVAL_STATUS_PENDING",
        path: "/api/contacts",
        headers: { "x-request-note": "hello" },
      });
      const missing = await runCli(["approvals", "show", "apr_nope"], env);
      expect(missing.code).toBe(3);
      expect(missing.stderr).toContain("keymesh approvals list");
    },
    CLI_TIMEOUT_MS,
  );
});
