/**
 * deploy/istio: the AuthorizationPolicies validated against Istio's CRD schema (@kubernetes-models/istio), and the
 * meshConfig extension providers checked field by field. The IstioOperator CRD leaves `spec` free-form, and no
 * registry package ships Istio's MeshConfig schema, so the providers are checked against the field tables of
 * test/support/istio-providers.ts, taken from Istio's mesh/v1alpha1/config.proto.
 * The second describe (Postgres) sends keymesh the check requests the providers make Envoy send.
 */
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { covers, httpCheck, providerProblems } from "../support/istio-providers.js";
import { modelFor, parseManifests, schemaProblems } from "../support/manifest-schema.js";
import { createOfficialEnvoyClient } from "../support/official-envoy-client.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { keyPaths, type Path, withKeyRenamed } from "../support/tree-paths.js";

type Tree = Record<string, unknown>;
const read = (file: string) => readFileSync(new URL(`../../deploy/${file}`, import.meta.url), "utf8");
const [operator] = parseManifests(read("istio/mesh-config.yaml"), "mesh-config.yaml");
const policies = parseManifests(read("istio/authorization-policy.yaml"), "authorization-policy.yaml");
const providers = ((operator!.spec as Tree).meshConfig as Tree).extensionProviders as Tree[];
const provider = (name: string) => providers.find((p) => p.name === name)!;

const base = parseManifests(read("kubernetes/service.yaml"), "service.yaml").find(
  (d) => (d.metadata as Tree).name === "keymesh",
)!;
const servicePort = (name: string) =>
  ((base.spec as Tree).ports as Tree[]).find((p) => p.name === name)!.port as number;
const IDENTITY = ["key-id", "workspace-id", "owner-id", "owner-type", "scopes", "key-space-id"].map(
  (h) => `x-keymesh-${h}`,
);

