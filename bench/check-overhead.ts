/**
 * What observability costs the Check hot path, in process: `npx tsx bench/check-overhead.ts <reference checkout>`
 * (a checkout from before the change, with node_modules). For each scenario it runs, in alternating child processes,
 * the reference's Check handler as its app.ts built it (`before`), this checkout's with metrics on and tracing off
 * (`metrics`, the default) and with tracing on, sampling 1% (`tracing`), and reports the CPU time per Check: the
 * handler alone (decode, decide over in-memory backends, encode), without gRPC or HTTP/2, so the difference is the
 * observability's own cost rather than noise from the rest of the request. Writes results/check-overhead.{json,md}.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { REPO_ROOT } from "./child.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: "string", default: "5" },
    checks: { type: "string", default: "100000" },
    scenarios: { type: "string", default: "unlimited,unknown,limited" },
  },
});
const referenceArg = positionals[0] ?? process.env.BENCH_REFERENCE_DIR;
if (!referenceArg) {
  console.error(
    "usage: npx tsx bench/check-overhead.ts <checkout from before the change, with node_modules>",
  );
  process.exit(2);
}
const reference = resolve(referenceArg);
const VARIANTS = ["before", "metrics", "tracing"] as const;
type Variant = (typeof VARIANTS)[number];

interface Measurement {
  cpuNsPerCheck: number;
  minCpuNsPerCheck: number;
  wallNsPerCheck: number;
}

function measure(variant: Variant, scenario: string): Measurement {
  const root = variant === "before" ? reference : REPO_ROOT;
  const args = ["--import", "tsx", join(REPO_ROOT, "bench", "overhead-child.ts")];
  args.push(
    "--root",
    root,
    "--variant",
    variant,
    "--scenario",
    scenario,
    "--checks",
    values.checks ?? "100000",
  );
  const child = spawnSync(process.execPath, args, { cwd: REPO_ROOT, encoding: "utf8" });
  if (child.status !== 0) throw new Error(`${variant} ${scenario} failed:\n${child.stderr}`);
  return JSON.parse(child.stdout.trim().split("\n").at(-1)!) as Measurement;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const results: Record<string, Record<Variant, { cpuNs: number; ratio: number; rounds: number[] }>> = {};
for (const scenario of values.scenarios!.split(",")) {
  const rounds: Record<Variant, number[]> = { before: [], metrics: [], tracing: [] };
  for (let round = 0; round < Number(values.rounds); round++) {
    // Rotating the order spreads the machine's drift over every variant alike.
    const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!);
    for (const variant of order) rounds[variant].push(measure(variant, scenario).cpuNsPerCheck);
    console.error(
      `${scenario} round ${round + 1}: ${VARIANTS.map((v) => rounds[v].at(-1)!.toFixed(0)).join(" / ")} ns`,
    );
  }
  const row = {} as (typeof results)[string];
  for (const variant of VARIANTS) {
    // Each round's ratio to the `before` run beside it, then the median: drift between rounds cancels out.
    const ratios = rounds[variant].map((ns, i) => ns / rounds.before[i]!);
    row[variant] = { cpuNs: median(rounds[variant]), ratio: median(ratios), rounds: rounds[variant] };
  }
  results[scenario] = row;
}

const lines = [
  "# Check handler CPU per request: observability's cost",
  "",
  "`npx tsx bench/check-overhead.ts <reference>`: the Check handler in process (decode, decide over in-memory",
  "backends, encode; no gRPC or HTTP/2), CPU time per Check, median of rounds of alternating child processes.",
  "`before`: the reference checkout; `metrics`: this checkout, metrics on, tracing off (the default); `tracing`:",
  "tracing on, 1% of traces sampled by id (OTEL_TRACES_SAMPLER=traceidratio, ARG=0.01), batch OTLP exporter.",
  "",
  `Node ${process.version}; ${values.rounds} rounds of ${values.checks} Checks (after warm-up) per variant.`,
  "",
  "| scenario | before (ns) | metrics (ns) | metrics / before | tracing (ns) | tracing / before |",
  "|---|---:|---:|---:|---:|---:|",
  ...Object.entries(results).map(
    ([scenario, r]) =>
      `| ${scenario} | ${r.before.cpuNs.toFixed(0)} | ${r.metrics.cpuNs.toFixed(0)} | ${r.metrics.ratio.toFixed(3)} | ${r.tracing.cpuNs.toFixed(0)} | ${r.tracing.ratio.toFixed(3)} |`,
  ),
  "",
];
writeFileSync(join(REPO_ROOT, "bench", "results", "check-overhead.md"), lines.join("\n"));
writeFileSync(
  join(REPO_ROOT, "bench", "results", "check-overhead.json"),
  `${JSON.stringify({ node: process.version, rounds: Number(values.rounds), checks: Number(values.checks), results }, null, 2)}\n`,
);
console.log(lines.join("\n"));
