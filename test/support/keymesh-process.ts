import { type ChildProcess, spawn } from "node:child_process";
import { chownSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./processes.js";
import { TEST_PEPPER } from "./server.js";

/** A keymesh started as its own process, as an operator or an image runs it. */
export interface KeymeshProcess {
  child: ChildProcess;
  httpPort: number;
  grpcPort: number;
  /** The first root key, printed on stdout at the first start over an empty database. */
  rootKey: string;
  /** Structured log lines from stderr so far. */
  logs(): { message: string; time: string; [field: string]: unknown }[];
  /** Resolves with the first log line whose message matches. */
  waitForLog(message: RegExp, timeoutMs?: number): Promise<{ message: string; time: string }>;
  /** Everything printed, for failure messages. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL if still running. */
  kill(): void;
}

/**
 * Spawns `command` (for instance `node --import tsx src/main.ts serve`) on free ports over `databaseUrl`, with only
 * PATH and HOME from this environment, and waits for "keymesh serving". With `secretsDir`, the database URL and the
 * pepper are written there as files (readable by `uid` alone) and passed as DATABASE_URL_FILE and KEYMESH_PEPPER_FILE,
 * as a mounted secret is.
 */
export async function startKeymeshProcess(options: {
  command: string;
  args: string[];
  cwd?: string;
  databaseUrl: string;
  env?: Record<string, string>;
  secretsDir?: string;
  uid?: number;
  gid?: number;
}): Promise<KeymeshProcess> {
  const httpPort = await freePort();
  const grpcPort = await freePort();
  const secrets: Record<string, string> = {};
  for (const [setting, value] of [
    ["DATABASE_URL", options.databaseUrl],
    ["KEYMESH_PEPPER", TEST_PEPPER],
  ] as const) {
    if (!options.secretsDir) {
      secrets[setting] = value;
      continue;
    }
    const path = join(options.secretsDir, setting.toLowerCase());
    writeFileSync(path, `${value}\n`, { mode: 0o400 });
    if (options.uid !== undefined) chownSync(path, options.uid, options.gid ?? options.uid);
    secrets[`${setting}_FILE`] = path;
  }
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
    uid: options.uid,
    gid: options.gid,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...secrets,
      KEYMESH_HTTP_PORT: String(httpPort),
      KEYMESH_GRPC_PORT: String(grpcPort),
      ...options.env,
    },
  });
  let stdout = "";
  let stderr = "";
  const lines: { message: string; time: string }[] = [];
  const waiters = new Set<() => void>();
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  let partial = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
    partial += chunk.toString();
    const complete = partial.split("\n");
    partial = complete.pop() ?? "";
    for (const line of complete) {
      try {
        lines.push(JSON.parse(line));
      } catch {
        // Not a log line (a build notice, a stack trace): kept in output() only.
      }
    }
    for (const wake of waiters) wake();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal })),
  );
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.once("exit", kill);
  const output = () => `stdout:\n${stdout}\nstderr:\n${stderr}`;
  const waitForLog = (message: RegExp, timeoutMs = 60_000) =>
    new Promise<{ message: string; time: string }>((resolve, reject) => {
      const look = () => {
        const found = lines.find((line) => message.test(line.message));
        if (!found) return false;
        cleanup();
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no log line matching ${message} within ${timeoutMs} ms\n${output()}`));
      }, timeoutMs);
      const gone = () => {
        if (look()) return;
        cleanup();
        reject(new Error(`keymesh exited before logging ${message}\n${output()}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(wake);
        child.off("close", gone);
      };
      const wake = () => void look();
      waiters.add(wake);
      child.once("close", gone);
      look();
    });
  try {
    await waitForLog(/^keymesh serving$/);
  } catch (error) {
    kill();
    throw error;
  }
  return {
    child,
    httpPort,
    grpcPort,
    rootKey: /km_root_\S+/.exec(stdout)?.[0] ?? "",
    logs: () => [...lines],
    waitForLog,
    output,
    exited,
    kill,
  };
}
