import { existsSync, readdirSync, readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// HTTP/1.1 types, as the /authz handler takes them: the calls made here exist alike on HTTP/2 compatibility objects.
type Request = IncomingMessage;
type Response = ServerResponse;

/**
 * Headers on every console response. The console is plain files with no inline script or style, so the policy can
 * allow only this origin; frame-ancestors and X-Frame-Options keep it out of other sites' frames (clickjacking).
 */
export const CONSOLE_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
});

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/**
 * Where `npm run build` puts the console: dist/console. Compiled, this module sits in dist/src/transport/console;
 * run from source (tsx, tests) it sits in src/transport/console of the repository, whose dist/ holds the build.
 */
export function defaultConsoleDir(): string {
  const top = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
  return existsSync(join(top, "package.json")) ? join(top, "dist", "console") : join(top, "console");
}

interface Asset {
  type: string;
  body: Buffer;
}

/** Reads the built files once; only names found in the directory itself are ever served, so no path escapes it. */
function loadAssets(dir: string): Map<string, Asset> | undefined {
  if (!existsSync(join(dir, "index.html"))) return undefined;
  const assets = new Map<string, Asset>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const type = TYPES[extname(entry.name)];
    if (!entry.isFile() || type === undefined) continue;
    assets.set(`/${entry.name}`, { type, body: readFileSync(join(dir, entry.name)) });
  }
  assets.set("/", assets.get("/index.html")!);
  return assets;
}

/** The console's static files: answers GET and HEAD for them and returns true, or returns false to pass the request on. */
export type ConsoleHandler = (req: Request, res: Response) => boolean;

/**
 * Creates the handler serving the web console from `dir` (built by `npm run build`). The files are read on the first
 * request that finds them, so a server started before the build still serves the console once it exists.
 */
export function createConsoleHandler(dir: string = defaultConsoleDir()): ConsoleHandler {
  let assets: Map<string, Asset> | undefined;
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const path = (req.url ?? "").split(/[?#]/, 1)[0] ?? "";
    assets ??= loadAssets(dir);
    const asset = assets?.get(path);
    if (asset === undefined) {
      if (path !== "/") return false;
      // The console was not built: say how to build it rather than answer a bare 404.
      res.writeHead(503, { ...CONSOLE_SECURITY_HEADERS, "content-type": "text/plain" });
      res.end("The keymesh console is not built: run `npm run build`.\n");
      return true;
    }
    res.writeHead(200, {
      ...CONSOLE_SECURITY_HEADERS,
      "content-type": asset.type,
      "content-length": asset.body.byteLength,
      // Files keep their names across builds, so the browser revalidates instead of running a stale bundle.
      "cache-control": "no-cache",
    });
    if (req.method === "HEAD") res.end();
    else res.end(asset.body);
    return true;
  };
}
