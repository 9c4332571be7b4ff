/**
 * deploy/envoy/envoy.yaml: a valid envoy.config.bootstrap.v3.Bootstrap under the official Envoy protos (in
 * @grpc/grpc-js-xds), every typed_config resolved; and the CheckRequests it makes Envoy send, driven against a real
 * keymesh with the official ext_authz client (the second describe needs Postgres). Envoy itself is not installed
 * here: its request handling is modelled in test/support/envoy-routing.ts for the settings the file uses.
 */
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { type Path, readProtoJson } from "../support/envoy-config.js";
import { type ClientRequest, connectionManager, envoyHandles } from "../support/envoy-routing.js";
import {
  createOfficialEnvoyClient,
  headerOf,
  type OfficialCheckResponse,
} from "../support/official-envoy-client.js";
import { startTestServer, type TestServer } from "../support/server.js";

const BOOTSTRAP = "envoy.config.bootstrap.v3.Bootstrap";
const TEXT = readFileSync(new URL("../../deploy/envoy/envoy.yaml", import.meta.url), "utf8");
const load = (): Record<string, unknown> => parse(TEXT) as Record<string, unknown>;
type Tree = Record<string, unknown>;

/** Every place in a tree holding an object with "@type", as a path. */
function anyPaths(tree: unknown, at: Path = []): Path[] {
  if (Array.isArray(tree)) return tree.flatMap((x, i) => anyPaths(x, [...at, i]));
  if (typeof tree !== "object" || tree === null) return [];
  const here = "@type" in tree ? [at] : [];
  return [...here, ...Object.entries(tree).flatMap(([k, v]) => anyPaths(v, [...at, k]))];
}

const show = (path: Path) =>
  BOOTSTRAP +
  path
    .map((p) =>
      typeof p === "number" ? `[${p}]` : /[^a-z_0-9]/.test(p) ? `[${JSON.stringify(p)}]` : `.${p}`,
    )
    .join("");

/** The tree with the key at `path` renamed by `rename`. */
function renamed(tree: Tree, path: Path, rename: (key: string) => string): Tree {
  const copy = structuredClone(tree);
  let node: unknown = copy;
  for (const step of path.slice(0, -1)) node = (node as Record<string | number, unknown>)[step];
  const parent = node as Tree;
  const key = path.at(-1) as string;
  const entries = Object.entries(parent);
  for (const k of Object.keys(parent)) delete parent[k];
  for (const [k, v] of entries) parent[k === key ? rename(k) : k] = v;
  return copy;
}

const hcm = () => connectionManager(load());
const extAuthz = () =>
  (hcm().http_filters as Tree[]).find((f) => f.name === "envoy.filters.http.ext_authz")!.typed_config as Tree;
const clusters = () => (load().static_resources as Tree).clusters as Tree[];
const routes = () => ((hcm().route_config as Tree).virtual_hosts as Tree[])[0]!.routes as Tree[];

