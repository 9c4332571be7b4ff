/**
 * Child-process lifecycle for bench servers and load generators: every child is tracked and killed
 * (SIGTERM, then SIGKILL) on stop, on Ctrl-C and on exit, so a failed run never leaves a server behind.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The repository root, so children resolve `tsx` and relative paths the same from any cwd. */
export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A server started for a scenario: where to send load and how to stop it. */
export interface StartedServer {
  port: number;
  /** The process whose /proc/<pid>/status holds the server's RSS; omit for in-process servers (RSS skipped). */
  pid?: number;
  /** Processes doing part of each check for this server (its redis-server), whose CPU time is reported apart. */
  helperPids?: number[];
  /** A request minted after start (e.g. with a key issued by this server); overrides Scenario.request. */
  request?: Uint8Array;
  /**
   * Checks answered so far without a decision (deadline passed, backend failed), which h2load counts as successes;
   * absent for servers that always decide.
   */
  errorVerdicts?(): Promise<number>;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();

/** Registers a child so it is killed on Ctrl-C, SIGTERM or process exit. */
export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

/** Sends SIGTERM, waits up to `graceMs`, then SIGKILL; resolves once the child has exited. */
export function terminate(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** Terminates every tracked child; used by signal handlers and `finally` blocks. */
export async function terminateAll(): Promise<void> {
  await Promise.all([...live].map((c) => terminate(c)));
}

let handlersInstalled = false;

/** Installs Ctrl-C/SIGTERM/exit handlers once: children are stopped before this process goes away. */
export function installCleanupHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping ${live.size} child process(es)`);
      void terminateAll().finally(() => process.exit(130));
    });
  }
  // Last resort when something calls process.exit while children still run: no time for a grace period.
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

/** How to launch a bench server child. */
export interface SpawnOptions {
  /** Arguments after the script; default `["0"]` (the bench servers' "any free port"). */
  args?: string[];
  /** Extra node flags, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  /** Child environment; default this process's. */
  env?: NodeJS.ProcessEnv;
  /** Where the ready line appears and how to read the port from it (first capture group). */
  ready?: { stream: "stdout" | "stderr"; pattern: RegExp };
  /** How long to wait for the ready line. */
  timeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL (a CPU profile needs time to be written). */
  graceMs?: number;
}

const LISTENING = { stream: "stdout", pattern: /^LISTENING (\d+)$/m } as const;

/**
 * Spawns `node [nodeArgs] --import tsx <script> [args]` directly (not via the tsx CLI, which would add a
 * wrapper process and hide the server's pid) and resolves once the ready line (default `LISTENING <port>` on
 * stdout) appears. After that, stderr is forwarded and stdout discarded.
 */
export function spawnServer(script: string, options: SpawnOptions = {}): Promise<StartedServer> {
  const { args = ["0"], nodeArgs = [], env, ready = LISTENING, timeoutMs = 20_000, graceMs = 3000 } = options;
  installCleanupHandlers();
  const child = track(
    spawn(process.execPath, [...nodeArgs, "--import", "tsx", script, ...args], {
      cwd: REPO_ROOT,
      env: env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  const watched = child[ready.stream]!.setEncoding("utf8");
  const other = ready.stream === "stdout" ? child.stderr! : child.stdout!;
  if (other === child.stderr) other.pipe(process.stderr);
  else other.resume();
  return new Promise((resolve, reject) => {
    let out = "";
    const fail = (why: string): void => {
      clearTimeout(timer);
      // Report the first cause only: stopping the child below would otherwise surface as "exited early".
      child.off("exit", onExit);
      const tail = out.slice(-2000);
      void terminate(child).then(() =>
        reject(new Error(`${script}: ${why}${tail ? `; its ${ready.stream}:\n${tail}` : ""}`)),
      );
    };
    const onExit = (code: number | null, signal: string | null): void =>
      fail(`exited early (code ${code}, signal ${signal})`);
    const onData = (chunk: string): void => {
      out += chunk;
      const match = ready.pattern.exec(out);
      if (!match) return;
      clearTimeout(timer);
      child.off("exit", onExit);
      watched.off("data", onData);
      if (ready.stream === "stderr") watched.pipe(process.stderr);
      // Keep draining stdout so a chatty server never blocks on a full pipe.
      else watched.resume();
      resolve({ port: Number(match[1]), pid: child.pid!, stop: () => terminate(child, graceMs) });
    };
    const timer = setTimeout(() => fail(`no ready line within ${timeoutMs} ms`), timeoutMs);
    child.once("exit", onExit);
    child.once("error", (error) => fail(error.message));
    watched.on("data", onData);
  });
}
