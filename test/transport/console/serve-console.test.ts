/**
 * Unit tests (no Postgres, no Redis) of the console's static file handler on a plain HTTP server: it serves exactly
 * the built files, with the security headers, and no generated path reaches anything else.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CONSOLE_SECURITY_HEADERS,
  createConsoleHandler,
} from "../../../src/transport/console/serve-console.js";

const FILES: Record<string, string> = {
  "index.html": "<!doctype html><title>console</title>",
  "app.js": "console.log('app')",
  "console.css": "body{}",
};
const SECRET = "outside-the-console-dir";

let temp: string;
let server: Server;
let base: string;

function listen(handler: ReturnType<typeof createConsoleHandler>): Promise<Server> {
  const s = createServer((req, res) => {
    if (!handler(req, res)) res.writeHead(404).end("passed on");
  });
  return new Promise((resolve) => s.listen(0, "127.0.0.1", () => resolve(s)));
}

beforeAll(async () => {
  temp = mkdtempSync(join(tmpdir(), "keymesh-console-"));
  const dir = join(temp, "console");
  mkdirSync(join(dir, "nested"), { recursive: true });
  for (const [name, body] of Object.entries(FILES)) writeFileSync(join(dir, name), body);
  // Files beside and below the console directory, and one of a kind it does not serve, must never be served.
  writeFileSync(join(temp, "secret.js"), SECRET);
  writeFileSync(join(dir, "nested", "inner.js"), SECRET);
  writeFileSync(join(dir, "notes.txt"), SECRET);
  server = await listen(createConsoleHandler(dir));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => {
  server?.close();
  rmSync(temp, { recursive: true, force: true });
});

/** A request with the path exactly as given (fetch would normalise dot segments away). */
async function raw(
  path: string,
  method = "GET",
): Promise<{ status: number; headers: Headers; body: string }> {
  const { request } = await import("node:http");
  return new Promise((resolve, reject) => {
    const req = request(`${base}/`, { method, path }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: new Headers(res.headers as Record<string, string>),
          body,
        }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the console's file handler", () => {
  it("serves index.html at / and each built file by its name, with the security headers", async () => {
    for (const [path, body] of [
      ["/", FILES["index.html"]],
      ...Object.entries(FILES).map(([n, b]) => [`/${n}`, b]),
    ]) {
      const res = await raw(path!);
      expect(res.status, path).toBe(200);
      expect(res.body).toBe(body);
      for (const [name, value] of Object.entries(CONSOLE_SECURITY_HEADERS))
        expect(res.headers.get(name)).toBe(value);
    }
    expect((await raw("/app.js")).headers.get("content-type")).toBe("text/javascript; charset=utf-8");
  });

  it("has a policy that allows no inline code, no other origin and no framing", () => {
    const csp = CONSOLE_SECURITY_HEADERS["content-security-policy"]!;
    const directives = new Map(
      csp
        .split(";")
        .map((d) => d.trim().split(/\s+/) as [string, ...string[]])
        .map(([k, ...v]) => [k, v]),
    );
    for (const name of ["default-src", "script-src", "style-src", "connect-src"])
      expect(directives.get(name)).toEqual(["'self'"]);
    expect(directives.get("frame-ancestors")).toEqual(["'none'"]);
    expect(directives.get("base-uri")).toEqual(["'none'"]);
    expect(csp).not.toMatch(/unsafe-|\*|data:.*script|http/);
    expect(CONSOLE_SECURITY_HEADERS["x-frame-options"]).toBe("DENY");
  });

  it("passes on every method but GET and HEAD, and answers HEAD without a body", async () => {
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
      expect((await raw("/", method)).body).toBe("passed on");
    const head = await raw("/app.js", "HEAD");
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
  });

  it("serves nothing but the built files for any generated path, traversal and encodings included", async () => {
    const segment = fc.oneof(
      fc.constantFrom(
        "..",
        ".",
        "%2e%2e",
        "%2E%2E",
        "..%2f",
        "%2f",
        "%5c",
        "..\\",
        "nested",
        "secret.js",
        "notes.txt",
      ),
      fc.constantFrom(...Object.keys(FILES), "inner.js", ""),
      fc.stringMatching(/^[A-Za-z0-9._%~-]{0,12}$/),
    );
    const path = fc
      .tuple(
        fc.array(segment, { minLength: 1, maxLength: 6 }),
        fc.constantFrom("", "?x=1", "#f", "?../secret.js"),
      )
      .map(([parts, tail]) => `/${parts.join("/")}${tail}`);
    const served = new Set(Object.values(FILES));
    await fc.assert(
      fc.asyncProperty(path, async (p) => {
        const res = await raw(p);
        expect(res.body).not.toContain(SECRET);
        if (res.status === 200) {
          expect(served.has(res.body)).toBe(true);
          expect(res.headers.get("content-security-policy")).toBe(
            CONSOLE_SECURITY_HEADERS["content-security-policy"],
          );
        } else expect(res.body).toBe("passed on");
      }),
      { numRuns: 300 },
    );
  });

  it("says how to build the console when it has not been built, instead of passing / on", async () => {
    const empty = await listen(createConsoleHandler(join(temp, "missing")));
    try {
      const port = (empty.address() as { port: number }).port;
      const res = await fetch(`http://127.0.0.1:${port}/`);
      expect(res.status).toBe(503);
      expect(await res.text()).toContain("npm run build");
      expect((await fetch(`http://127.0.0.1:${port}/app.js`)).status).toBe(404);
    } finally {
      empty.close();
    }
  });
});
