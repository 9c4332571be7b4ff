import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";
import { CLI_TIMEOUT_MS, cliEnv, json, ROOT, runCli } from "./support.js";

const FILES = ["trumpet", "trustpager", "trailmark", "trint", "trophy"].flatMap((n) => [
  "-f",
  `examples/${n}.yaml`,
]);
const NAMES = ["trumpet", "trustpager", "trailmark", "trint", "trint-legacy", "trophy"];

interface Applied {
  action: string;
  name: string;
  id: string;
  changed: string[];
}

// The vendor recipes as files in git: applied, re-applied and diffed by the CLI as a subprocess.
describe("keyspaces apply and diff with the examples/ recipes (needs Postgres)", () => {
  let t: TestServer;
  let env: Record<string, string>;
  const auditCount = async () => (await t.admin.listAuditEvents({ pageSize: 1000 })).events.length;

  beforeAll(async () => {
    t = await startTestServer();
    env = cliEnv(t);
  });
  afterAll(() => t?.stop());

  it(
    "creates all six key spaces, then a second apply changes nothing and diff prints nothing",
    async () => {
      const first = await runCli(["keyspaces", "apply", ...FILES, "-o", "json"], env);
      expect(first.code).toBe(0);
      const created = json<Applied[]>(first);
      expect(created.map((a) => [a.action, a.name])).toEqual(NAMES.map((n) => ["created", n]));
      const before = await auditCount();

      const second = await runCli(["keyspaces", "apply", ...FILES, "-o", "json"], env);
      expect(second.code).toBe(0);
      expect(json<Applied[]>(second)).toEqual(created.map((a) => ({ ...a, action: "unchanged" })));
      // Not one UpdateKeySpace: an unchanged key space is not even rewritten.
      expect(await auditCount()).toBe(before);

      const diff = await runCli(["keyspaces", "diff", ...FILES, "--exit-code"], env);
      expect(diff.stdout).toBe("");
      expect(diff.stderr).toContain("all 6 key spaces match");
      expect(diff.code).toBe(0);

      // What keymesh holds matches the documented recipe, setting by setting.
      const trophy = (await t.admin.getKeySpace({ id: "trophy" })).keySpace!;
      expect(trophy.quotas?.maxKeysPerWorkspace).toBe(3);
      expect(trophy.credentialSources).toMatchObject([{ header: "x-api-key" }]);
    },
    CLI_TIMEOUT_MS,
  );

  it(
    "shows a changed setting as a diff, and apply sends only that setting",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "keymesh-cli-"));
      const file = join(dir, "trailmark.yaml");
      const original = await readFile(join(ROOT, "examples/trailmark.yaml"), "utf8");
      await writeFile(
        file,
        original.replace(
          "rotation_grace_seconds: 86400",
          "rotation_grace_seconds: 3600\nunmatched_routes: allow",
        ),
      );
      await runCli(["keyspaces", "apply", "-f", "examples/trailmark.yaml"], env);

      const diff = await runCli(["keyspaces", "diff", "-f", file, "--exit-code"], env);
      expect(diff.code).toBe(1);
      expect(diff.stdout).toContain("~ key space trailmark");
      expect(diff.stdout).toContain("  - rotation_grace_seconds: 86400\n  + rotation_grace_seconds: 3600");
      expect(diff.stdout).toContain("  - unmatched_routes: deny\n  + unmatched_routes: allow");
      expect(diff.stdout).not.toContain("routes:\n");

      const applied = await runCli(["keyspaces", "apply", "-f", file, "-o", "json"], env);
      expect(json<Applied[]>(applied)).toMatchObject([
        { action: "updated", name: "trailmark", changed: ["unmatched_routes", "rotation_grace_seconds"] },
      ]);
      const [event] = (await t.admin.listAuditEvents({ pageSize: 1 })).events;
      expect(event?.action).toBe("key_space.update");
      const space = (await t.admin.getKeySpace({ id: "trailmark" })).keySpace!;
      expect(space.rotationGraceSeconds).toBe(3600n);
      expect(space.routes).toHaveLength(3);
      expect((await runCli(["keyspaces", "diff", "-f", file], env)).stdout).toBe("");
    },
    CLI_TIMEOUT_MS,
  );

  it(
    "refuses a change to a setting fixed at creation, applying nothing and saying what to do",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "keymesh-cli-"));
      const file = join(dir, "both.yaml");
      const trumpet = await readFile(join(ROOT, "examples/trumpet.yaml"), "utf8");
      const trophy = await readFile(join(ROOT, "examples/trophy.yaml"), "utf8");
      await writeFile(
        file,
        `${trophy.replace("max_keys_per_workspace: 3", "max_keys_per_workspace: 5")}\n---\n${trumpet.replace("prefix: trpt_", "prefix: tr_")}`,
      );
      const before = await auditCount();

      const refused = await runCli(["keyspaces", "apply", "-f", file], env);
      expect(refused.code).toBe(65);
      expect(refused.stderr).toContain('key space "trumpet"');
      expect(refused.stderr).toContain("format cannot change after creation");
      expect(refused.stderr).toContain("declare a key space with a new name");
      expect(refused.stderr).toContain("Nothing was applied");
      expect(await auditCount()).toBe(before);

      const diff = await runCli(["keyspaces", "diff", "-f", file], env);
      expect(diff.code).toBe(65);
      expect(diff.stdout).toContain("! format cannot change after the key space is created");
    },
    CLI_TIMEOUT_MS,
  );
});
