/**
 * The web console in a real browser (Debian's chromium through playwright-core), against a running server over
 * Postgres: an operator signs in, creates a key and reads its secret once, decides queued approvals while a gateway
 * sends Checks, and revokes the key. Needs Postgres.
 */
import { createServer, type Server } from "node:http";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyWebhook } from "../../src/webhooks/sign.js";
import { gateway } from "../scenarios/support.js";
import { openPage, signIn, startBrowser } from "../support/browser.js";
import { startTestServer, type TestServer } from "../support/server.js";

// Generous: the CI machine is small and the browser shares it with the server and Postgres.
const POLL = { timeout: 15_000 };

let t: TestServer;
let browser: Browser;
let page: Page;
let errors: string[];
let gw: ReturnType<typeof gateway>;
let receiver: { server: Server; url: string; deliveries: { body: string; signature: string }[] };
let secret = "";

const SPACE_FILE = `name: console-things
format: { prefix: ap_, style: single }
credential_sources: [bearer]
scope_model:
  ladders:
    - name: crud
      levels: [read, write-approval, write]
      approval_of: { write-approval: write }
routes:
  - { method: POST, path: /things, scopes: ["things:write"] }
`;
let keyId = "";

async function startReceiver() {
  const deliveries: { body: string; signature: string }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      deliveries.push({ body, signature: String(req.headers["x-keymesh-signature"]) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, deliveries };
}

/** Sends POST /things with `body` through the gateway as the console-made key; returns the approval it queued. */
async function queue(body: string): Promise<string> {
  const answer = await gw.request("POST", "/things", { authorization: `Bearer ${secret}` }, { body });
  expect(answer.status).toBe(202);
  return JSON.parse(answer.body).approval.id as string;
}

beforeAll(async () => {
  receiver = await startReceiver();
  t = await startTestServer({ env: { KEYMESH_WEBHOOK_POLL_MS: "50", KEYMESH_WEBHOOK_BACKOFF_MS: "50" } });
  gw = gateway(t, "console-things");
  browser = await startBrowser();
  ({ page, errors } = await openPage(browser));
});

afterAll(async () => {
  gw?.close();
  await browser?.close();
  await t?.stop();
  receiver?.server.close();
});

describe("the console's approval flow in chromium (needs Postgres)", () => {
  it("signs in with the root key and shows what it may do", async () => {
    await signIn(page, t.httpUrl, t.rootKey);
    await expect.poll(() => page.locator(".level").textContent(), POLL).toBe("admin:root");
    await expect
      .poll(() => page.getByRole("heading", { name: "Approvals", level: 1 }).isVisible(), POLL)
      .toBe(true);
  });

  it("creates a workspace and, from a keyspaces file, a key space whose writes wait for approval", async () => {
    await page.getByRole("link", { name: "Workspaces" }).click();
    await page.getByRole("button", { name: "Create workspace" }).click();
    const workspace = page.getByRole("dialog", { name: "Create a workspace" });
    await workspace.getByLabel("Name").fill("acme");
    await workspace.getByRole("button", { name: "Create workspace" }).click();
    await expect.poll(() => page.getByRole("cell", { name: /acme/ }).count(), POLL).toBe(1);
    expect((await t.admin.listWorkspaces({})).workspaces.map((w) => [w.name, w.apiAccess])).toEqual([
      ["acme", true],
    ]);

    await page.getByRole("link", { name: "Key spaces" }).click();
    await page.getByRole("button", { name: "Create from a file" }).click();
    await page.getByLabel("Key space file (YAML)").fill(SPACE_FILE);
    await page.getByRole("dialog").getByRole("button", { name: "Create" }).click();
    await expect
      .poll(() => page.locator(".notice").textContent(), POLL)
      .toMatch(/^Created key space console-things/);
    await expect.poll(() => page.locator("pre.yaml").textContent(), POLL).toContain("write-approval: write");
    const space = (await t.admin.getKeySpace({ id: "console-things" })).keySpace!;
    expect(space.routes.map((r) => [r.method, r.path, r.scopes])).toEqual([
      ["POST", "/things", ["things:write"]],
    ]);
  });

  it("creates a key and shows its secret once, in a dialog that takes it away when closed", async () => {
    await page.getByRole("link", { name: "Keys" }).click();
    await page.getByRole("button", { name: "Create key" }).click();
    const form = page.getByRole("dialog", { name: "Create a key" });
    await form.getByLabel("Name").fill("console-agent");
    await form.getByLabel("Key space").selectOption({ label: "console-things" });
    await form.getByLabel("Workspace").selectOption({ label: "acme" });
    await form.getByLabel("Scopes").fill("things:write-approval");
    await form.getByLabel("Rejection webhook URL").fill(receiver.url);
    await form.getByRole("button", { name: "Create key" }).click();

    const shown = page.getByRole("dialog", { name: 'Key "console-agent" created' });
    await expect.poll(() => shown.getByText("only time the secret is shown").isVisible(), POLL).toBe(true);
    secret = (await shown.locator("[data-secret]").textContent()) ?? "";
    expect(secret).toMatch(/^ap_/);
    await shown.getByRole("button", { name: "I have stored it" }).click();
    // Focus returns to the button that opened the dialog, and the secret is nowhere in the page any more.
    await expect.poll(() => page.locator(":focus").textContent(), POLL).toBe("Create key");
    expect(await page.content()).not.toContain(secret);

    const { keys } = await t.admin.listKeys({});
    const made = keys.find((k) => k.name === "console-agent")!;
    keyId = made.id;
    expect(made.scopes).toEqual(["things:write-approval"]);
    await expect.poll(() => page.locator(`tr[data-key="${keyId}"]`).isVisible(), POLL).toBe(true);
    expect(await page.content()).not.toContain(secret);
  });

  it("shows a request queued by a Check that returned 202, approves it, and the approved retry passes Check", async () => {
    await page.getByRole("link", { name: "Approvals" }).click();
    await page.getByRole("heading", { name: /^Pending/ }).waitFor();
    const id = await queue('{"thing":"approve me"}');
    // No reload: the screen refreshes by itself.
    const row = page.locator(`tr[data-approval="${id}"]`);
    await row.waitFor(POLL);
    expect(await row.textContent()).toContain("POST /things");
    await row.getByText("Request").click();
    expect(await row.locator("pre.body").textContent()).toBe('{"thing":"approve me"}');
    expect(await row.locator("dl.headers").textContent()).not.toContain(secret);
    await row.getByRole("button", { name: "Approve" }).click();
    await expect.poll(() => page.locator(".notice").textContent(), POLL).toContain("Approved POST /things");

    const retry = { authorization: `Bearer ${secret}`, "x-keymesh-approval": id };
    const passed = await gw.request("POST", "/things", retry, { body: '{"thing":"approve me"}' });
    expect(passed.status).toBe(200);
    await expect
      .poll(() => page.locator(`tr[data-approval="${id}"] .status`).textContent(), POLL)
      .toBe("used");
  });

  it("rejects a queued request only with a reason, and the signed rejection webhook arrives", async () => {
    const id = await queue("reject me");
    const row = page.locator(`tr[data-approval="${id}"]`);
    await row.waitFor(POLL);
    await row.getByRole("button", { name: "Reject" }).click();
    const dialog = page.getByRole("dialog", { name: "Reject POST /things" });
    // The reason is required: submitting without one leaves the dialog open and decides nothing.
    await dialog.getByRole("button", { name: "Reject" }).click();
    expect(await dialog.isVisible()).toBe(true);
    expect((await t.admin.listApprovals({})).approvals.find((a) => a.id === id)?.reason).toBe("");
    await dialog.getByLabel("Reason").fill("not during the freeze");
    await dialog.getByRole("button", { name: "Reject" }).click();

    await expect.poll(() => receiver.deliveries.length, POLL).toBe(1);
    const { secret: signing } = await t.admin.getWebhookSigningSecret({});
    const [delivery] = receiver.deliveries;
    expect(verifyWebhook(signing, delivery!.body, delivery!.signature)).toBe(true);
    expect(JSON.parse(delivery!.body).data).toMatchObject({
      approvalId: id,
      keyId,
      reason: "not during the freeze",
      request: { method: "POST", path: "/things", body: "reject me" },
    });
    await expect
      .poll(() => page.locator(`tr[data-approval="${id}"] .status`).textContent(), POLL)
      .toBe("rejected");
  });

  it("revokes the key after a confirmation, and Check then denies it", async () => {
    await page.getByRole("link", { name: "Keys" }).click();
    const row = page.locator(`tr[data-key="${keyId}"]`);
    await row.getByRole("button", { name: "Revoke" }).click();
    const confirm = page.getByRole("dialog", { name: "Revoke key console-agent?" });
    // Cancelling changes nothing.
    await confirm.getByRole("button", { name: "Cancel" }).click();
    expect((await t.admin.getKey({ id: keyId })).key!.revokedAt).toBeUndefined();
    await row.getByRole("button", { name: "Revoke" }).click();
    await confirm.getByRole("button", { name: "Revoke" }).click();
    await expect.poll(() => row.locator(".status").textContent(), POLL).toBe("revoked");

    await expect
      .poll(async () => (await gw.request("POST", "/things", { authorization: `Bearer ${secret}` })).status, {
        timeout: 10_000,
      })
      .toBe(401);
    expect(errors).toEqual([]);
  });
});
