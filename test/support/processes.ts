import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";

/** A free TCP port on 127.0.0.1, found by binding port 0 and releasing it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject()));
    });
  });
}

// Servers left running by a crashed test would outlive the worker and hold their ports.
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) {
    child.kill("SIGCONT");
    child.kill("SIGKILL");
  }
});

/** A spawned server process whose output tail is kept for error messages and which dies with the worker. */
export interface TrackedChild {
  child: ChildProcess;
  /** The last 4,000 characters of stdout and stderr. */
  output(): string;
  exited: Promise<void>;
  hasExited(): boolean;
}

/** Spawns `command` with piped output, killed with the test worker if the test forgets it. */
export function spawnTracked(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): TrackedChild {
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void exited.then(() => running.delete(child));
  return {
    child,
    output: () => output,
    exited,
    hasExited: () => child.exitCode !== null || child.signalCode !== null,
  };
}
