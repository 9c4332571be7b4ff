/**
 * Bundles the web console (console/) into `outdir` (dist/console by default) with esbuild: index.html and the style
 * sheet copied as they are, the TypeScript bundled as ES modules. Code split into chunks loads only where it is used
 * (the key-space YAML view brings the YAML library), which keeps the first load small.
 */
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));

export function buildConsole(outdir = join(root, "dist", "console")) {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  buildSync({
    entryPoints: { app: join(root, "console", "src", "main.ts") },
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    minify: true,
    legalComments: "none",
    logLevel: "warning",
    chunkNames: "chunk-[hash]",
  });
  for (const file of ["index.html", "console.css", "favicon.svg"])
    copyFileSync(join(root, "console", file), join(outdir, file));
  return outdir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    buildConsole(process.argv[2]);
  } catch (error) {
    process.stderr.write(`build-console: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
