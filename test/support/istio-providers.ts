/**
 * Istio's ext_authz extension providers, for tests: field tables of Istio's mesh/v1alpha1/config.proto
 * (ExtensionProvider.envoy_ext_authz_grpc / envoy_ext_authz_http and EnvoyExternalAuthorizationRequestBody, camel-cased
 * as Istio reads them), header patterns as Istio matches them, and the check request Envoy's HTTP ext_authz sends for
 * an HTTP provider.
 */

type Tree = Record<string, unknown>;

type Kind = "string" | "port" | "bool" | "duration" | "strings" | "headerMap" | "status" | Fields;
interface Fields {
  [field: string]: Kind;
}
const REQUEST_BODY: Fields = { maxRequestBytes: "port", allowPartialMessage: "bool", packAsBytes: "bool" };
// EnvoyExternalAuthorizationGrpcProvider and ...HttpProvider, camel-cased as Istio's JSON reads them.
const GRPC: Fields = {
  service: "string",
  port: "port",
  timeout: "duration",
  failOpen: "bool",
  clearRouteCache: "bool",
  statusOnError: "status",
  includeRequestBodyInCheck: REQUEST_BODY,
};
const HTTP: Fields = {
  service: "string",
  port: "port",
  timeout: "duration",
  pathPrefix: "string",
  failOpen: "bool",
  clearRouteCache: "bool",
  statusOnError: "status",
  includeRequestHeadersInCheck: "strings",
  includeAdditionalHeadersInCheck: "headerMap",
  includeRequestBodyInCheck: REQUEST_BODY,
  headersToUpstreamOnAllow: "strings",
  headersToDownstreamOnDeny: "strings",
  headersToDownstreamOnAllow: "strings",
};

/** What is wrong with `value` as `kind`, by path. */
function fieldProblems(kind: Kind, value: unknown, at: string): string[] {
  const bad = (what: string) => [`${at}: expected ${what}, got ${JSON.stringify(value)}`];
  switch (kind) {
    case "string":
      return typeof value === "string" && value !== "" ? [] : bad("a non-empty string");
    case "port":
      return Number.isInteger(value) && (value as number) > 0 && (value as number) < 2 ** 32
        ? []
        : bad("a uint32");
    case "bool":
      return typeof value === "boolean" ? [] : bad("true or false");
    case "duration":
      return typeof value === "string" && /^\d+(\.\d{1,9})?s$/.test(value)
        ? []
        : bad('a duration such as "0.25s"');
    case "status":
      return typeof value === "string" && /^[1-5]\d\d$/.test(value)
        ? []
        : bad('an HTTP status as a string ("503")');
    case "strings":
      return Array.isArray(value) &&
        value.every((x) => typeof x === "string" && /^[*]?[a-z0-9-]+[*]?$/.test(x))
        ? []
        : bad("a list of lower-case header names (exact, prefix* or *suffix)");
    case "headerMap":
      return typeof value === "object" &&
        value !== null &&
        !Array.isArray(value) &&
        Object.entries(value).every(([k, v]) => /^[a-z0-9-]+$/.test(k) && typeof v === "string")
        ? []
        : bad("a map of lower-case header names to values");
    default: {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return bad("an object");
      return Object.entries(value).flatMap(([k, v]) =>
        k in kind ? fieldProblems(kind[k]!, v, `${at}.${k}`) : [`${at}.${k}: unknown field`],
      );
    }
  }
}

/** Everything wrong with the providers list: unknown fields, wrong kinds, duplicate names, no or two provider kinds. */
export function providerProblems(list: unknown): string[] {
  if (!Array.isArray(list)) return ["extensionProviders: expected a list"];
  const names = new Set<string>();
  return list.flatMap((p: Tree, i) => {
    const at = `extensionProviders[${i}]`;
    const problems: string[] = [];
    if (typeof p.name !== "string" || !/^[a-z0-9-]+$/.test(p.name)) problems.push(`${at}.name: required`);
    else if (names.has(p.name)) problems.push(`${at}.name: ${p.name} twice`);
    else names.add(p.name);
    const kinds = Object.keys(p).filter((k) => k !== "name");
    if (kinds.length !== 1)
      problems.push(`${at}: exactly one provider kind, got ${kinds.join(", ") || "none"}`);
    for (const k of kinds) {
      if (k === "envoyExtAuthzGrpc") problems.push(...fieldProblems(GRPC, p[k], `${at}.${k}`));
      else if (k === "envoyExtAuthzHttp") problems.push(...fieldProblems(HTTP, p[k], `${at}.${k}`));
      else problems.push(`${at}.${k}: not an ext_authz provider`);
    }
    return problems;
  });
}

/** Whether Istio's header pattern (exact, prefix* or *suffix, lower case) covers `name`. */
export function covers(pattern: string, name: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith("*")) return name.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith("*")) return name.endsWith(pattern.slice(1));
  return pattern === name;
}

/** The check request Envoy's HTTP ext_authz sends keymesh for `request` under an Istio HTTP provider. */
export function httpCheck(
  p: Tree,
  keymesh: string,
  request: { method: string; path: string; headers: Record<string, string>; body?: string },
) {
  const headers: Record<string, string> = {};
  const forwarded = ["authorization", ...(p.includeRequestHeadersInCheck as string[])];
  for (const [name, value] of Object.entries(request.headers))
    if (forwarded.some((pattern) => covers(pattern, name.toLowerCase()))) headers[name.toLowerCase()] = value;
  // Istio: "client request of the same key ... will be overridden".
  Object.assign(headers, p.includeAdditionalHeadersInCheck as Record<string, string>);
  const body = p.includeRequestBodyInCheck && request.body !== undefined ? request.body : undefined;
  return fetch(`${keymesh}${p.pathPrefix}${request.path}`, { method: request.method, headers, body });
}
