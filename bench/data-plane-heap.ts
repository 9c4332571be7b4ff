/**
 * What the admin side adds to the heap of the process that serves Checks: the compiled service's modules imported
 * whole (`dist/src/server.js`, as `npm start` runs them) against only the modules a Check, KeyVerify and /authz
 * need, each in fresh processes, after two full collections. Nothing listens and no request is sent: the figure is
 * the code and data that loading costs, which every full collection under load must mark (and partly evacuate).
 * Usage: `npx tsx bench/data-plane-heap.ts [rounds]` after `npm run build`; writes `results/data-plane-heap.{json,md}`.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT } from "./child.js";
import { median } from "./measure.js";

const dist = join(REPO_ROOT, "dist", "src");
if (!existsSync(join(dist, "server.js"))) throw new Error("dist/ is missing: run `npm run build` first");

const DATA_PLANE = [
  "transport/envoy/hot-path-h2.js",
  "transport/grpc-h2/listen.js",
  "transport/grpc-h2/server.js",
  "transport/http/authz-handler.js",
  "domain/authorizer.js",
  "cache/key-cache.js",
  "cache/cached-key-spaces.js",
  "cache/invalidation.js",
  "store/key-lookup.js",
  "store/db.js",
  "ratelimit/redis-limiter.js",
  "ratelimit/lease-limiter.js",
  "observability/observability.js",
  "log.js",
  "config.js",
];
const WHOLE = ["server.js"];

interface Sample {
  usedMiB: number;
  codeMiB: number;
  oldMiB: number;
}

/** Imports `modules` in a fresh node, collects twice, and reports the heap in use. */
function measure(modules: string[]): Sample {
  const urls = modules.map((m) => pathToFileURL(join(dist, m)).href);
  const script = `
    const v8 = await import("node:v8");
    for (const url of ${JSON.stringify(urls)}) await import(url);
    globalThis.gc(); globalThis.gc();
    const space = (name) => v8.getHeapSpaceStatistics().find((s) => s.space_name === name)?.space_used_size ?? 0;
    const mib = (n) => n / 1024 / 1024;
    process.stdout.write(JSON.stringify({
      usedMiB: mib(v8.getHeapStatistics().used_heap_size),
      codeMiB: mib(space("code_space")),
      oldMiB: mib(space("old_space")),
    }));`;
  const out = execFileSync(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], {
    cwd: REPO_ROOT,
    encoding: "utf8",
  });
  return JSON.parse(out) as Sample;
}

const rounds = Number(process.argv[2] ?? 3);
const samples = { dataPlane: [] as Sample[], whole: [] as Sample[] };
for (let i = 0; i < rounds; i++) {
  samples.dataPlane.push(measure(DATA_PLANE));
  samples.whole.push(measure(WHOLE));
}
const summary = (list: Sample[]) => ({
  usedMiB: median(list.map((s) => s.usedMiB)),
  codeMiB: median(list.map((s) => s.codeMiB)),
  oldMiB: median(list.map((s) => s.oldMiB)),
});
const result = {
  node: process.version,
  rounds,
  dataPlane: summary(samples.dataPlane),
  whole: summary(samples.whole),
  samples,
};
const f = (n: number) => n.toFixed(1);
const md = [
  "# Data-plane heap",
  "",
  `Node ${process.version}, median of ${rounds} fresh processes each, after two full collections, nothing served.`,
  "",
  "| modules | heap used MiB | old space MiB | code space MiB |",
  "| --- | ---: | ---: | ---: |",
  `| Check, KeyVerify and /authz only | ${f(result.dataPlane.usedMiB)} | ${f(result.dataPlane.oldMiB)} | ${f(result.dataPlane.codeMiB)} |`,
  `| the whole service (\`server.js\`) | ${f(result.whole.usedMiB)} | ${f(result.whole.oldMiB)} | ${f(result.whole.codeMiB)} |`,
  "",
].join("\n");
const out = join(REPO_ROOT, "bench", "results");
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "data-plane-heap.json"), `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(join(out, "data-plane-heap.md"), md);
process.stdout.write(md);
