import type { OfficialCheckInput } from "./official-envoy-client.js";

/**
 * What an Envoy bootstrap (as parsed YAML) does with one client request before ext_authz answers: path handling by
 * the HTTP connection manager, the first matching route, and the CheckRequest the ext_authz filter sends for it.
 * A model of Envoy's documented behaviour for the settings the shipped config uses; a setting or route match it does
 * not model is an error, never silently ignored.
 */

type Tree = Record<string, unknown>;

/** A client request as it reaches Envoy's listener. */
export interface ClientRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  authority?: string;
}

/** Envoy's handling: refused before any filter, passed on without a check, or checked with this request. */
export type EnvoyHandling =
  | { kind: "rejected"; status: number }
  | { kind: "unchecked"; route: string; path: string }
  | { kind: "checked"; route: string; path: string; check: OfficialCheckInput };

const EXT_AUTHZ = "envoy.filters.http.ext_authz";
const MODELLED_HCM = new Set([
  "@type",
  "stat_prefix",
  "normalize_path",
  "merge_slashes",
  "path_with_escaped_slashes_action",
  "use_remote_address",
  "route_config",
  "http_filters",
]);

function obj(x: unknown, what: string): Tree {
  if (typeof x !== "object" || x === null || Array.isArray(x)) throw new Error(`${what} is not an object`);
  return x as Tree;
}

/** The HTTP connection manager of the bootstrap's only listener. */
export function connectionManager(bootstrap: unknown): Tree {
  const listeners = obj(obj(bootstrap, "bootstrap").static_resources, "static_resources")
    .listeners as unknown[];
  if (listeners.length !== 1) throw new Error("the model covers one listener");
  const chains = obj(listeners[0], "listener").filter_chains as unknown[];
  const filters = obj(chains[0], "filter chain").filters as unknown[];
  const hcm = obj(obj(filters[0], "filter").typed_config, "typed_config");
  for (const key of Object.keys(hcm))
    if (!MODELLED_HCM.has(key)) throw new Error(`HttpConnectionManager.${key} is not modelled`);
  return hcm;
}

/** Envoy's path handling: escaped slashes, RFC 3986 dot segments (normalize_path) and merge_slashes. */
function handlePath(hcm: Tree, raw: string): { path: string } | { status: number } {
  const q = raw.indexOf("?");
  let path = q < 0 ? raw : raw.slice(0, q);
  const query = q < 0 ? "" : raw.slice(q);
  const action = hcm.path_with_escaped_slashes_action ?? "IMPLEMENTATION_SPECIFIC_DEFAULT";
  if (/%(2f|5c)/i.test(path)) {
    if (action === "REJECT_REQUEST") return { status: 400 };
    if (action !== "KEEP_UNCHANGED")
      throw new Error(`path_with_escaped_slashes_action ${action} is not modelled`);
  }
  if (hcm.normalize_path === true) {
    const out: string[] = [];
    for (const segment of path.split("/").slice(1)) {
      const plain = segment.replace(/%2e/gi, ".");
      if (plain === ".") continue;
      if (plain === "..") out.pop();
      else out.push(segment);
    }
    const last = path.split("/").at(-1)!.replace(/%2e/gi, ".");
    path = `/${out.join("/")}${(last === "." || last === "..") && out.length > 0 ? "/" : ""}`;
  }
  if (hcm.merge_slashes === true) path = path.replace(/\/{2,}/g, "/");
  return { path: path + query };
}

function matches(match: Tree, path: string): boolean {
  const keys = Object.keys(match);
  const bare = path.split("?")[0]!;
  if (keys.length !== 1) throw new Error(`route match ${JSON.stringify(match)} is not modelled`);
  if ("path" in match) return bare === match.path;
  if ("prefix" in match) return bare.startsWith(match.prefix as string);
  throw new Error(`route match ${keys[0]} is not modelled`);
}

/** What Envoy does with `request` under `bootstrap`. */
export function envoyHandles(bootstrap: unknown, request: ClientRequest): EnvoyHandling {
  const hcm = connectionManager(bootstrap);
  const handled = handlePath(hcm, request.path);
  if ("status" in handled) return { kind: "rejected", status: handled.status };
  const host = obj(hcm.route_config, "route_config").virtual_hosts as Tree[];
  if (host.length !== 1 || JSON.stringify(host[0]!.domains) !== '["*"]')
    throw new Error("the model covers one virtual host for every domain");
  const routes = host[0]!.routes as Tree[];
  const index = routes.findIndex((r) => matches(obj(r.match, "match"), handled.path));
  if (index < 0) return { kind: "rejected", status: 404 };
  const route = routes[index]!;
  const name = JSON.stringify(route.match);
  const perRoute = (route.typed_per_filter_config as Tree | undefined)?.[EXT_AUTHZ] as Tree | undefined;
  if (perRoute?.disabled === true) return { kind: "unchecked", route: name, path: handled.path };
  const filter = (hcm.http_filters as Tree[]).find((f) => f.name === EXT_AUTHZ);
  const filterConfig = obj(filter?.typed_config, "ext_authz typed_config");
  const settings = (perRoute?.check_settings ?? {}) as Tree;
  const body = (settings.with_request_body ?? filterConfig.with_request_body) as Tree | undefined;
  const raw = filterConfig.encode_raw_headers === true;
  // The headers the ext_authz filter sends: the request's pseudo-headers, then the client's, lower-case.
  const headers: [string, string][] = [
    [":authority", request.authority ?? "api.example.com"],
    [":path", handled.path],
    [":method", request.method],
    [":scheme", "https"],
    ...Object.entries(request.headers ?? {}).map(([k, v]): [string, string] => [k.toLowerCase(), v]),
    ["x-forwarded-proto", "https"],
    ["x-request-id", "8c3f2a5e-7d41-4c0b-9d7e-3b1f0a6c2e94"],
  ];
  const check: OfficialCheckInput = {
    method: request.method,
    path: handled.path,
    contextExtensions: (settings.context_extensions ?? {}) as Record<string, string>,
  };
  if (raw) check.headerMap = headers.map(([key, value]) => ({ key, raw_value: Buffer.from(value) }));
  else check.headers = Object.fromEntries(headers);
  if (body && request.body !== undefined) {
    const bytes = Buffer.from(request.body);
    if (bytes.length > Number(body.max_request_bytes) && body.allow_partial_message !== true)
      return { kind: "rejected", status: 413 };
    if (body.pack_as_bytes === true) check.rawBody = bytes;
    else check.body = request.body;
  }
  return { kind: "checked", route: name, path: handled.path, check };
}
