/**
 * deploy/observability: the Prometheus rules pass `promtool check rules` and their unit tests (`promtool test
 * rules`), the dashboard's queries parse, and every metric either names exists on a running keymesh (needs
 * Postgres). promtool comes from Debian's `prometheus` package, which .ci/run installs.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePrometheus } from "../support/prometheus.js";
import { startTestServer, type TestServer } from "../support/server.js";

const dir = fileURLToPath(new URL("../../deploy/observability/", import.meta.url));
const rules = readFileSync(join(dir, "alerts.yml"), "utf8");
const dashboard = JSON.parse(readFileSync(join(dir, "grafana-dashboard.json"), "utf8")) as {
  panels: { title: string; targets?: { expr: string }[] }[];
};
const dashboardQueries = dashboard.panels.flatMap((p) =>
  (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
);

function promtool(...args: string[]): { status: number | null; output: string } {
  const run = spawnSync("promtool", args, { cwd: dir, encoding: "utf8" });
  if (run.error)
    throw new Error(`promtool is not installed (Debian: apt-get install prometheus): ${run.error.message}`);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** The metric families an expression reads: names of keymesh's and the Node process's, without histogram suffixes. */
function familiesIn(expr: string): string[] {
  const names = expr.match(/\b(?:keymesh|nodejs|process)_[a-z0-9_]+/g) ?? [];
  return names.map((n) => n.replace(/_(bucket|count|sum)$/, ""));
}

describe("deploy/observability", () => {
  it("the alerting rules pass promtool check rules", () => {
    const { status, output } = promtool("check", "rules", "alerts.yml");
    expect(output).toContain("SUCCESS");
    expect(status).toBe(0);
  });

  it("the alerts fire on the test series and stay quiet otherwise (promtool test rules)", () => {
    const { status, output } = promtool("test", "rules", "alerts.test.yml");
    expect(output).toContain("SUCCESS");
    expect(status).toBe(0);
  });

  it("every dashboard query is valid PromQL", () => {
    expect(dashboardQueries.length).toBeGreaterThan(20);
    // promtool parses rule expressions; each query becomes a recording rule, Grafana's variables filled in.
    const file = [
      "groups:",
      "  - name: dashboard",
      "    rules:",
      ...dashboardQueries.flatMap((q, i) => [
        `      - record: dashboard:query_${i}`,
        `        expr: ${JSON.stringify(q.expr.replaceAll("$__rate_interval", "5m").replaceAll("$instance", ".*"))}`,
      ]),
    ].join("\n");
    const tmp = mkdtempSync(join(os.tmpdir(), "keymesh-dashboard-"));
    try {
      writeFileSync(join(tmp, "dashboard-rules.yml"), file);
      const { status, output } = promtool("check", "rules", join(tmp, "dashboard-rules.yml"));
      expect(output).toContain("SUCCESS");
      expect(status).toBe(0);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe("deploy/observability against a running keymesh (needs Postgres)", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.stop();
  });

  it("names only metric families that keymesh's /metrics declares", async () => {
    const scrape = parsePrometheus(await (await fetch(`${t.httpUrl}/metrics`)).text());
    const declared = new Set(scrape.types.keys());
    const used = new Set([...familiesIn(rules), ...dashboardQueries.flatMap((q) => familiesIn(q.expr))]);
    expect(used.size).toBeGreaterThan(15);
    const missing = [...used].filter((name) => !declared.has(name));
    expect(missing).toEqual([]);
  });
});
