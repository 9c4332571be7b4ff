import { spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { createEnvoyClient } from "../support/envoy-client.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { BIN, CLI_TIMEOUT_MS, cliEnv, ROOT, runCli } from "./support.js";

describe("bulk key work and approvals through the CLI (needs Postgres)", () => {
  let t: TestServer;
  let env: Record<string, string>;
  let workspaceId: string;

  beforeAll(async () => {
    t = await startTestServer();
    env = cliEnv(t);
    const applied = await runCli(["keyspaces", "apply", "-f", "examples/trustpager.yaml"], env);
    expect(applied.code).toBe(0);
    workspaceId = (await t.admin.createWorkspace({ name: "Plumbing Co", plan: "pro", apiAccess: true }))
      .workspace!.id;
  });
  afterAll(() => t?.stop());

  it(
    "imports keys from a file, and importing it again returns the same keys instead of new ones",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "keymesh-cli-"));
      const file = join(dir, "keys.yaml");
      await writeFile(
        file,
        [
          "defaults:",
          "  key_space_id: trustpager",
          `  workspace_id: ${workspaceId}`,
          "  owner_type: organization",
          "keys:",
          '  - { name: billing, scopes: ["contacts:read"] }',
          '  - { name: crm-sync, scopes: ["contacts:write"], metadata: { team: crm } }',
          "  - { name: ghost, workspace_id: ws_missing }",
        ].join("\n"),
      );
      const first = await runCli(["keys", "import", "-f", file], env);
      // One entry names a workspace that does not exist: it fails alone, and the run says so.
      expect(first.code).toBe(1);
      expect(first.stderr).toContain("importing: 2 of 3 done, 1 failed");
      expect(first.stderr).toMatch(/keys\.yaml key 3 \(ghost\): .*not found/);
      const rows = first.stdout
        .trim()
        .split("\n")
        .map((l) => l.split("\t"));
      expect(rows.map((r) => r[1]).sort()).toEqual(["billing", "crm-sync"]);
      for (const [id, , secret] of rows) {
        expect(id).toMatch(/^key_/);
        expect(secret).toMatch(/^tp_live_/);
      }

      const again = await runCli(["keys", "import", "-f", file], env);
      expect(again.stdout.trim().split("\n").sort()).toEqual(first.stdout.trim().split("\n").sort());
      const listed = await t.admin.listKeys({ workspaceId });
      expect(listed.keys.map((k) => k.name).sort()).toEqual(["billing", "crm-sync"]);
    },
    CLI_TIMEOUT_MS,
  );

  it(
    "watches approvals: a queued request appears, and approving it shows the new status",
    async () => {
      const keySpaceId = (await t.admin.getKeySpace({ id: "trustpager" })).keySpace!.id;
      const { secret } = await t.admin.createKey({
        keySpaceId,
        workspaceId,
        ownerType: OwnerType.ORGANIZATION,
        name: "intern",
        scopes: ["contacts:write-approval"],
      });
      const child = spawn(
        process.execPath,
        [BIN, "approvals", "list", "--watch", "--interval", "1s", "-o", "json"],
        {
          cwd: ROOT,
          env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
        },
      );
      const seen: { id: string; status: string }[] = [];
      let buffered = "";
      const waiters: (() => void)[] = [];
      child.stdout.on("data", (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        for (const line of lines.filter(Boolean)) seen.push(JSON.parse(line));
        for (const wake of waiters.splice(0)) wake();
      });
      const until = async (test: () => boolean) => {
        const deadline = Date.now() + 30_000;
        while (!test()) {
          if (Date.now() > deadline) throw new Error(`watch printed ${JSON.stringify(seen)}`);
          await new Promise<void>((resolve) => {
            waiters.push(resolve);
            setTimeout(resolve, 500);
          });
        }
      };
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      try {
        const envoy = createEnvoyClient(t.grpcAddress);
        const answer = await envoy.check({
          method: "POST",
          path: "/api/contacts",
          headers: { authorization: `Bearer ${secret}` },
          contextExtensions: { "keymesh.key_space": "trustpager" },
        });
        envoy.close();
        const approvalId = (JSON.parse(answer.denied_response!.body) as { approval: { id: string } }).approval
          .id;
        await until(() => seen.some((a) => a.id === approvalId && a.status === "APPROVAL_STATUS_PENDING"));

        const approved = await runCli(["approvals", "approve", approvalId], env);
        expect(approved.code).toBe(0);
        await until(() => seen.some((a) => a.id === approvalId && a.status === "APPROVAL_STATUS_APPROVED"));
        // Each approval is printed when it appears and when it changes, not on every poll.
        expect(seen.filter((a) => a.id === approvalId)).toHaveLength(2);
      } finally {
        child.kill("SIGINT");
      }
      expect(await exited).toBe(0);
    },
    CLI_TIMEOUT_MS,
  );
});
