/**
 * deploy/envoy/envoy.yaml: a valid envoy.config.bootstrap.v3.Bootstrap under the official Envoy protos (in
 * @grpc/grpc-js-xds), every typed_config resolved, with the settings keymesh relies on (no Postgres, no Redis).
 * test/deploy/envoy-check-requests.test.ts drives the CheckRequests the same file makes Envoy send against keymesh.
 */
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { readProtoJson } from "../support/envoy-config.js";
import { connectionManager } from "../support/envoy-routing.js";
import { keyPaths, type Path, valueAt, withKeyRenamed } from "../support/tree-paths.js";

const BOOTSTRAP = "envoy.config.bootstrap.v3.Bootstrap";
const TEXT = readFileSync(new URL("../../deploy/envoy/envoy.yaml", import.meta.url), "utf8");
const load = (): Record<string, unknown> => parse(TEXT) as Record<string, unknown>;
type Tree = Record<string, unknown>;

/** Every place in a tree holding an object with "@type", as a path. */
const anyPaths = (tree: unknown): Path[] =>
  [[] as Path, ...keyPaths(tree)].filter((path) => {
    const value = valueAt(tree, path);
    return typeof value === "object" && value !== null && "@type" in value;
  });

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
    const expected = anyPaths(load()).map((path) => JSON.stringify(path));
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
        const reading = readProtoJson(BOOTSTRAP, withKeyRenamed(tree, path, rename(key)));
        expect(reading.unknownFields).toContainEqual([...path.slice(0, -1), rename(key)]);
        expect(reading.value).toBeUndefined();
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
