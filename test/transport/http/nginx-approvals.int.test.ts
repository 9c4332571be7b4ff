/**
 * An approval-level call through deploy/nginx/keymesh.conf (needs Postgres; skipped without nginx). nginx passes only
 * 2xx, 401 and 403 from auth_request and drops the subrequest's body, so keymesh answers /authz with 403 and the
 * ticket in X-Keymesh-Approval-Id, and the shipped error_page handler turns that into 202 with the ticket as JSON.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OwnerType } from "../../../gen/keymesh/v1/types_pb.js";
import { createApprovalKeySpace } from "../../admin/approvals-support.js";
import { startTestServer, type TestServer } from "../../support/server.js";
import {
  type Echoed,
  type NginxHandle,
  nginxAvailable,
  shippedNginxConfig,
  startEchoUpstream,
  startNginx,
} from "./nginx.js";

describe.skipIf(!nginxAvailable())("approvals through deploy/nginx/keymesh.conf (Postgres)", () => {
  let t: TestServer;
  let upstream: Awaited<ReturnType<typeof startEchoUpstream>>;
  let approvals: NginxHandle;
  let approvalSpaceId: string;
  let workspaceId: string;

  beforeAll(async () => {
    // A generous decision deadline: opening an approval writes to Postgres, which a loaded CI machine can stall.
    t = await startTestServer({ env: { KEYMESH_CHECK_DEADLINE_MS: "2000" } });
    approvalSpaceId = await createApprovalKeySpace(t, "ngxapr");
    workspaceId = (await t.admin.createWorkspace({ name: "nginx approvers", apiAccess: true })).workspace!.id;
    upstream = await startEchoUpstream();
    approvals = await startNginx((port) =>
      shippedNginxConfig({
        port,
        keymeshPort: t.server.httpPort,
        upstreamPort: upstream.port,
        keySpace: "ngxapr",
      }),
    );
  });

  afterAll(async () => {
    await approvals?.stop();
    await upstream?.stop();
    await t?.stop();
  });

  const createKey = async (scopes: string[], space: string) => {
    const issued = await t.admin.createKey({
      keySpaceId: space,
      workspaceId,
      ownerType: OwnerType.ORGANIZATION,
      name: "n",
      scopes,
    });
    return { id: issued.key!.id, secret: issued.secret };
  };

  async function call(
    path: string,
    options: { method?: string; secret?: string; headers?: Record<string, string>; via?: NginxHandle } = {},
  ) {
    const headers: Record<string, string> = { ...options.headers };
    if (options.secret !== undefined) headers.authorization = `Bearer ${options.secret}`;
    const res = await fetch(`${(options.via ?? approvals).url}${path}`, {
      method: options.method ?? "GET",
      headers,
      ...(options.method === "POST" ? { body: "{}" } : {}),
    });
    const text = await res.text();
    const upstreamSaw = res.status === 200 ? (JSON.parse(text) as Echoed) : undefined;
    return { status: res.status, headers: res.headers, text, upstreamSaw };
  }

  it("An approval-level call reaches the client as 202 with the approval id; the approved retry reaches the upstream once", async () => {
    const key = await createKey(["things:write-approval"], approvalSpaceId);
    const before = upstream.hits();
    const queued = await call("/things", { method: "POST", secret: key.secret, via: approvals });
    expect(queued.status).toBe(202);
    expect(queued.headers.get("content-type")).toContain("application/json");
    const ticket = (JSON.parse(queued.text) as { approval: { id: string; status: string } }).approval;
    expect(ticket.status).toBe("pending");
    expect(ticket.id).toMatch(/^apr_/);
    expect(queued.headers.get("x-keymesh-approval-id")).toBe(ticket.id);
    expect(upstream.hits()).toBe(before);
    // The id is the one keymesh stored: a human approves exactly that request.
    const pending = await t.admin.listApprovals({ workspaceId });
    expect(pending.approvals.map((a) => a.id)).toContain(ticket.id);

    const retryWith = (id: string) =>
      call("/things", {
        method: "POST",
        secret: key.secret,
        via: approvals,
        headers: { "x-keymesh-approval": id },
      });
    expect((await retryWith(ticket.id)).status).toBe(403);
    expect(upstream.hits()).toBe(before);

    await t.admin.approveRequest({ id: ticket.id });
    const retry = await retryWith(ticket.id);
    expect(retry.status).toBe(200);
    expect(retry.upstreamSaw!.headers["x-keymesh-key-id"]).toBe(key.id);
    expect(retry.upstreamSaw!.headers["x-keymesh-approval"]).toBeUndefined();
    expect(upstream.hits()).toBe(before + 1);
    // Redeemed once: the same ticket again is refused.
    const again = await retryWith(ticket.id);
    expect(again.status).toBe(403);
    expect(again.headers.get("x-keymesh-approval-id")).toBeNull();
  });

  it("A made-up approval ticket is refused with 403 and never reaches the upstream", async () => {
    const key = await createKey(["things:write-approval"], approvalSpaceId);
    const ticket = fc.oneof(
      fc.stringMatching(/^apr_[A-Za-z0-9]{12}$/),
      fc.stringMatching(/^[\x21-\x7e]{1,40}$/),
    );
    await fc.assert(
      fc.asyncProperty(ticket, async (id) => {
        const before = upstream.hits();
        const res = await call("/things", {
          method: "POST",
          secret: key.secret,
          via: approvals,
          headers: { "x-keymesh-approval": id },
        });
        expect(res.status).toBe(403);
        expect(res.headers.get("x-keymesh-approval-id")).toBeNull();
        expect(upstream.hits()).toBe(before);
      }),
      { numRuns: 15 },
    );
  });
});