describe("deploy/envoy/envoy.yaml under the official Envoy protos", () => {
  it("is a valid Bootstrap, with every typed_config resolved to its message type", () => {
    const reading = readProtoJson(BOOTSTRAP, load());
    expect(reading.errors).toEqual([]);
    expect(reading.value).toBeDefined();
    const expected = anyPaths(load()).map(show);
    expect([...reading.anyTypes.keys()].sort()).toEqual(expected.sort());
    expect(new Set(reading.anyTypes.values())).toEqual(
      new Set([
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
        "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
        "envoy.extensions.filters.http.router.v3.Router",
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
      ]),
    );
  });

  it("refuses the file with any one of its field names misspelled", { timeout: 120_000 }, () => {
    const tree = load();
    const { fieldPaths } = readProtoJson(BOOTSTRAP, tree);
    expect(fieldPaths.length).toBeGreaterThan(80);
    const typo = fc.oneof(
      fc.constant((k: string) => `${k}s`),
      fc.constant((k: string) => k.replace(/_/, "")),
      fc.constant((k: string) => k.slice(0, -1)),
      fc.constant((k: string) => k.toUpperCase()),
    );
    fc.assert(
      fc.property(fc.constantFrom(...fieldPaths), typo, (path, rename) => {
        const key = path.at(-1) as string;
        fc.pre(rename(key) !== key);
        const errors = readProtoJson(BOOTSTRAP, renamed(tree, path, rename)).errors;
        const parent = show(path.slice(0, -1));
        expect(errors.join("\n")).toContain(`${parent}.${rename(key)}: unknown field of`);
      }),
      { numRuns: 300 },
    );
  });

  it("refuses a misspelled setting, @type, enum name, wrong value kind, deprecated field or missing required field", () => {
    const errorsOf = (change: (t: Tree) => void) => {
      const tree = load();
      change(tree);
      return readProtoJson(BOOTSTRAP, tree).errors.join("\n");
    };
    const hcmOf = (t: Tree) => connectionManager(t);
    expect(
      errorsOf((t) => {
        const h = hcmOf(t);
        h.normalise_path = h.normalize_path;
        delete h.normalize_path;
      }),
    ).toContain(
      "normalise_path: unknown field of envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    );
    expect(
      errorsOf((t) => {
        hcmOf(t)["@type"] =
          "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManagr";
      }),
    ).toContain("is not a message of the loaded Envoy protos");
    expect(
      errorsOf((t) => {
        hcmOf(t).path_with_escaped_slashes_action = "REJECT_REQUESTS";
      }),
    ).toContain(
      "expected a value of envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.PathWithEscapedSlashesAction",
    );
    const authz = (t: Tree) => (hcmOf(t).http_filters as Tree[])[0]!.typed_config as Tree;
    expect(
      errorsOf((t) => {
        authz(t).failure_mode_allow = "false";
      }),
    ).toContain("failure_mode_allow: expected true or false");
    expect(
      errorsOf((t) => {
        (authz(t).grpc_service as Tree).timeout = "250ms";
      }),
    ).toContain("expected a duration");
    expect(
      errorsOf((t) => {
        ((t.static_resources as Tree).clusters as Tree[])[0]!.max_requests_per_connection = 10;
      }),
    ).toContain("max_requests_per_connection: deprecated field of envoy.config.cluster.v3.Cluster");
    expect(
      errorsOf((t) => {
        delete ((t.static_resources as Tree).clusters as Tree[])[1]!.name;
      }),
    ).toContain("name: must be at least 1 characters");
    expect(
      errorsOf((t) => {
        (authz(t).grpc_service as Tree).google_grpc = { target_uri: "x", stat_prefix: "y" };
      }),
    ).toContain("envoy_grpc and google_grpc are one oneof");
  });

  it("checks every route but the health endpoint in a named key space, with per-route settings bound to the ext_authz filter", () => {
    const filters = (hcm().http_filters as Tree[]).map((f) => f.name);
    expect(filters.at(-1)).toBe("envoy.filters.http.router");
    const names = new Set(clusters().map((c) => c.name));
    for (const route of routes()) {
      // A per-filter config under a name no filter has is silently ignored by Envoy: the route would go unchecked.
      for (const key of Object.keys((route.typed_per_filter_config ?? {}) as Tree))
        expect(filters).toContain(key);
      expect(names).toContain((route.route as Tree).cluster);
      const perRoute = (route.typed_per_filter_config as Tree)["envoy.filters.http.ext_authz"] as Tree;
      if ((route.match as Tree).path === "/healthz") expect(perRoute.disabled).toBe(true);
      // Without a key space keymesh would infer one from the key; every checked route names its own.
      else
        expect(((perRoute.check_settings as Tree).context_extensions as Tree)["keymesh.key_space"]).toMatch(
          /^[a-z]+$/,
        );
    }
  });

  it("fails closed with a 503 within a timeout above keymesh's own deadline, over HTTP/2 to a health-checked keymesh", () => {
    const authz = extAuthz();
    expect(authz.failure_mode_allow).toBe(false);
    expect(authz.transport_api_version).toBe("V3");
    expect(authz.status_on_error).toEqual({ code: "ServiceUnavailable" });
    const grpc = authz.grpc_service as Tree;
    const timeoutMs = Number.parseFloat(grpc.timeout as string) * 1000;
    expect(timeoutMs).toBeGreaterThan(150);
    expect(timeoutMs).toBeLessThanOrEqual(1000);
    const keymesh = clusters().find((c) => c.name === (grpc.envoy_grpc as Tree).cluster_name)!;
    const options = (keymesh.typed_extension_protocol_options as Tree)[
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ] as Tree;
    expect(options["@type"]).toBe(
      "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    );
    expect((options.explicit_http_config as Tree).http2_protocol_options).toBeDefined();
    expect((keymesh.health_checks as Tree[])[0]!.grpc_health_check).toBeDefined();
    const address = JSON.stringify(keymesh.load_assignment);
    expect(address).toContain('"port_value":9090');
    const h = hcm();
    expect([h.normalize_path, h.merge_slashes, h.path_with_escaped_slashes_action]).toEqual([
      true,
      true,
      "REJECT_REQUEST",
    ]);
  });
});

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
