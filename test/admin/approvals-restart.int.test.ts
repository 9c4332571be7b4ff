import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ApprovalStatus, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { verifyWebhook } from "../../src/webhooks/sign.js";
import { gateway } from "../scenarios/support.js";
import { createTestDatabase } from "../support/database.js";
import { startTestServer } from "../support/server.js";
import { createApprovalKeySpace } from "./approvals-support.js";

// Approvals and the webhook outbox live in Postgres, so a restart loses neither.
let db: { url: string; drop(): Promise<void> };
let receiver: { server: Server; port: number; bodies: { body: string; signature: string }[]; up: boolean };

const fast = { KEYMESH_WEBHOOK_POLL_MS: "50", KEYMESH_WEBHOOK_BACKOFF_MS: "50" };

beforeAll(async () => {
  db = await createTestDatabase(inject("databaseUrl"));
  const bodies: { body: string; signature: string }[] = [];
  const state = { up: false };
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      // While "down" the receiver answers 503, so deliveries fail and stay in the outbox.
      if (!state.up) return void res.writeHead(503).end();
      bodies.push({ body, signature: String(req.headers["x-keymesh-signature"]) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  receiver = Object.assign(state, { server, port: (server.address() as { port: number }).port, bodies });
});

afterAll(async () => {
  receiver?.server.close();
  await db?.drop();
});

describe("approvals and webhooks across a restart", () => {
  it("a pending approval and an undelivered rejection webhook survive a restart, and the webhook arrives exactly once", async () => {
    const first = await startTestServer({ databaseUrl: db.url, env: fast });
    const keySpaceId = await createApprovalKeySpace(first, "restart");
    const workspaceId = (await first.admin.createWorkspace({ name: "w", apiAccess: true })).workspace!.id;
    const { secret } = await first.admin.createKey({
      keySpaceId,
      workspaceId,
      ownerType: OwnerType.ORGANIZATION,
      name: "agent",
      scopes: ["things:write-approval"],
      rejectionWebhookUrl: `http://127.0.0.1:${receiver.port}/hook`,
    });
    const gw = gateway(first, "restart");
    const auth = { authorization: `Bearer ${secret}` };
    const toReject = JSON.parse((await gw.request("POST", "/things", auth, { body: "reject me" })).body)
      .approval.id as string;
    const toApprove = JSON.parse((await gw.request("POST", "/things", auth, { body: "approve me" })).body)
      .approval.id as string;
    await first.admin.rejectRequest({ id: toReject, reason: "no" });
    // Let at least one delivery attempt fail while the receiver is down, then stop the service.
    await new Promise((r) => setTimeout(r, 300));
    gw.close();
    await first.stop();
    expect(receiver.bodies).toHaveLength(0);

    receiver.up = true;
    const second = await startTestServer({ databaseUrl: db.url, env: fast });
    try {
      await expect.poll(() => receiver.bodies.length, { timeout: 10_000 }).toBe(1);
      const { secret: signing } = await second.admin.getWebhookSigningSecret({});
      const delivered = receiver.bodies[0]!;
      expect(verifyWebhook(signing, delivered.body, delivered.signature)).toBe(true);
      expect(JSON.parse(delivered.body).data).toMatchObject({
        approvalId: toReject,
        reason: "no",
        request: { body: "reject me" },
      });

      const pending = await second.admin.listApprovals({ workspaceId, status: ApprovalStatus.PENDING });
      expect(pending.approvals.map((a) => a.id)).toEqual([toApprove]);
      await second.admin.approveRequest({ id: toApprove });
      const gw2 = gateway(second, "restart");
      const retry = { ...auth, "x-keymesh-approval": toApprove };
      expect((await gw2.request("POST", "/things", retry, { body: "approve me" })).status).toBe(200);
      gw2.close();
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.bodies).toHaveLength(1);
    } finally {
      await second.stop();
    }
  });
});
