import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { inject } from "vitest";
import { createTestDatabase } from "./database.js";
import { spawnTracked } from "./processes.js";
import { TEST_PEPPER } from "./server.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** A `keymesh serve` child process over a fresh test database: its memory can be measured apart from the test's. */
export interface ServerProcess {
  pid: number;
  httpPort: number;
  grpcPort: number;
  /** The root key the server created at its first start (scopes admin:root). */
  rootKey: string;
  /** Resident set now and its peak since the last `resetPeak()`, in bytes (Linux /proc). */
  memory(): { rss: number; peak: number };
  /** Starts a new peak measurement from the current resident set. */
  resetPeak(): void;
  hasExited(): boolean;
  /** The last 4,000 characters of the server's output, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts `keymesh serve` (Postgres from the global setup, in-memory rate limits) with `env` added. */
export async function startServerProcess(env: Record<string, string> = {}): Promise<ServerProcess> {
  const db = await createTestDatabase(inject("databaseUrl"));
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: db.url,
    KEYMESH_PEPPER: TEST_PEPPER,
    KEYMESH_HOST: "127.0.0.1",
    KEYMESH_HTTP_PORT: "0",
    KEYMESH_GRPC_PORT: "0",
    KEYMESH_LOG_LEVEL: "info",
    ...env,
  };
  delete childEnv.REDIS_URL;
  delete childEnv.REDIS_CLUSTER_NODES;
  const tracked = spawnTracked(process.execPath, ["--import", "tsx", "src/main.ts", "serve"], {
    env: childEnv,
    cwd: REPO_ROOT,
  });
  const { child } = tracked;
  const stop = async () => {
    if (!tracked.hasExited()) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await tracked.exited;
      clearTimeout(killer);
    }
    await db.drop();
  };
  try {
    const started = await new Promise<{ rootKey: string; httpPort: number; grpcPort: number }>(
      (resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`keymesh did not start:\n${tracked.output()}`)),
          60_000,
        );
        const check = () => {
          const text = tracked.output();
          const root = /^\s*(km_root_\S+)\s*$/m.exec(text);
          const ports = /"httpPort":(\d+),"grpcPort":(\d+)/.exec(text);
          if (!root || !ports) return;
          clearTimeout(timer);
          resolve({ rootKey: root[1]!, httpPort: Number(ports[1]), grpcPort: Number(ports[2]) });
        };
        child.stdout?.on("data", check);
        child.stderr?.on("data", check);
        void tracked.exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`keymesh exited during start-up:\n${tracked.output()}`));
        });
      },
    );
    const pid = child.pid!;
    return {
      pid,
      ...started,
      memory() {
        const status = readFileSync(`/proc/${pid}/status`, "utf8");
        const kib = (field: string) =>
          Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status)?.[1]) * 1024;
        return { rss: kib("VmRSS"), peak: kib("VmHWM") };
      },
      resetPeak() {
        // "5" resets VmHWM to the current resident set (proc(5), clear_refs).
        writeFileSync(`/proc/${pid}/clear_refs`, "5");
      },
      hasExited: tracked.hasExited,
      output: tracked.output,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