describe("deploy/istio", () => {
  it("has AuthorizationPolicies valid under Istio's CRD schema, with no undeclared field", () => {
    expect(policies.length).toBeGreaterThanOrEqual(2);
    for (const policy of policies) {
      expect(modelFor(policy)).toBeDefined();
      expect(schemaProblems(policy)).toEqual([]);
    }
  });

  it("makes every policy CUSTOM, scoped to one workload, naming a provider of the mesh config", () => {
    const names = providers.map((p) => p.name);
    const selectors = new Set<string>();
    for (const policy of policies) {
      const spec = policy.spec as Tree;
      expect(spec.action).toBe("CUSTOM");
      expect(names).toContain((spec.provider as Tree).name);
      const selector = JSON.stringify([(policy.metadata as Tree).namespace, spec.selector]);
      expect((spec.selector as Tree).matchLabels).toBeDefined();
      expect(selectors.has(selector), "one CUSTOM provider per workload").toBe(false);
      selectors.add(selector);
    }
  });

  it("is an IstioOperator whose extension providers have only the fields Istio's MeshConfig defines", () => {
    const { spec: _, ...outer } = operator!;
    expect(schemaProblems(outer)).toEqual([]);
    // The CRD accepts anything as spec: the schema check stops there, and the field tables take over.
    const inSpec = schemaProblems(operator!);
    expect(inSpec[0]).toBe("spec: not a field of install.istio.io/v1alpha1 IstioOperator");
    for (const problem of inSpec) expect(problem).toMatch(/^spec[.:]/);
    expect(Object.keys(operator!.spec as Tree)).toEqual(["meshConfig"]);
    expect(Object.keys((operator!.spec as Tree).meshConfig as Tree)).toEqual(["extensionProviders"]);
    expect(providerProblems(providers)).toEqual([]);
  });

  it("refuses the providers with any one field name misspelled", () => {
    const paths = keyPaths(providers).filter(
      (p) => typeof p.at(-1) === "string" && !String(p.at(-1)).startsWith("x-"),
    );
    expect(paths.length).toBeGreaterThan(30);
    fc.assert(
      fc.property(fc.constantFrom(...paths), (path: Path) => {
        expect(providerProblems(withKeyRenamed(providers, path, `${path.at(-1)}s`))).not.toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it("points the gRPC provider at keymesh's gRPC port, failing closed within a timeout above keymesh's deadline", () => {
    const grpc = provider("keymesh-grpc").envoyExtAuthzGrpc as Tree;
    expect(grpc.service).toBe("keymesh.keymesh.svc.cluster.local");
    expect(grpc.port).toBe(servicePort("grpc-keymesh"));
    expect(grpc.failOpen).toBe(false);
    expect(grpc.statusOnError).toBe("503");
    expect(Number.parseFloat(grpc.timeout as string) * 1000).toBeGreaterThan(150);
  });

  it("gives each per-key-space HTTP provider its key space header, which no client header can reach", () => {
    const http = providers.filter((p) => p.envoyExtAuthzHttp).map((p) => p.envoyExtAuthzHttp as Tree);
    expect(http.length).toBeGreaterThanOrEqual(2);
    const spaces = new Set<string>();
    for (const p of http) {
      expect(p.service).toBe("keymesh.keymesh.svc.cluster.local");
      expect(p.port).toBe(servicePort("http-keymesh"));
      expect(p.pathPrefix).toBe("/authz");
      expect(p.failOpen).toBe(false);
      spaces.add((p.includeAdditionalHeadersInCheck as Tree)["x-keymesh-key-space"] as string);
      // keymesh reads the key space, scopes and cost from these under /authz/: only the provider may set them.
      for (const pattern of p.includeRequestHeadersInCheck as string[])
        for (const policy of ["x-keymesh-key-space", "x-keymesh-scope", "x-keymesh-cost"])
          expect(covers(pattern, policy), `${pattern} lets a client send ${policy}`).toBe(false);
      expect(p.headersToUpstreamOnAllow).toEqual(IDENTITY);
      expect(p.headersToDownstreamOnDeny).toEqual(
        expect.arrayContaining(["www-authenticate", "x-keymesh-approval-id", "retry-after"]),
      );
    }
    expect(spaces.size).toBe(http.length);
  });
});

describe("the checks the Istio providers make, against keymesh (Postgres)", () => {
  let t: TestServer;
  const ids: Record<string, string> = {};
  let workspaceId: string;

  beforeAll(async () => {
    // A generous decision deadline: opening an approval writes to Postgres, which a loaded CI machine can stall.
    t = await startTestServer({ env: { KEYMESH_CHECK_DEADLINE_MS: "2000" } });
    ids.api = (
      await t.admin.createKeySpace({
        name: "api",
        format: { prefix: "api_", style: KeyStyle.SINGLE },
        credentialSources: [
          { kind: CredentialSourceKind.BEARER },
          { kind: CredentialSourceKind.HEADER, header: "x-api-key" },
        ],
        scopeModel: { hierarchies: [{ scopes: ["read", "write"] }] },
        routes: [
          { method: "GET", path: "/**", scopes: ["read"] },
          { method: "POST", path: "/**", scopes: ["write"] },
        ],
      })
    ).keySpace!.id;
    ids.partners = (
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
        routes: [{ method: "POST", path: "/orders", scopes: ["orders:write"] }],
      })
    ).keySpace!.id;
    workspaceId = (await t.admin.createWorkspace({ name: "istio users", apiAccess: true })).workspace!.id;
  });

  afterAll(async () => {
    await t?.stop();
  });

  const key = async (space: string, scopes: string[]) =>
    (
      await t.admin.createKey({
        keySpaceId: ids[space]!,
        workspaceId,
        ownerType: OwnerType.ORGANIZATION,
        name: "i",
        scopes,
      })
    ).secret;
  const api = () => provider("keymesh-api").envoyExtAuthzHttp as Tree;
  const partners = () => provider("keymesh-partners").envoyExtAuthzHttp as Tree;

  it("allows a key of the workload's key space and returns the identity headers the provider copies upstream", async () => {
    const secret = await key("api", ["read"]);
    const credentials: Record<string, string>[] = [
      { authorization: `Bearer ${secret}` },
      { "x-api-key": secret },
    ];
    for (const headers of credentials) {
      const res = await httpCheck(api(), t.httpUrl, { method: "GET", path: "/v1/things", headers });
      expect(res.status).toBe(200);
      for (const name of IDENTITY) expect(res.headers.has(name), name).toBe(true);
      expect(res.headers.get("x-keymesh-key-space-id")).toBe(ids.api);
    }
  });

  it("refuses a key of another key space with the workload's own challenge, whatever key-space, scope or cost header the client adds", async () => {
    const apiKey = await key("api", ["read", "write"]);
    const forged = fc.record(
      {
        "x-keymesh-key-space": fc.constantFrom("api", ids.api!, "keymesh"),
        "x-keymesh-scope": fc.constantFrom("read", "orders:write"),
        "x-keymesh-cost": fc.constantFrom("0", "1000"),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(forged, fc.constantFrom("authorization", "x-partner-key"), async (headers, where) => {
        const credential = where === "authorization" ? `Bearer ${apiKey}` : apiKey;
        const res = await httpCheck(partners(), t.httpUrl, {
          method: "POST",
          path: "/orders",
          headers: { ...headers, [where]: credential },
          body: "{}",
        });
        expect(res.status).toBe(401);
        expect(res.headers.get("www-authenticate")).toBe('ApiKey realm="keymesh", header="x-partner-key"');
      }),
      { numRuns: 15 },
    );
  });

  it("hands a partner approval to the client through the headers and body Envoy passes on a denial, bound to the body", async () => {
    const secret = await key("partners", ["orders:write-approval"]);
    const order = (body: string, approval?: string) =>
      httpCheck(partners(), t.httpUrl, {
        method: "POST",
        path: "/orders",
        headers: {
          "x-partner-key": secret,
          "content-type": "application/json",
          ...(approval ? { "x-keymesh-approval": approval } : {}),
        },
        body,
      });
    const queued = await order('{"qty":1}');
    // Any status but 200 is a denial to Envoy's HTTP ext_authz; /authz keeps 403 for proxies that allow every 2xx.
    expect(queued.status).toBe(403);
    const id = ((await queued.json()) as { approval: { id: string } }).approval.id;
    expect(queued.headers.get("x-keymesh-approval-id")).toBe(id);
    await t.admin.approveRequest({ id });
    expect((await order('{"qty":9}', id)).status).toBe(403);
    expect((await order('{"qty":1}', id)).status).toBe(200);
  });

  it("leaves the key space to keymesh on the gRPC provider: inferred from the key's layout when no default is set", async () => {
    const envoy = createOfficialEnvoyClient(t.grpcAddress);
    try {
      const apiKey = await key("api", ["read"]);
      const res = await envoy.check({
        method: "GET",
        path: "/v1/things",
        headers: { authorization: `Bearer ${apiKey}` },
      });
      expect(res.status?.code).toBe(0);
      const missing = await envoy.check({ method: "GET", path: "/v1/things" });
      expect(missing.status?.code).toBe(16);
    } finally {
      envoy.close();
    }
  });
});
