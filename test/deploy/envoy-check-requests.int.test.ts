/**
 * The CheckRequests deploy/envoy/envoy.yaml makes Envoy send (route context extensions, headers as Envoy encodes them,
 * the body where the route forwards it), driven against a real keymesh with the official ext_authz client (needs
 * Postgres). Envoy itself is not installed here: its path handling and routing for the settings the file uses are
 * modelled in test/support/envoy-routing.ts; test/deploy/envoy-bootstrap.test.ts proves the file a valid Bootstrap.
 */
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { type ClientRequest, envoyHandles } from "../support/envoy-routing.js";
import {
  createOfficialEnvoyClient,
  headerOf,
  type OfficialCheckResponse,
} from "../support/official-envoy-client.js";
import { startTestServer, type TestServer } from "../support/server.js";

const load = (): Record<string, unknown> =>
  parse(readFileSync(new URL("../../deploy/envoy/envoy.yaml", import.meta.url), "utf8")) as Record<
    string,
    unknown
  >;

describe("the CheckRequests deploy/envoy/envoy.yaml produces, against keymesh (Postgres)", () => {
  let t: TestServer;
  let envoy: ReturnType<typeof createOfficialEnvoyClient>;
  let workspaceId: string;
  const spaces: Record<string, string> = {};
  const bootstrap = load();

  beforeAll(async () => {
    // A generous decision deadline: opening an approval writes to Postgres, which a loaded CI machine can stall.
    t = await startTestServer({ env: { KEYMESH_CHECK_DEADLINE_MS: "2000" } });
    envoy = createOfficialEnvoyClient(t.grpcAddress);
    spaces.api = (
      await t.admin.createKeySpace({
        name: "api",
        format: { prefix: "api_", style: KeyStyle.SINGLE },
        credentialSources: [{ kind: CredentialSourceKind.BEARER }],
        scopeModel: { hierarchies: [{ scopes: ["read", "write"] }], scopes: ["admin"] },
        routes: [
          { method: "GET", path: "/v1/**", scopes: ["read"] },
          { method: "POST", path: "/v1/**", scopes: ["write"] },
        ],
      })
    ).keySpace!.id;
    spaces.partners = (
      await t.admin.createKeySpace({
        name: "partners",
        format: { prefix: "ptn_", style: KeyStyle.SINGLE },
        credentialSources: [{ kind: CredentialSourceKind.HEADER, header: "x-partner-key" }],
        scopeModel: {
          ladders: [
            {
              name: "crud",
              levels: ["read", "write-approval", "write"],
              approvalOf: { "write-approval": "write" },
            },
          ],
        },
        routes: [{ method: "POST", path: "/partner/orders", scopes: ["orders:write"] }],
      })
    ).keySpace!.id;
    workspaceId = (await t.admin.createWorkspace({ name: "envoy users", apiAccess: true })).workspace!.id;
  });

  afterAll(async () => {
    envoy?.close();
    await t?.stop();
  });

  const key = async (space: string, scopes: string[]) =>
    (
      await t.admin.createKey({
        keySpaceId: spaces[space]!,
        workspaceId,
        ownerType: OwnerType.ORGANIZATION,
        name: "e",
        scopes,
      })
    ).secret;

  /** Sends what Envoy would send for `request`; fails when Envoy would not call keymesh at all. */
  async function through(request: ClientRequest): Promise<OfficialCheckResponse> {
    const handled = envoyHandles(bootstrap, request);
    if (handled.kind !== "checked")
      throw new Error(`${request.path} is not checked: ${JSON.stringify(handled)}`);
    return envoy.check(handled.check);
  }
  const status = (res: OfficialCheckResponse) => (res.ok_response ? 200 : res.denied_response?.status?.code);

  it("allows a valid key of the route's key space and sends its identity upstream", async () => {
    const secret = await key("api", ["read"]);
    const res = await through({
      method: "GET",
      path: "/v1/things?x=1",
      headers: { Authorization: `Bearer ${secret}` },
    });
    expect(res.status?.code).toBe(0);
    expect(headerOf(res.ok_response?.headers, "x-keymesh-scopes")).toBe("read");
    expect(res.ok_response?.headers_to_remove).toContain("authorization");
  });

  it("refuses a request without a key with 401 and the key space's challenge, on every checked route", async () => {
    const expected: Record<string, string> = {
      api: 'Bearer realm="keymesh"',
      partners: 'ApiKey realm="keymesh", header="x-partner-key"',
    };
    for (const path of ["/v1/things", "/v1/admin/users", "/partner/orders", "/anything/else"]) {
      const handled = envoyHandles(bootstrap, { method: "GET", path });
      expect(handled.kind).toBe("checked");
      if (handled.kind !== "checked") continue;
      const res = await envoy.check(handled.check);
      expect(res.status?.code).toBe(16);
      expect(headerOf(res.denied_response?.headers, "www-authenticate")).toBe(
        expected[handled.check.contextExtensions!["keymesh.key_space"]!],
      );
    }
  });

  it("demands the admin scope on /v1/admin/ whatever the key space's route rules allow", async () => {
    const reader = await key("api", ["read"]);
    const admin = await key("api", ["read", "admin"]);
    expect(
      status(
        await through({
          method: "GET",
          path: "/v1/admin/users",
          headers: { authorization: `Bearer ${reader}` },
        }),
      ),
    ).toBe("Forbidden");
    expect(
      status(
        await through({
          method: "GET",
          path: "/v1/admin/users",
          headers: { authorization: `Bearer ${admin}` },
        }),
      ),
    ).toBe(200);
  });

  it("judges a key only in the route's key space: an api key is unknown on /partner/, a partner key on /v1/", async () => {
    const apiKey = await key("api", ["read", "write"]);
    const partnerKey = await key("partners", ["orders:write"]);
    expect(
      status(
        await through({ method: "POST", path: "/partner/orders", headers: { "x-partner-key": apiKey } }),
      ),
    ).toBe("Unauthorized");
    expect(
      status(
        await through({
          method: "GET",
          path: "/v1/things",
          headers: { authorization: `Bearer ${partnerKey}` },
        }),
      ),
    ).toBe("Unauthorized");
    expect(
      status(
        await through({
          method: "POST",
          path: "/partner/orders",
          headers: { "x-partner-key": partnerKey },
          body: "{}",
        }),
      ),
    ).toBe(200);
  });

  it("binds a partner approval to the body Envoy forwards: 202 first, then only the identical request passes", async () => {
    const secret = await key("partners", ["orders:write-approval"]);
    const order = (body: string, approval?: string) =>
      through({
        method: "POST",
        path: "/partner/orders",
        headers: {
          "x-partner-key": secret,
          "content-type": "application/json",
          ...(approval ? { "x-keymesh-approval": approval } : {}),
        },
        body,
      });
    const queued = await order('{"qty":1}');
    expect(status(queued)).toBe("Accepted");
    const id = (JSON.parse(queued.denied_response!.body) as { approval: { id: string } }).approval.id;
    expect(headerOf(queued.denied_response?.headers, "x-keymesh-approval-id")).toBe(id);
    await t.admin.approveRequest({ id });
    expect(status(await order('{"qty":1000}', id))).toBe("Forbidden");
    expect(status(await order('{"qty":1}', id))).toBe(200);
  });

  it("checks a path that dot segments or doubled slashes disguise as the health endpoint as the path it resolves to", async () => {
    const reader = await key("api", ["read"]);
    const disguise = fc.constantFrom(
      "/healthz/../v1/admin/users",
      "/healthz/%2e%2e/v1/admin/users",
      "//v1//admin/users",
      "/v1/./admin/users",
      "/v1/things/../admin/users",
    );
    await fc.assert(
      fc.asyncProperty(disguise, async (path) => {
        const handled = envoyHandles(bootstrap, {
          method: "GET",
          path,
          headers: { authorization: `Bearer ${reader}` },
        });
        expect(handled).toMatchObject({ kind: "checked", path: "/v1/admin/users" });
        if (handled.kind === "checked") expect(status(await envoy.check(handled.check))).toBe("Forbidden");
      }),
    );
    expect(envoyHandles(bootstrap, { method: "GET", path: "/healthz" }).kind).toBe("unchecked");
  });

  it("refuses an encoded slash or backslash before any check", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("%2F", "%2f", "%5C", "%5c"),
        fc.constantFrom("/v1", "/healthz", "/partner"),
        (escaped, prefix) => {
          expect(envoyHandles(bootstrap, { method: "GET", path: `${prefix}${escaped}admin` })).toEqual({
            kind: "rejected",
            status: 400,
          });
        },
      ),
    );
  });
});
