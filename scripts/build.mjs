/**
 * `npm run build`: compiles src/ (and the generated code it imports from gen/) to dist/ with tsc, then copies the
 * files the compiled code reads at run time (the SQL migrations) beside it, and bundles the web console into
 * dist/console (scripts/build-console.mjs). dist/ is rebuilt from scratch so that a
 * source file deleted since the last build leaves no stale module behind.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildConsole } from "./build-console.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = join(root, "dist");
/** Written last: start.mjs compares source times against it, so a build that failed half-way counts as stale. */
export const BUILD_STAMP = join(dist, ".build-stamp");

export function build() {
  rmSync(dist, { recursive: true, force: true });
  // The compiler's package exports no bin entry; its bin script sits beside package.json.
  const tsc = join(dirname(createRequire(import.meta.url).resolve("typescript/package.json")), "bin", "tsc");
  const compiled = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], {
    stdio: "inherit",
  });
  if (compiled.status !== 0) throw new Error(`tsc failed (exit ${compiled.status ?? compiled.signal})`);
  // migrate.ts reads its .sql files from the directory beside the module, so they go beside the compiled module.
  const from = join(root, "src", "store", "migrations");
  const to = join(dist, "src", "store", "migrations");
  mkdirSync(to, { recursive: true });
  for (const file of readdirSync(from).filter((name) => name.endsWith(".sql"))) {
    copyFileSync(join(from, file), join(to, file));
  }
  buildConsole(join(dist, "console"));
  writeFileSync(BUILD_STAMP, `${new Date().toISOString()}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    build();
  } catch (error) {
    process.stderr.write(`build: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
