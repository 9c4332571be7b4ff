/**
 * Unit test (no Postgres, no Redis): reads every import in src/ and holds the layering of docs/architecture.md.
 * Keep LAYERS in step with the table there.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = normalize(join(import.meta.dirname, "..", ".."));

/** Higher rank sits above; an import may point to the same rank or lower. Most specific prefix wins. */
const LAYERS: ReadonlyArray<readonly [prefix: string, rank: number, name: string]> = [
  ["src/main.ts", 5, "composition root"],
  ["src/server.ts", 5, "composition root"],
  ["src/app.ts", 5, "composition root"],
  ["src/core.ts", 5, "composition root"],
  ["src/health.ts", 5, "composition root"],
  ["src/teardown.ts", 5, "composition root"],
  ["src/workers/", 5, "composition root"],
  ["src/embedded-postgres.ts", 5, "composition root"],
  ["src/embedded-postgres-root.ts", 5, "composition root"],
  ["src/cli/", 5, "composition root"],
  ["src/client/", 5, "composition root"],
  ["src/transport/", 4, "transport"],
  ["gen/", 4, "generated protobuf"],
  ["src/admin/", 3, "admin"],
  ["src/webhooks/", 3, "admin"],
  ["src/store/", 2, "adapters"],
  ["src/cache/", 2, "adapters"],
  ["src/ratelimit/", 2, "adapters"],
  ["src/domain/", 1, "domain"],
  ["src/runtime/", 0, "foundation"],
  ["src/observability/", 2, "adapters"],
  ["src/config.ts", 0, "foundation"],
  ["src/config-tracing.ts", 0, "foundation"],
  ["src/config-values.ts", 0, "foundation"],
  ["src/log.ts", 0, "foundation"],
];

function layerOf(file: string): { rank: number; name: string } | undefined {
  let best: (typeof LAYERS)[number] | undefined;
  for (const layer of LAYERS) {
    if (file.startsWith(layer[0]) && (best === undefined || layer[0].length > best[0].length)) best = layer;
  }
  return best && { rank: best[1], name: best[2] };
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm;

/** Relative imports of a file, resolved to repository paths (".js" specifiers name ".ts" sources). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const found: string[] = [];
  for (const match of text.matchAll(SPECIFIER)) {
    const specifier = match[1] as string;
    if (!specifier.startsWith(".")) continue;
    found.push(relative(ROOT, join(ROOT, dirname(file), specifier)).replace(/\.js$/, ".ts"));
  }
  return found;
}

const files = sourceFiles("src");
const graph = new Map(files.map((file) => [file, importsOf(file)]));

function cycles(): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, "open");
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === "open") found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (state.get(next) === undefined) visit(next);
    }
    stack.pop();
    state.set(file, "done");
  };
  for (const file of files) if (state.get(file) === undefined) visit(file);
  return found;
}

describe("the source layering (unit: reads files only)", () => {
  it("finds the source files and their imports", () => {
    expect(files).toContain("src/domain/authorizer.ts");
    expect(graph.get("src/core.ts")).toContain("src/domain/authorizer.ts");
  });

  it("places every source file in a layer of docs/architecture.md", () => {
    expect(files.filter((file) => layerOf(file) === undefined)).toEqual([]);
  });

  it("has no import cycle", () => {
    expect(cycles().map((cycle) => cycle.join(" -> "))).toEqual([]);
  });

  it("keeps the domain free of gen/ and of every layer above it", () => {
    const bad = files
      .filter((file) => file.startsWith("src/domain/"))
      .flatMap((file) => (graph.get(file) ?? []).map((to) => ({ file, to })))
      .filter(({ to }) => !to.startsWith("src/domain/") && (layerOf(to)?.rank ?? 99) > 0);
    expect(bad.map(({ file, to }) => `${file} -> ${to}`)).toEqual([]);
  });

  it("points every import down or within its layer", () => {
    const bad: string[] = [];
    for (const [file, targets] of graph) {
      const from = layerOf(file);
      for (const to of targets) {
        const target = layerOf(to);
        if (from === undefined || target === undefined || target.rank > from.rank) {
          bad.push(`${file} (${from?.name}) -> ${to} (${target?.name ?? "no layer"})`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it("reads Postgres error codes only in src/store", () => {
    // A SQLSTATE is five digits or capitals; postgres.js puts it in `code`, the broken constraint in constraint_name.
    const sqlState = /\bcode\s*===?\s*["'][0-9A-Z]{5}["']|constraint_name/;
    const readers = files.filter(
      (file) => !file.startsWith("src/store/") && sqlState.test(readFileSync(join(ROOT, file), "utf8")),
    );
    expect(readers).toEqual([]);
  });
});
