import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApprovalStatus } from "../../gen/keymesh/v1/types_pb.js";
import { codeOf, gateway } from "../scenarios/support.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { createApprovalAgent } from "./approvals-support.js";

let t: TestServer;
let gw: ReturnType<typeof gateway>;
let secret: string;
let workspaceId: string;

beforeAll(async () => {
  t = await startTestServer();
  ({ workspaceId, secret } = await createApprovalAgent(t, "expiring"));
  gw = gateway(t, "expiring");
});

afterAll(async () => {
  gw?.close();
  await t?.stop();
});

async function queue(): Promise<string> {
  const res = await gw.request("POST", "/things", { authorization: `Bearer ${secret}` });
  return (JSON.parse(res.body) as { approval: { id: string } }).approval.id;
}

async function age(id: string): Promise<void> {
  // Time travel: approvals live for at least a minute, so the deadline is moved in the database.
  const sql = postgres(t.databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql`update approvals set expires_at = now() - interval '1 second' where id = ${id}`;
  } finally {
    await sql.end();
  }
}

describe("approval expiry", () => {
  it("an approval past its deadline is listed as expired and can no longer be approved", async () => {
    const id = await queue();
    await age(id);
    const listed = await t.admin.listApprovals({ workspaceId, status: ApprovalStatus.EXPIRED });
    expect(listed.approvals.map((a) => a.id)).toContain(id);
    const pending = await t.admin.listApprovals({ workspaceId, status: ApprovalStatus.PENDING });
    expect(pending.approvals.map((a) => a.id)).not.toContain(id);
    expect(await codeOf(t.admin.approveRequest({ id }))).toBe(Code.FailedPrecondition);
  });

  it("an approved request not retried before the deadline can no longer be redeemed", async () => {
    const id = await queue();
    await t.admin.approveRequest({ id });
    await age(id);
    const retry = await gw.request("POST", "/things", {
      authorization: `Bearer ${secret}`,
      "x-keymesh-approval": id,
    });
    expect(retry.status).toBe(403);
  });
});
