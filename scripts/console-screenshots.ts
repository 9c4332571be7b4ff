/**
 * `npm run console:screenshots`: the PNGs in docs/console/. Starts keymesh on a throwaway embedded Postgres, fills it
 * with the TrustPager example (a key space, workspaces, members, keys and queued approvals), and photographs each
 * console screen in Debian's chromium. Nothing here is a real credential: the data directory is deleted afterwards.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { KeyAdmin } from "../gen/keymesh/v1/admin_pb.js";
import { OwnerType } from "../gen/keymesh/v1/types_pb.js";
import { parseKeySpaceFile } from "../src/cli/keyspace-file.js";
import { loadConfig } from "../src/config.js";
import { silentLogger } from "../src/log.js";
import { startServer } from "../src/server.js";
import { openPage, signIn, startBrowser } from "../test/support/browser.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = join(root, "docs", "console");
const data = mkdtempSync(join(tmpdir(), "keymesh-screenshots-"));

let rootKey = "";
const server = await startServer(
  loadConfig({
    KEYMESH_DATA_DIR: data,
    KEYMESH_HTTP_PORT: "0",
    KEYMESH_GRPC_PORT: "0",
    KEYMESH_EMBEDDED_PG_PORT: "54471",
  }),
  silentLogger,
  { onRootKey: (secret) => (rootKey = secret) },
);
const url = `http://127.0.0.1:${server.httpPort}`;
const auth: Interceptor = (next) => (req) => {
  req.header.set("authorization", `Bearer ${rootKey}`);
  return next(req);
};
const admin = createClient(
  KeyAdmin,
  createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [auth] }),
);

/** A request through the /authz endpoint, as a gateway would send it for a client. */
const call = (secret: string, body: object) =>
  fetch(`${url}/authz/api/contacts`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${secret}`,
      "x-keymesh-key-space": "trustpager",
      "content-type": "application/json",
    },
    body: JSON.stringify(body),
  });

try {
  const [declaration] = parseKeySpaceFile(
    readFileSync(join(root, "examples", "trustpager.yaml"), "utf8"),
    "trustpager",
  );
  const space = (await admin.createKeySpace(declaration!.request)).keySpace!;
  const plumbing = (await admin.createWorkspace({ name: "Plumbing Co", plan: "pro", apiAccess: true }))
    .workspace!;
  await admin.createWorkspace({ name: "Acme Roofing", plan: "starter", apiAccess: false });
  const dana = (
    await admin.addMember({
      workspaceId: plumbing.id,
      name: "Dana Whitfield",
      role: "owner",
      accountOwner: true,
    })
  ).member!;
  await admin.addMember({ workspaceId: plumbing.id, name: "Sam Ortiz", role: "member" });
  const key = (name: string, scopes: string[]) =>
    admin.createKey({
      keySpaceId: space.id,
      workspaceId: plumbing.id,
      ownerType: OwnerType.ORGANIZATION,
      memberId: dana.id,
      name,
      scopes,
    });
  const crm = await key("CRM sync", ["contacts:write"]);
  const assistant = await key("AI assistant", ["contacts:write-approval", "sms:send-approval"]);
  const billing = await key("Billing export", ["billing:read"]);
  await admin.revokeKey({ id: billing.key!.id });
  await call(crm.secret, { name: "Ada Lovelace" });

  const queued: string[] = [];
  for (const body of [
    { name: "Grace Hopper", email: "grace@example.com" },
    { name: "Alan Turing", phone: "+44 20 7946 0000" },
    { name: "Edsger Dijkstra", note: "met at the trade fair" },
    { name: "Barbara Liskov", email: "barbara@example.com" },
  ]) {
    const answer = await call(assistant.secret, body);
    queued.push(((await answer.json()) as { approval: { id: string } }).approval.id);
  }
  await admin.approveRequest({ id: queued[0]! });
  await admin.rejectRequest({ id: queued[1]!, reason: "Duplicate of an existing contact" });

  mkdirSync(out, { recursive: true });
  const browser = await startBrowser();
  try {
    const { page } = await openPage(browser);
    await page.goto(`${url}/`);
    await page.getByLabel("Root key").waitFor();
    await page.screenshot({ path: join(out, "sign-in.png") });
    await signIn(page, url, rootKey);
    const shoot = async (link: string, name: string, ready: () => Promise<unknown>, fullPage = false) => {
      await page.getByRole("link", { name: link, exact: true }).click();
      await ready();
      await page.screenshot({ path: join(out, `${name}.png`), fullPage });
    };
    await shoot("Approvals", "approvals", async () => {
      const row = page.locator(`tr[data-approval="${queued[2]}"]`);
      await row.waitFor();
      await row.getByText("Request").click();
    });
    await shoot("Keys", "keys", () => page.locator(`tr[data-key="${crm.key!.id}"]`).waitFor());
    await shoot("Workspaces", "workspaces", async () => {
      await page
        .locator(`tr[data-workspace="${plumbing.id}"]`)
        .getByRole("button", { name: "Members" })
        .click();
      await page.getByRole("heading", { name: "Members of Plumbing Co" }).waitFor();
    });
    await shoot(
      "Key spaces",
      "key-spaces",
      async () => {
        await page.getByLabel("Key space", { exact: true }).selectOption(space.id);
        await page.locator("pre.yaml", { hasText: "trustpager" }).waitFor();
      },
      true,
    );
    await shoot("Audit log", "audit", () => page.getByRole("cell", { name: "approval.reject" }).waitFor());
    await page.getByRole("link", { name: "Approvals", exact: true }).click();
    await page.locator(`tr[data-approval="${queued[3]}"]`).getByRole("button", { name: "Reject" }).click();
    await page.getByLabel("Reason").fill("Ask the customer first");
    await page.screenshot({ path: join(out, "reject.png") });
  } finally {
    await browser.close();
  }
  process.stdout.write(`screenshots written to ${out}\n`);
} finally {
  await server.close();
  rmSync(data, { recursive: true, force: true });
}
