/**
 * What reaches the old generation under load:
 * `npx tsx bench/promoted.ts [baseline|grpc-noop|km-…|path/to/server.ts] [node flags for the server…]`.
 * Full garbage collections (the long pauses of the fixed-load runs) only exist because objects outlive a young
 * collection, so this names the allocation sites of those objects: it preloads `promoted-sampler.mjs`, samples
 * allocations during one measured h2load run (after warm-up), keeping those that survived a young collection,
 * and prints the top sites, with their caller, and the share per package.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT, terminateAll } from "./child.js";
import { benchOptions } from "./options.js";
import { type CallFrame, cliTarget, frameLabel, packageOf, runUnderLoad } from "./profile.js";

interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

/** One allocation site (merged over its call paths), with the caller that allocated most there. */
export interface Site {
  label: string;
  caller: string;
  bytes: number;
  pct: number;
}

/** Top allocation sites and bytes per package of a sampling heap profile's tree. */
export function summarize(
  head: HeapNode,
  n = 15,
): { sites: Site[]; packages: [string, number][]; total: number } {
  const sites = new Map<string, { bytes: number; callers: Map<string, number> }>();
  const packages = new Map<string, number>();
  let total = 0;
  const walk = (node: HeapNode, caller: string): void => {
    const label = frameLabel(node.callFrame);
    if (node.selfSize > 0) {
      total += node.selfSize;
      const site = sites.get(label) ?? { bytes: 0, callers: new Map<string, number>() };
      site.bytes += node.selfSize;
      site.callers.set(caller, (site.callers.get(caller) ?? 0) + node.selfSize);
      sites.set(label, site);
      const pkg = packageOf(node.callFrame);
      packages.set(pkg, (packages.get(pkg) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, label);
  };
  walk(head, "");
  const top = [...sites]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, n)
    .map(([label, { bytes, callers }]) => ({
      label,
      caller: [...callers].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "",
      bytes,
      pct: (bytes / total) * 100,
    }));
  return { sites: top, packages: [...packages].sort((a, b) => b[1] - a[1]), total };
}

/**
 * Waits for what a preloaded sampler of process `pid` wrote to `<tmpdir>/keymesh-<name>-<pid>.json`, then reads and
 * removes it. A body with an `error` field is the sampler reporting its own failure.
 */
export async function readSampled<T>(name: string, pid: number, timeoutMs = 20_000): Promise<T> {
  const path = join(os.tmpdir(), `keymesh-${name}-${pid}.json`);
  const until = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > until) throw new Error(`no ${name} sample from pid ${pid} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const body = JSON.parse(readFileSync(path, "utf8")) as T & { error?: string };
  rmSync(path, { force: true });
  if (body.error) throw new Error(`${name} sampling failed in the server: ${body.error}`);
  return body;
}

/**
 * Sends SIGUSR2 to the server process `pid` (of target `which`), which a preloaded sampler takes as its start or stop
 * signal; returns the pid. Throws when the target runs in no process of its own.
 */
export function signalSampler(which: string, pid: number | undefined): number {
  if (pid === undefined) throw new Error(`${which} runs in no process of its own to sample`);
  process.kill(pid, "SIGUSR2");
  return pid;
}

/** Waits for the sampler's profile of process `pid`. */
async function readProfile(pid: number): Promise<{ head: HeapNode }> {
  const body = await readSampled<{ head?: HeapNode }>("promoted", pid);
  if (!body.head) throw new Error("heap sampling failed in the server: no profile");
  return { head: body.head };
}

async function main(): Promise<void> {
  const which = process.argv[2] ?? "baseline";
  const { start, code } = cliTarget(which);
  const sampler = join(REPO_ROOT, "bench", "promoted-sampler.mjs");
  let profile: { head: HeapNode } | undefined;
  // Further arguments are node flags for the server, to try V8 settings (e.g. --max-semi-space-size=32).
  const nodeArgs = [...process.argv.slice(3), "--import", pathToFileURL(sampler).href];
  const signal = (pid: number | undefined) => signalSampler(which, pid);
  const run = await runUnderLoad(start, nodeArgs, code, {
    begin: signal,
    end: async (pid) => {
      profile = await readProfile(signal(pid));
    },
  }).finally(terminateAll);
  if (!profile) throw new Error("no heap profile");
  const { sites, packages, total } = summarize(profile.head);
  const checks = benchOptions().measuredRequests;
  console.log(`${which}: ${Math.round(run.rps)} req/s while sampling`);
  console.log(
    `sampled allocations that outlived a young collection: ${(total / checks / 1024).toFixed(1)} KiB per check ` +
      "(V8's estimate from samples)\n",
  );
  console.log("top allocation sites (self), with the caller that allocated most there:");
  for (const s of sites) console.log(`${s.pct.toFixed(1).padStart(5)}%  ${s.label}  <  ${s.caller}`);
  const own = packages.filter(([pkg]) => /^(src|gen)\//.test(pkg)).reduce((sum, [, bytes]) => sum + bytes, 0);
  console.log(`\nkeymesh's own files (src/, gen/): ${((own / total) * 100).toFixed(1)}%`);
  console.log("\nby package:");
  for (const [pkg, bytes] of packages.slice(0, 12))
    console.log(`${((bytes / total) * 100).toFixed(1).padStart(5)}%  ${pkg}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
