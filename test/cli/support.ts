import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TestServer } from "../support/server.js";

/** The package's `keymesh` bin, as `npx keymesh` runs it in a checkout. */
export const BIN = fileURLToPath(new URL("../../bin/keymesh.mjs", import.meta.url));
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** What a CLI run left behind. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment a person would have set up to talk to `t`: its addresses and its root key. */
export function cliEnv(t: TestServer, extra: Record<string, string> = {}): Record<string, string> {
  return {
    KEYMESH_ADDR: t.httpUrl,
    KEYMESH_GRPC_ADDR: t.grpcAddress,
    KEYMESH_ROOT_KEY: t.rootKey,
    ...extra,
  };
}

/**
 * Runs the CLI as a child process, never synchronously: the server under test runs in this process and must keep
 * answering while the child waits on it. Only PATH and HOME are inherited, so no KEYMESH_* leaks in.
 */
export function runCli(
  args: readonly string[],
  env: Record<string, string>,
  options: { input?: string; bin?: string; cwd?: string } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [options.bin ?? BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

/** Parses a run's stdout as JSON, with the run in the message when it is not. */
export function json<T>(run: CliRun): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${run.code}):\n${run.stdout}\n--- stderr ---\n${run.stderr}`);
  }
}

/** Tests that run the CLI several times: each run starts a Node process, which takes seconds on a busy machine. */
export const CLI_TIMEOUT_MS = 240_000;
