/**
 * V8's allocation-site pretenuring on and off, under Check load:
 * `npx tsx bench/pretenuring.ts [h2-noop|ceiling|baseline|grpc-noop|km-…|path/to/server.ts] [processes] [checks]
 * [node flags…]`.
 * Alternates fresh processes of the server with `--allocation-site-pretenuring` (V8's default, given explicitly so
 * that it overrides `npm start`'s flag) and `--no-allocation-site-pretenuring`, preloads `gc-sampler.mjs`, and over
 * one measured h2load run of `checks` (default 480,000) after warm-up records every collection, the server's CPU
 * time per Check and its RSS at the end. Further arguments are node flags given to both variants (other V8 settings
 * to try beside it). Writes `results/pretenuring-<name>[-<flags>].{json,md}`.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT, terminateAll } from "./child.js";
import { median, readRss, round, watchCpuPerCheck } from "./measure.js";
import { benchOptions } from "./options.js";
import { cliTarget, runUnderLoad, type Starter } from "./profile.js";
import { readSampled, signalSampler } from "./promoted.js";

/** One collection, as gc-sampler.mjs writes it. */
interface Collection {
  type: string;
  costUs: number;
  oldBefore: number;
  oldAfter: number;
}

/** What one process measured. */
export interface ProcessRun {
  variant: string;
  rps: number;
  cpuUsPerCheck: number;
  scavenges: number;
  scavengeMs: number;
  /** Bytes that entered the old generation (promoted by scavenges, or allocated there directly), per Check. */
  oldInflowBytesPerCheck: number;
  fullCollections: number;
  fullCollectionMs: number;
  longestFullCollectionMs: number;
  /** VmRSS at the end of the measured run, MiB. */
  rssMiB: number;
}

const VARIANTS: [string, string][] = [
  ["on (V8 default)", "--allocation-site-pretenuring"],
  ["off", "--no-allocation-site-pretenuring"],
];

/** Sums a run's collections; old-generation growth between and across collections is what entered it. */
export function summarizeCollections(
  collections: Collection[],
  checks: number,
): Omit<ProcessRun, "variant" | "rps" | "cpuUsPerCheck" | "rssMiB"> {
  let inflow = 0;
  let previousAfter = collections[0]?.oldBefore ?? 0;
  const scavenges = collections.filter((c) => c.type === "Scavenge");
  const full = collections.filter((c) => c.type === "MarkSweepCompact");
  for (const c of collections) {
    inflow += Math.max(0, c.oldBefore - previousAfter);
    if (c.type === "Scavenge") inflow += Math.max(0, c.oldAfter - c.oldBefore);
    previousAfter = c.oldAfter;
  }
  const ms = (list: Collection[]) => list.reduce((sum, c) => sum + c.costUs, 0) / 1000;
  return {
    scavenges: scavenges.length,
    scavengeMs: round(ms(scavenges), 1),
    oldInflowBytesPerCheck: Math.round(inflow / Math.max(1, checks)),
    fullCollections: full.length,
    fullCollectionMs: round(ms(full), 1),
    longestFullCollectionMs: round(Math.max(0, ...full.map((c) => c.costUs)) / 1000, 1),
  };
}

async function measureOnce(
  which: string,
  target: { start: Starter; code: number },
  variant: [string, string],
  checks: number,
  flags: string[],
): Promise<ProcessRun> {
  const sampler = pathToFileURL(join(REPO_ROOT, "bench", "gc-sampler.mjs")).href;
  let cpu: ((checks: number) => number) | undefined;
  let cpuUsPerCheck = 0;
  let rssMiB = 0;
  let collections: Collection[] = [];
  const signal = (pid: number | undefined) => signalSampler(which, pid);
  const run = await runUnderLoad(
    target.start,
    [...flags, variant[1], "--import", sampler],
    target.code,
    {
      begin: (pid) => {
        signal(pid);
        cpu = watchCpuPerCheck([pid!]);
      },
      end: async (pid) => {
        cpuUsPerCheck = cpu?.(checks) ?? 0;
        rssMiB = readRss(pid!).rssMiB;
        collections = await readSampled<Collection[]>("gc", signal(pid));
      },
    },
    checks,
  );
  return {
    variant: variant[0],
    rps: Math.round(run.rps),
    cpuUsPerCheck: round(cpuUsPerCheck, 1),
    ...summarizeCollections(collections, checks),
    rssMiB: round(rssMiB, 1),
  };
}

function table(runs: ProcessRun[]): string {
  const head =
    "| pretenuring | req/s | CPU µs/check | scavenges | scavenge ms | old-generation inflow B/check | full GCs | full GC ms | longest full GC ms | RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|";
  const row = (r: ProcessRun) =>
    `| ${r.variant} | ${r.rps.toLocaleString("en-US")} | ${r.cpuUsPerCheck} | ${r.scavenges} | ${r.scavengeMs} | ${r.oldInflowBytesPerCheck.toLocaleString("en-US")} | ${r.fullCollections} | ${r.fullCollectionMs} | ${r.longestFullCollectionMs} | ${r.rssMiB} |`;
  const medians = VARIANTS.map(([name]) => {
    const of = runs.filter((r) => r.variant === name);
    const m = (pick: (r: ProcessRun) => number) => round(median(of.map(pick)), 1);
    return `| **median, ${name}** | ${Math.round(m((r) => r.rps)).toLocaleString("en-US")} | ${m((r) => r.cpuUsPerCheck)} | ${m((r) => r.scavenges)} | ${m((r) => r.scavengeMs)} | ${Math.round(m((r) => r.oldInflowBytesPerCheck)).toLocaleString("en-US")} | ${m((r) => r.fullCollections)} | ${m((r) => r.fullCollectionMs)} | ${m((r) => r.longestFullCollectionMs)} | ${m((r) => r.rssMiB)} |`;
  });
  return [head, ...runs.map(row), ...medians].join("\n");
}

async function main(): Promise<void> {
  const which = process.argv[2] ?? "h2-noop";
  const processes = Number(process.argv[3] ?? 3);
  // Long enough for the old generation to grow through several full collections.
  const checks = Number(process.argv[4] ?? 480_000);
  const flags = process.argv.slice(5);
  const target = cliTarget(which);
  const runs: ProcessRun[] = [];
  for (let i = 0; i < processes; i++) {
    for (const variant of VARIANTS) {
      const run = await measureOnce(which, target, variant, checks, flags);
      console.log(JSON.stringify(run));
      runs.push(run);
    }
  }
  const name = [
    which.replace(/^.*\//, "").replace(/\.ts$/, ""),
    ...flags.map((f) => f.replace(/^--/, "")),
  ].join("-");
  const options = benchOptions();
  const md = `# Allocation-site pretenuring: ${name}

\`npx tsx bench/pretenuring.ts ${[which, processes, checks, ...flags].join(" ")}\`: fresh processes, alternating; each warmed up with ${options.warmupRequests.toLocaleString("en-US")} Checks, then measured over ${checks.toLocaleString("en-US")} (h2load -c ${options.clients} -m ${options.streams}). Node ${process.version}.

${table(runs)}
`;
  const out = join(REPO_ROOT, "bench", "results", `pretenuring-${name}`);
  writeFileSync(`${out}.json`, `${JSON.stringify({ which, node: process.version, runs }, null, 2)}\n`);
  writeFileSync(`${out}.md`, md);
  console.log(`\n${md}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main()
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    })
    .finally(terminateAll);
}
