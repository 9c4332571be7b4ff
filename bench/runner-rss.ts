/**
 * `npx tsx bench/runner-rss.ts [rounds]`: keymesh's resident set compiled (`dist/`, as `npm start` runs it) against
 * the same tree through tsx. In `npm run bench` the two run different amounts of load in one process each, so their
 * RSS figures are not comparable; here every round starts a fresh process of each, reads VmRSS once it serves, then
 * again after the same Checks (valid key, no limit). Writes results/runner-rss.{json,md}.
 */
import { rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { installCleanupHandlers, REPO_ROOT } from "./child.js";
import { buildCheckRequest, grpcFrame } from "./fixtures.js";
import { runH2load } from "./h2load.js";
import { KEY_SPACE, type Runner, startBench } from "./keymesh.js";
import { readRss, round } from "./measure.js";

const rounds = Number(process.argv[2] ?? 3);
const CHECKS = 300_000;
const RUNNERS: Runner[] = ["dist", "tsx"];

installCleanupHandlers();
const samples: Record<Runner, { idleMiB: number[]; loadedMiB: number[]; hwmMiB: number[] }> = {
  dist: { idleMiB: [], loadedMiB: [], hwmMiB: [] },
  tsx: { idleMiB: [], loadedMiB: [], hwmMiB: [] },
};
for (let r = 0; r < rounds; r++) {
  for (const runner of RUNNERS) {
    const bench = await startBench([], REPO_ROOT, runner);
    const dataFile = join(os.tmpdir(), `keymesh-runner-rss-${process.pid}.bin`);
    try {
      // Settle start-up garbage before the idle reading.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const idle = readRss(bench.server.pid);
      writeFileSync(
        dataFile,
        grpcFrame(buildCheckRequest({ authorization: `Bearer ${bench.unlimited}`, keySpace: KEY_SPACE })),
      );
      await runH2load({ port: bench.server.grpcPort, dataFile, requests: CHECKS, clients: 4, streams: 32 });
      const loaded = readRss(bench.server.pid);
      samples[runner].idleMiB.push(round(idle.rssMiB, 1));
      samples[runner].loadedMiB.push(round(loaded.rssMiB, 1));
      samples[runner].hwmMiB.push(round(loaded.hwmMiB, 1));
      console.log(
        `round ${r + 1} ${runner}: idle ${idle.rssMiB.toFixed(1)} MiB, after ${CHECKS} Checks ${loaded.rssMiB.toFixed(1)} MiB (peak ${loaded.hwmMiB.toFixed(1)})`,
      );
    } finally {
      rmSync(dataFile, { force: true });
      await bench.stop();
    }
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const row = (runner: Runner) =>
  `| ${runner === "dist" ? "compiled (dist/)" : "tsx"} | ${median(samples[runner].idleMiB)} | ${median(samples[runner].loadedMiB)} | ${median(samples[runner].hwmMiB)} |`;
const md = [
  "# keymesh's resident set: compiled against tsx",
  "",
  `\`npx tsx bench/runner-rss.ts\`: Node ${process.version}; ${rounds} rounds, each a fresh process of each runner; ` +
    `medians in MiB. Idle: 2 s after it serves; loaded: after ${CHECKS.toLocaleString("en")} Checks ` +
    "(valid key, no limit, h2load -c 4 -m 32).",
  "",
  "| runner | idle RSS | RSS after load | peak RSS |",
  "| --- | ---: | ---: | ---: |",
  row("dist"),
  row("tsx"),
  "",
].join("\n");
writeFileSync(join(REPO_ROOT, "bench", "results", "runner-rss.md"), md);
writeFileSync(
  join(REPO_ROOT, "bench", "results", "runner-rss.json"),
  `${JSON.stringify({ node: process.version, rounds, checks: CHECKS, samples }, null, 2)}\n`,
);
console.log(md);
process.exit(0);
