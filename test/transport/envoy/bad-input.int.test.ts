/**
 * Bad bytes on the check path against a real server (needs Postgres): a key space reference, header or path that
 * Postgres could not hold gets a clean denial from Envoy Check, HTTP /authz and KeyVerify, never the 503 of a
 * failed database round trip.
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApprovalStatus } from "../../../gen/keymesh/v1/types_pb.js";
import { KeyVerify, VerifyCode } from "../../../gen/keymesh/v1/verify_pb.js";
import { createApprovalAgent } from "../../admin/approvals-support.js";
import { gateway } from "../../scenarios/support.js";
import { startTestServer, type TestServer } from "../../support/server.js";

let t: TestServer;
let gw: ReturnType<typeof gateway>;
let workspaceId: string;
let secret: string;

beforeAll(async () => {
  t = await startTestServer();
  ({ workspaceId, secret } = await createApprovalAgent(t, "guarded"));
  gw = gateway(t, "guarded");
});

afterAll(async () => {
  gw?.close();
  await t?.stop();
});

// A NUL anywhere in an otherwise ordinary name, or a name longer than any key space can have.
const unusableKeySpace = fc.oneof(
  fc
    .tuple(fc.constantFrom("", "guarded", "ks_"), fc.string({ maxLength: 8 }))
    .map(([a, b]) => `${a}\u0000${b}`),
  fc.integer({ min: 257, max: 8000 }).map((n) => "g".repeat(n)),
);

const nul = fc
  .tuple(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }))
  .map(([a, b]) => `${a}\u0000${b}`);

describe("the check path answers unstorable input with a clean denial (needs Postgres)", () => {
  it("Envoy Check with such a key space extension is denied as an unknown key space (401), not 503", async () => {
    await fc.assert(
      fc.asyncProperty(unusableKeySpace, async (keySpace) => {
        const view = await gw.request(
          "GET",
          "/things",
          { authorization: `Bearer ${secret}` },
          { contextExtensions: { "keymesh.key_space": keySpace } },
        );
        expect(view.status).toBe(401);
      }),
      { seed: 41, numRuns: 40 },
    );
  });

  it("KeyVerify over gRPC and Connect with such a key_space_id answers NOT_FOUND, not UNAVAILABLE", async () => {
    const connect = createClient(
      KeyVerify,
      createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }),
    );
    await fc.assert(
      fc.asyncProperty(unusableKeySpace, async (keySpaceId) => {
        for (const client of [t.verify, connect]) {
          const res = await client.verify({ key: secret, keySpaceId });
          expect(res.code).toBe(VerifyCode.NOT_FOUND);
        }
      }),
      { seed: 42, numRuns: 30 },
    );
  });

  it("HTTP /authz with such a key space in its query is denied (401), not 503", async () => {
    await fc.assert(
      fc.asyncProperty(unusableKeySpace, async (keySpace) => {
        const res = await fetch(`${t.httpUrl}/authz?key_space=${encodeURIComponent(keySpace)}`, {
          headers: {
            authorization: `Bearer ${secret}`,
            "x-original-uri": "/things",
            "x-original-method": "GET",
          },
        });
        expect(res.status).toBe(401);
      }),
      { seed: 43, numRuns: 30 },
    );
  });

  it("an approval-level request with a NUL in a header, the path or the ticket is denied and queues nothing", async () => {
    const before = await t.admin.listApprovals({ workspaceId, status: ApprovalStatus.PENDING });
    const bad = fc.oneof(
      nul.map((value) => ({ path: "/things", headers: { "x-trace": value } })),
      nul.map((value) => ({ path: "/things", headers: { "x-keymesh-approval": value } })),
      nul.map((value) => ({ path: "/things", headers: { [`x-${value}`]: "1" } })),
      fc.string({ maxLength: 6 }).map((value) => ({ path: `/things?q=${value}\u0000`, headers: {} })),
    );
    await fc.assert(
      fc.asyncProperty(bad, async ({ path, headers }) => {
        const view = await gw.request("POST", path, { authorization: `Bearer ${secret}`, ...headers });
        expect(view.status).toBeGreaterThanOrEqual(400);
        expect(view.status).toBeLessThan(500);
      }),
      { seed: 44, numRuns: 40 },
    );
    const after = await t.admin.listApprovals({ workspaceId, status: ApprovalStatus.PENDING });
    expect(after.approvals).toHaveLength(before.approvals.length);
    // The same request without the NUL is queued as before.
    const queued = await gw.request("POST", "/things", {
      authorization: `Bearer ${secret}`,
      "x-trace": "ok",
    });
    expect(queued.status).toBe(202);
  });
});
