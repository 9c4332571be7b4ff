/**
 * `npm start` (and `npm run migrate` / `bootstrap`): runs the compiled service from dist/, building it first when it
 * is missing or older than a source file, so that `npm ci && npm start` works on a fresh clone. Plain JavaScript,
 * not TypeScript: this process becomes the service, and Node's type stripping would cost it about 17 MiB of RSS.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BUILD_STAMP, build } from "./build.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const inputs = [
  "src",
  "gen",
  "console",
  "tsconfig.json",
  "tsconfig.build.json",
  "scripts/build.mjs",
  "scripts/build-console.mjs",
];

/** The newest modification time among the build's inputs that exist (a packed tree without src/ has none). */
function newestInput() {
  let newest = 0;
  const visit = (path) => {
    const stat = statSync(path);
    newest = Math.max(newest, stat.mtimeMs);
    if (stat.isDirectory()) for (const entry of readdirSync(path)) visit(join(path, entry));
  };
  for (const input of inputs) {
    const path = join(root, input);
    if (existsSync(path)) visit(path);
  }
  return newest;
}

function stale() {
  if (!existsSync(BUILD_STAMP)) return "dist/ has not been built";
  return newestInput() > statSync(BUILD_STAMP).mtimeMs ? "a source file is newer than dist/" : undefined;
}

const reason = stale();
if (reason) {
  process.stderr.write(`keymesh: ${reason}; building it (npm run build)\n`);
  try {
    build();
  } catch (error) {
    process.stderr.write(
      `keymesh: build failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  }
}
// Imported in this process rather than spawned, so that signals and the exit code are the service's own.
await import("../dist/src/main.js");
