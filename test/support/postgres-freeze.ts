import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

function parentOf(pid: string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name is in parentheses and may contain spaces; the parent's pid is the second field after it.
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

// Processes frozen by a test that crashed must not outlive it stopped: nothing could then stop them.
const frozen = new Set<number>();
process.once("exit", () => {
  for (const pid of frozen) {
    try {
      process.kill(pid, "SIGCONT");
    } catch {}
  }
});

/**
 * Freezes a whole Postgres cluster (the postmaster and every backend and helper) with SIGSTOP, like a server that
 * hangs: its sockets stay open and the kernel still accepts connections, but nothing answers. Returns the resume
 * function. Only for a cluster the test started itself, never the suite's shared one.
 */
export function freezePostgres(databaseDir: string): () => void {
  const postmaster = Number(readFileSync(join(databaseDir, "postmaster.pid"), "utf8").split("\n")[0]);
  if (!Number.isInteger(postmaster) || postmaster <= 0) throw new Error("no postmaster.pid");
  // The postmaster first, so that it forks nothing while its children are listed.
  process.kill(postmaster, "SIGSTOP");
  const pids = [postmaster];
  frozen.add(postmaster);
  for (const entry of readdirSync("/proc")) {
    if (/^\d+$/.test(entry) && parentOf(entry) === postmaster) {
      const pid = Number(entry);
      try {
        process.kill(pid, "SIGSTOP");
        pids.push(pid);
        frozen.add(pid);
      } catch {
        // It exited meanwhile.
      }
    }
  }
  let resumed = false;
  return () => {
    if (resumed) return;
    resumed = true;
    for (const pid of pids.reverse()) {
      frozen.delete(pid);
      try {
        process.kill(pid, "SIGCONT");
      } catch {}
    }
  };
}
