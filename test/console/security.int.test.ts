/**
 * The console's security in a real browser (Debian's chromium through playwright-core) and on the wire, against a
 * running server over Postgres: the content security policy, framing and other origins refused, the key kept out
 * of storage that outlives the tab, and a narrower key shown only what its scopes allow. Needs Postgres.
 */
import { createServer, type Server } from "node:http";
import fc from "fast-check";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { createApprovalKeySpace } from "../admin/approvals-support.js";
import { gateway } from "../scenarios/support.js";
import { openPage, signIn, startBrowser } from "../support/browser.js";
import { startTestServer, type TestServer } from "../support/server.js";

// Generous: the CI machine is small and the browser shares it with the server and Postgres.
const POLL = { timeout: 15_000 };

let t: TestServer;
let browser: Browser;
let other: { server: Server; origin: string; html: string };
const ADMIN_PATH = "/keymesh.v1.KeyAdmin/ListWorkspaces";

beforeAll(async () => {
  t = await startTestServer();
  browser = await startBrowser();
  // A page on another origin (another port) that tries to frame the console and call KeyAdmin with a key.
  other = {
    server: createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end(other.html)),
    origin: "",
    html: "",
  };
  await new Promise<void>((resolve) => other.server.listen(0, "127.0.0.1", resolve));
  other.origin = `http://127.0.0.1:${(other.server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await browser?.close();
  await t?.stop();
  other?.server.close();
});

describe("the console's security (needs Postgres)", () => {
  it("serves its page and code with a strict policy and no inline script or style", async () => {
    const res = await fetch(`${t.httpUrl}/`);
    const html = await res.text();
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    // Every script and style sheet is a same-origin file; no inline code, handler or style attribute.
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script type="module" src="/app.js">']);
    expect(html).not.toMatch(/<script[^>]*>[^<]|<style|\sstyle=|\son[a-z]+=/i);
    for (const src of [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!)) {
      expect(src).toMatch(/^\/[a-z-]+\.(js|css|svg)$/);
      const asset = await fetch(`${t.httpUrl}${src}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get("content-security-policy")).toBe(csp);
    }
  });

  it("answers no origin but its own with CORS permission, whatever Origin a request names", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.webUrl().map((u) => new URL(u).origin),
          fc.constantFrom("null", "http://127.0.0.1", t.httpUrl),
        ),
        fc.constantFrom("OPTIONS", "POST"),
        async (origin, method) => {
          const res = await fetch(`${t.httpUrl}${ADMIN_PATH}`, {
            method,
            headers: {
              origin,
              "content-type": "application/json",
              "access-control-request-method": "POST",
              "access-control-request-headers": "authorization, content-type",
              ...(method === "POST" ? { authorization: `Bearer ${t.rootKey}` } : {}),
            },
            body: method === "POST" ? "{}" : undefined,
          });
          await res.arrayBuffer();
          for (const name of res.headers.keys()) expect(name).not.toMatch(/^access-control-/);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("cannot be framed by, or called from, a page on another origin", async () => {
    other.html = `<!doctype html><iframe src="${t.httpUrl}/"></iframe><script>
      fetch("${t.httpUrl}${ADMIN_PATH}", { method: "POST", body: "{}",
        headers: { "content-type": "application/json", authorization: "Bearer ${t.rootKey}" } })
        .then((r) => r.text(), (e) => "refused: " + e.name).then((x) => { document.title = x; });
    </script>`;
    const { page } = await openPage(browser);
    await page.goto(`${other.origin}/`);
    await expect.poll(() => page.title(), POLL).toBe("refused: TypeError");
    const frame = page.frames().find((f) => f !== page.mainFrame())!;
    await page.waitForTimeout(500);
    expect(await frame.locator("#app").count()).toBe(0);
    await page.context().close();
  });

  it("keeps the key in the tab's session storage only, and signing out clears it", async () => {
    const { page, errors } = await openPage(browser);
    await signIn(page, t.httpUrl, t.rootKey);
    const stored = await page.evaluate(
      "({ local: localStorage.length, cookie: document.cookie, session: Object.values(sessionStorage) })",
    );
    expect(stored).toEqual({ local: 0, cookie: "", session: [t.rootKey] });
    expect(await page.context().cookies()).toEqual([]);
    // Another tab (its own session) starts signed out.
    const second = await page.context().newPage();
    await second.goto(`${t.httpUrl}/`);
    await second.getByLabel("Root key").waitFor();
    // A reload in the same tab keeps the session.
    await page.reload();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Root key").waitFor();
    expect(await page.evaluate("sessionStorage.length + localStorage.length")).toBe(0);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it("refuses a key that is not a root key, and stores nothing", async () => {
    const keySpaceId = await createApprovalKeySpace(t, "security-things");
    const { workspace } = await t.admin.createWorkspace({ name: "sec", apiAccess: true });
    const { secret } = await t.admin.createKey({
      keySpaceId,
      workspaceId: workspace!.id,
      ownerType: OwnerType.ORGANIZATION,
      name: "customer",
      scopes: ["things:write-approval"],
    });
    const { page } = await openPage(browser);
    await page.goto(`${t.httpUrl}/`);
    for (const key of [secret, "km_root_not-a-real-key", `${t.rootKey}x`]) {
      await page.getByLabel("Root key").fill(key);
      await page.getByRole("button", { name: "Sign in" }).click();
      await expect
        .poll(() => page.getByRole("alert").textContent(), POLL)
        .toBe("That key is not a valid root key.");
      expect(await page.evaluate("sessionStorage.length")).toBe(0);
    }
    await page.context().close();
  });

  it("shows an admin:read key the lists but none of the controls its scopes do not allow", async () => {
    const keySpaceId = (await t.admin.getKeySpace({ id: "security-things" })).keySpace!.id;
    const workspaceId = (await t.admin.listWorkspaces({})).workspaces.find((w) => w.name === "sec")!.id;
    const { key, secret } = await t.admin.createKey({
      keySpaceId,
      workspaceId,
      ownerType: OwnerType.ORGANIZATION,
      name: "agent",
      scopes: ["things:write-approval"],
    });
    const gw = gateway(t, "security-things");
    const queued = await gw.request("POST", "/things", { authorization: `Bearer ${secret}` });
    gw.close();
    expect(queued.status).toBe(202);
    const approvalId = JSON.parse(queued.body).approval.id as string;

    for (const [scopes, writes] of [
      [["admin:read"], false],
      [["admin:write"], true],
    ] as const) {
      const reader = await t.admin.createRootKey({ name: scopes[0], scopes: [...scopes] });
      const { page, errors } = await openPage(browser);
      await signIn(page, t.httpUrl, reader.secret);
      expect(await page.locator(".level").textContent()).toBe(scopes[0]);
      const row = page.locator(`tr[data-approval="${approvalId}"]`);
      await row.waitFor();
      expect(await row.getByRole("button", { name: "Approve" }).count()).toBe(writes ? 1 : 0);
      await page.getByRole("link", { name: "Keys" }).click();
      const keyRow = page.locator(`tr[data-key="${key!.id}"]`);
      await keyRow.waitFor();
      expect(await page.getByRole("button", { name: "Create key" }).count()).toBe(writes ? 1 : 0);
      expect(await keyRow.getByRole("button", { name: "Revoke" }).count()).toBe(writes ? 1 : 0);
      await page.getByRole("link", { name: "Workspaces" }).click();
      await page.getByRole("cell", { name: /sec/ }).first().waitFor();
      expect(await page.getByRole("button", { name: "Create workspace" }).count()).toBe(writes ? 1 : 0);
      expect(errors).toEqual([]);
      await page.context().close();
    }
    // Probing the scopes decided nothing.
    const approval = (await t.admin.listApprovals({})).approvals.find((a) => a.id === approvalId)!;
    expect(approval.decidedAt).toBeUndefined();
  });
});
