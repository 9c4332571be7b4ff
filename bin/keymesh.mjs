#!/usr/bin/env node
// The `keymesh` command. It runs the compiled CLI from dist/ when a build is there and current, and otherwise the
// TypeScript sources through tsx, so `npx keymesh …` works in a checkout before and after `npm run build`.
// `serve`, `migrate` and `bootstrap` start the service itself, the same way.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const SERVICE_COMMANDS = new Set(["serve", "migrate", "bootstrap"]);
const service = SERVICE_COMMANDS.has(process.argv[2] ?? "");
const entry = service ? "main" : "cli/main";
const compiled = join(root, "dist", "src", `${entry}.js`);
const source = join(root, "src", `${entry}.ts`);

/** The newest modification time of the sources the compiled entry was built from, 0 when there are none. */
function newestSource() {
  let newest = 0;
  const visit = (path) => {
    const stat = statSync(path);
    newest = Math.max(newest, stat.mtimeMs);
    if (stat.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  for (const dir of ["src", "gen"]) if (existsSync(join(root, dir))) visit(join(root, dir));
  return newest;
}

async function runSource() {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(source).href);
}

const hasCompiled = existsSync(compiled);
const hasSource = existsSync(source);
if (hasCompiled && (!hasSource || statSync(compiled).mtimeMs >= newestSource())) {
  await import(pathToFileURL(compiled).href);
} else if (hasSource) {
  try {
    await runSource();
  } catch (error) {
    if (error?.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes("tsx")) {
      process.stderr.write("keymesh: tsx is not installed; run `npm ci`, or `npm run build` and use dist/\n");
      process.exit(1);
    }
    throw error;
  }
} else {
  process.stderr.write(`keymesh: neither ${compiled} nor ${source} exists; run \`npm run build\`\n`);
  process.exit(1);
}
