import { createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../../gen/keymesh/v1/types_pb.js";
import { KeyVerify, VerifyCode } from "../../../gen/keymesh/v1/verify_pb.js";
import { createEnvoyClient, headerOf } from "../../support/envoy-client.js";
import { startTestServer, type TestServer } from "../../support/server.js";

let t: TestServer;
let envoy: ReturnType<typeof createEnvoyClient>;
let keySpaceId: string;
let workspaceId: string;
let memberId: string;

beforeAll(async () => {
  t = await startTestServer();
  envoy = createEnvoyClient(t.grpcAddress);
  const { keySpace } = await t.admin.createKeySpace({
    name: "pods",
    format: { prefix: "trpt_", workspaceSegment: true, style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    scopeModel: { scopes: ["CreatePod", "ListPods"] },
    routes: [
      { method: "POST", path: "/v1/pods", scopes: ["CreatePod"] },
      { method: "GET", path: "/v1/pods", scopes: ["ListPods"] },
    ],
  });
  keySpaceId = keySpace!.id;
  const { workspace } = await t.admin.createWorkspace({ name: "Acme", keySegment: "acme", apiAccess: true });
  workspaceId = workspace!.id;
  memberId = (await t.admin.addMember({ workspaceId, name: "u", role: "Developer" })).member!.id;
});

afterAll(async () => {
  envoy?.close();
  await t?.stop();
});

async function issue(scopes = ["CreatePod"]) {
  return t.admin.createKey({
    keySpaceId,
    workspaceId,
    ownerType: OwnerType.USER,
    memberId,
    name: "k",
    scopes,
  });
}

function check(authorization: string | undefined, method = "POST", path = "/v1/pods") {
  return envoy.check({
    method,
    path,
    headers: authorization === undefined ? {} : { authorization },
    contextExtensions: { "keymesh.key_space": "pods" },
  });
}

describe("Envoy ext_authz Check", () => {
  it("an allowed request is an OK decision that adds identity headers with OVERWRITE_IF_EXISTS_OR_ADD and strips the key", async () => {
    const { key, secret } = await issue();
    const res = await check(`Bearer ${secret}`);
    expect(res.status?.code).toBe(0);
    const headers = res.ok_response!.headers;
    expect(headerOf(headers, "x-keymesh-key-id")).toBe(key!.id);
    expect(headerOf(headers, "x-keymesh-workspace-id")).toBe(workspaceId);
    for (const h of headers) expect(h.append_action).toBe("OVERWRITE_IF_EXISTS_OR_ADD");
    expect(res.ok_response!.headers_to_remove).toContain("authorization");
    expect(JSON.stringify(res.dynamic_metadata)).toContain(key!.id);
  });

  it("a missing, malformed or unknown key is a 401 denial with WWW-Authenticate, never a gRPC error", async () => {
    for (const auth of [undefined, "Bearer ", "Bearer trpt_acme_nope", "Basic Zm9vOmJhcg=="]) {
      const res = await check(auth);
      expect(res.status?.code).not.toBe(0);
      expect(res.denied_response?.status?.code).toBe("Unauthorized");
      expect(headerOf(res.denied_response?.headers, "www-authenticate")).toContain("Bearer");
      expect(JSON.parse(res.denied_response!.body)).toMatchObject({ error: { code: expect.any(String) } });
    }
  });

  it("a key lacking the route's scope is a 403", async () => {
    const { secret } = await issue(["ListPods"]);
    expect((await check(`Bearer ${secret}`, "GET")).status?.code).toBe(0);
    const res = await check(`Bearer ${secret}`, "POST");
    expect(res.denied_response?.status?.code).toBe("Forbidden");
    expect(JSON.parse(res.denied_response!.body).error.code).toBe("insufficient_scope");
  });

  it("revocation takes effect on the very next check, and re-activation restores the key", async () => {
    const { key, secret } = await issue();
    expect((await check(`Bearer ${secret}`)).status?.code).toBe(0);
    await t.admin.revokeKey({ id: key!.id });
    await expect
      .poll(async () => (await check(`Bearer ${secret}`)).denied_response?.status?.code, { timeout: 1000 })
      .toBe("Unauthorized");
    await t.admin.activateKey({ id: key!.id });
    await expect.poll(async () => (await check(`Bearer ${secret}`)).status?.code, { timeout: 1000 }).toBe(0);
  });

  it("a workspace without API access on its plan gets a 403 that says so", async () => {
    const { workspace } = await t.admin.createWorkspace({ name: "Free plan", apiAccess: false });
    const { secret } = await t.admin.createKey({
      keySpaceId,
      workspaceId: workspace!.id,
      ownerType: OwnerType.ORGANIZATION,
      name: "k",
      scopes: ["CreatePod"],
    });
    const res = await check(`Bearer ${secret}`);
    expect(res.denied_response?.status?.code).toBe("Forbidden");
    expect(JSON.parse(res.denied_response!.body).error.message).toMatch(/plan/);
  });

  it("malformed CheckRequests (no http attributes, huge or non-UTF-8 headers) get a clean 401", async () => {
    const big = `Bearer ${"x".repeat(200_000)}`;
    expect((await check(big)).denied_response?.status?.code).toBe("Unauthorized");
    expect((await check("Bearer \udcff\u0000garbage")).denied_response?.status?.code).toBe("Unauthorized");
    const bare = await envoy.check({});
    expect(bare.denied_response?.status?.code).toBe("Unauthorized");
  });

  it("last-used time is recorded without a write per request", async () => {
    const { key, secret } = await issue();
    await check(`Bearer ${secret}`);
    await expect
      .poll(async () => (await t.admin.getKey({ id: key!.id })).key!.lastUsedAt, { timeout: 3000 })
      .toBeDefined();
  });
});

describe("operations endpoints", () => {
  it("reports health and Prometheus metrics on the HTTP port", async () => {
    expect((await fetch(`${t.httpUrl}/healthz`)).status).toBe(200);
    const metrics = await (await fetch(`${t.httpUrl}/metrics`)).text();
    expect(metrics).toContain("keymesh_database_up 1");
    expect(metrics).toMatch(/keymesh_rate_limiter_failures_total \d+/);
    // Earlier tests in this file sent allowed and denied Checks through Envoy's gRPC path.
    expect(metrics).toMatch(/^keymesh_check_decisions_total\{decision="allow"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^keymesh_check_decisions_total\{decision="deny"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^keymesh_check_decisions_total\{decision="error"\} \d+$/m);
  });
});

describe("KeyVerify", () => {
  it("answers the verdict as data over gRPC (both ports), Connect and gRPC-Web", async () => {
    const { key, secret } = await issue();
    const connect = createClient(
      KeyVerify,
      createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }),
    );
    const grpcOnConnectPort = createClient(KeyVerify, createGrpcTransport({ baseUrl: t.httpUrl }));
    const grpcWeb = createClient(
      KeyVerify,
      createGrpcWebTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }),
    );
    for (const client of [t.verify, connect, grpcOnConnectPort, grpcWeb]) {
      const ok = await client.verify({ key: secret, keySpaceId, scopes: ["CreatePod"] });
      expect(ok).toMatchObject({
        code: VerifyCode.VALID,
        valid: true,
        identity: { keyId: key!.id, workspaceId },
      });
      const scope = await client.verify({ key: secret, keySpaceId, scopes: ["ListPods"] });
      expect(scope.code).toBe(VerifyCode.INSUFFICIENT_SCOPE);
      const unknown = await client.verify({ key: "trpt_acme_garbage", keySpaceId });
      expect(unknown.valid).toBe(false);
    }
  });

  it("reports REVOKED and NOT_FOUND for revoked and deleted keys", async () => {
    const { key, secret } = await issue();
    await t.admin.revokeKey({ id: key!.id });
    await expect
      .poll(async () => (await t.verify.verify({ key: secret, keySpaceId })).code)
      .toBe(VerifyCode.REVOKED);
    await t.admin.deleteKey({ id: key!.id });
    await expect
      .poll(async () => (await t.verify.verify({ key: secret, keySpaceId })).code)
      .toBe(VerifyCode.NOT_FOUND);
  });
});
