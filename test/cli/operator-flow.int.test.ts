import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";
import { CLI_TIMEOUT_MS, cliEnv, json, runCli } from "./support.js";

// The "done" flow, as an operator types it: the CLI runs as a subprocess against a real server.
describe("the keymesh CLI against a running keymesh (needs Postgres)", () => {
  let t: TestServer;
  let env: Record<string, string>;

  beforeAll(async () => {
    t = await startTestServer();
    env = cliEnv(t);
  });
  afterAll(() => t?.stop());

  it(
    "applies trustpager, issues a key that check allows, and after revoke check denies it saying why",
    async () => {
      const applied = await runCli(["keyspaces", "apply", "-f", "examples/trustpager.yaml"], env);
      expect(applied.stderr).toBe("");
      expect(applied.code).toBe(0);
      expect(applied.stdout).toMatch(/^created\ttrustpager\tks_\w+\t\n$/);

      const ws = await runCli(
        ["workspaces", "create", "Plumbing Co", "--plan", "pro", "--api-access", "-o", "json"],
        env,
      );
      expect(ws.code).toBe(0);
      const workspaceId = json<{ id: string; apiAccess: boolean }>(ws).id;

      const created = await runCli(
        [
          "keys",
          "create",
          "--key-space",
          "trustpager",
          "--workspace",
          workspaceId,
          "--name",
          "ci",
          "--scope",
          "contacts:write",
        ],
        env,
      );
      expect(created.code).toBe(0);
      // The secret alone on stdout, so that it can be piped into a secret store; the details go to stderr.
      expect(created.stdout).toMatch(/^tp_live_[A-Za-z0-9]+\n$/);
      const secret = created.stdout.trim();
      const keyId = /created key (key_\w+)/.exec(created.stderr)?.[1];
      expect(keyId).toBeDefined();
      expect(created.stderr).not.toContain(secret);

      const check = [
        "check",
        "--key-space",
        "trustpager",
        "--method",
        "POST",
        "--path",
        "/api/contacts",
        "-o",
        "json",
      ];
      const allowed = await runCli([...check, secret], env);
      expect(allowed.code).toBe(0);
      expect(
        json<{ decision: string; status: number; headers: Record<string, string> }>(allowed),
      ).toMatchObject({
        decision: "allow",
        status: 200,
        headers: { "x-keymesh-key-id": keyId, "x-keymesh-workspace-id": workspaceId },
      });

      const revoked = await runCli(["keys", "revoke", keyId!], env);
      expect(revoked.code).toBe(0);
      expect(revoked.stdout).toContain("revoked");

      const denied = await runCli([...check, secret], env);
      expect(denied.code).toBe(2);
      expect(json(denied)).toMatchObject({
        decision: "deny",
        status: 401,
        reason: "revoked",
        message: "the API key has been revoked",
      });
      const plain = await runCli(check.slice(0, -2).concat(secret), env);
      expect(plain.code).toBe(2);
      expect(plain.stdout).toMatch(/^DECISION\tdeny$/m);
      expect(plain.stdout).toMatch(/^REASON\trevoked$/m);

      const verified = await runCli(
        ["verify", "--key-space", "trustpager", "--scope", "contacts:write", "-o", "json", "-"],
        env,
        {
          input: `${secret}\n`,
        },
      );
      expect(verified.code).toBe(2);
      expect(json(verified)).toMatchObject({ code: "VERIFY_CODE_REVOKED", valid: false });

      const activated = await runCli(["keys", "activate", keyId!], env);
      expect(activated.code).toBe(0);
      expect((await runCli([...check, secret], env)).code).toBe(0);
    },
    CLI_TIMEOUT_MS,
  );

  it(
    "reads the root key from a file, and refuses to start a call without one, saying where to put it",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "keymesh-cli-"));
      const file = join(dir, "root-key");
      await writeFile(file, `${t.rootKey}\n`, { mode: 0o600 });
      const { KEYMESH_ROOT_KEY: _, ...withoutKey } = env;
      const viaFile = await runCli(["--root-key-file", file, "workspaces", "list"], withoutKey);
      expect(viaFile.stderr).toBe("");
      expect(viaFile.code).toBe(0);

      const none = await runCli(["workspaces", "list"], withoutKey);
      expect(none.code).toBe(64);
      expect(none.stderr).toContain("set KEYMESH_ROOT_KEY, or pass --root-key-file");
      // There is no flag that takes the key itself, so it cannot land in shell history.
      const flag = await runCli(["--root-key", t.rootKey, "workspaces", "list"], withoutKey);
      expect(flag.code).toBe(64);
      expect(flag.stderr).toContain("unknown option");
    },
    CLI_TIMEOUT_MS,
  );

  it(
    "exits 3 for what does not exist, 2 for a refused root key, 4 when keymesh is unreachable, 64 for bad usage",
    async () => {
      const missing = await runCli(["keys", "get", "key_doesnotexist"], env);
      expect(missing.code).toBe(3);
      expect(missing.stderr).toContain("keymesh keys list");

      const badKey = await runCli(["workspaces", "list"], {
        ...env,
        KEYMESH_ROOT_KEY: "km_root_not_a_real_key",
      });
      expect(badKey.code).toBe(2);
      expect(badKey.stderr).toContain("refused the root key");
      expect(badKey.stderr).not.toContain(t.rootKey);

      const down = await runCli(["--timeout", "3000", "workspaces", "list"], {
        ...env,
        KEYMESH_ADDR: "http://127.0.0.1:9",
      });
      expect(down.code).toBe(4);
      expect(down.stderr).toContain("http://127.0.0.1:9 is unavailable");

      const usage = await runCli(["keys", "create", "--workspace", "ws_x"], env);
      expect(usage.code).toBe(64);
      expect(usage.stderr).toContain("--key-space");

      const remote = await runCli(["workspaces", "list"], {
        ...env,
        KEYMESH_ADDR: "http://keymesh.invalid:8080",
      });
      expect(remote.code).toBe(64);
      expect(remote.stderr).toContain("--insecure");
    },
    CLI_TIMEOUT_MS,
  );
});
