import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { CLI_TIMEOUT_MS, runCli } from "../cli/support.js";
import { startTestServer, type TestServer } from "../support/server.js";

const run = promisify(execFile);
const ROOT = new URL("../..", import.meta.url).pathname;
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");

// The package as another service gets it: compiled by tsc (tsconfig.cli.json) with declarations, imported by name.
describe("the built keymesh package: keymesh/client and the compiled CLI (needs Postgres)", () => {
  let t: TestServer;
  let pkg: string;
  let consumer: string;
  let secret: string;

  beforeAll(async () => {
    t = await startTestServer();
    const dir = await mkdtemp(join(tmpdir(), "keymesh-pkg-"));
    pkg = join(dir, "keymesh");
    consumer = join(dir, "service");
    await run(process.execPath, [TSC, "-p", join(ROOT, "tsconfig.cli.json"), "--outDir", join(pkg, "dist")]);
    await mkdir(join(pkg, "bin"));
    await copyFile(join(ROOT, "bin/keymesh.mjs"), join(pkg, "bin/keymesh.mjs"));
    await copyFile(join(ROOT, "package.json"), join(pkg, "package.json"));
    await symlink(join(ROOT, "node_modules"), join(pkg, "node_modules"));
    await mkdir(join(consumer, "node_modules"), { recursive: true });
    await symlink(pkg, join(consumer, "node_modules/keymesh"));
    await writeFile(join(consumer, "package.json"), JSON.stringify({ type: "module" }));
    const compilerOptions = {
      module: "nodenext",
      target: "es2022",
      strict: true,
      skipLibCheck: false,
      types: ["node"],
      typeRoots: [join(ROOT, "node_modules/@types")],
    };
    await writeFile(
      join(consumer, "tsconfig.json"),
      JSON.stringify({ compilerOptions, files: ["service.mts"] }),
    );
    await writeFile(
      join(consumer, "tsconfig.bad.json"),
      JSON.stringify({ compilerOptions: { ...compilerOptions, noEmit: true }, files: ["bad.mts"] }),
    );
    // The README's three lines.
    await writeFile(
      join(consumer, "service.mts"),
      [
        'import { createKeyVerifyClient } from "keymesh/client";',
        "const keymesh = createKeyVerifyClient({ baseUrl: process.env.KEYMESH_URL! });",
        'const { valid, code } = await keymesh.verify({ key: process.argv[2]!, keySpaceId: "trumpet", scopes: ["CreatePod"] });',
        "console.log(JSON.stringify({ valid, code }));",
      ].join("\n"),
    );
    await writeFile(
      join(consumer, "bad.mts"),
      'import { createKeyVerifyClient } from "keymesh/client";\nawait createKeyVerifyClient({ baseUrl: "x" }).verify({ kee: "typo" });\n',
    );

    const space = await t.admin.createKeySpace({
      name: "trumpet",
      format: { prefix: "trpt_", style: KeyStyle.SINGLE },
      credentialSources: [{ kind: 1 }],
      scopeModel: { scopes: ["CreatePod"] },
    });
    const ws = await t.admin.createWorkspace({ name: "Acme", apiAccess: true });
    secret = (
      await t.admin.createKey({
        keySpaceId: space.keySpace!.id,
        workspaceId: ws.workspace!.id,
        ownerType: OwnerType.ORGANIZATION,
        name: "svc",
        scopes: ["CreatePod"],
      })
    ).secret;
  }, 180_000);
  afterAll(() => t?.stop());

  it(
    "type-checks a service against the built declarations and verifies a key in three lines",
    async () => {
      await run(process.execPath, [TSC, "-p", join(consumer, "tsconfig.json")], { cwd: consumer });
      const env = { PATH: process.env.PATH ?? "", KEYMESH_URL: t.httpUrl };
      const ok = await run(process.execPath, [join(consumer, "service.mjs"), secret], { cwd: consumer, env });
      expect(JSON.parse(ok.stdout)).toEqual({ valid: true, code: 1 });
      const bad = await run(process.execPath, [join(consumer, "service.mjs"), `${secret}x`], {
        cwd: consumer,
        env,
      });
      expect(JSON.parse(bad.stdout).valid).toBe(false);
    },
    CLI_TIMEOUT_MS,
  );

  it(
    "rejects a service that misuses the client at compile time, so the declarations are real",
    async () => {
      const compiled = run(process.execPath, [TSC, "-p", join(consumer, "tsconfig.bad.json")], {
        cwd: consumer,
      });
      await expect(compiled).rejects.toMatchObject({ stdout: expect.stringContaining("kee") });
    },
    CLI_TIMEOUT_MS,
  );

  it(
    "runs the compiled CLI from dist/ when there are no sources beside it",
    async () => {
      const listed = await runCli(
        ["keyspaces", "list", "-o", "json"],
        { KEYMESH_ADDR: t.httpUrl, KEYMESH_ROOT_KEY: t.rootKey },
        { bin: join(pkg, "bin/keymesh.mjs"), cwd: pkg },
      );
      expect(listed.stderr).toBe("");
      expect(listed.code).toBe(0);
      expect((JSON.parse(listed.stdout) as { name: string }[]).map((s) => s.name)).toContain("trumpet");
    },
    CLI_TIMEOUT_MS,
  );
});
