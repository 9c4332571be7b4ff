import type { RouteRule } from "./types.js";

/** A route rule compiled for matching. */
interface CompiledRoute {
  rule: RouteRule;
  method: string;
  pattern: RegExp;
}

const compiled = new WeakMap<readonly RouteRule[], CompiledRoute[]>();

function compile(path: string): RegExp {
  let source = "";
  for (const segment of path.split("/").slice(1)) {
    // `**` swallows the rest of the path, including nothing at all.
    if (segment === "**") source += "(?:/.*)?";
    else source += `/${segment.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*")}`;
  }
  return new RegExp(`^${source}/?$`);
}

/** Returns the first rule whose method and path pattern match; the query string is ignored. */
export function matchRoute(
  rules: readonly RouteRule[],
  method: string,
  rawPath: string,
): RouteRule | undefined {
  if (rules.length === 0) return undefined;
  let list = compiled.get(rules);
  if (!list) {
    list = rules.map((rule) => ({ rule, method: rule.method.toUpperCase(), pattern: compile(rule.path) }));
    compiled.set(rules, list);
  }
  const q = rawPath.search(/[?#]/);
  const path = q >= 0 ? rawPath.slice(0, q) : rawPath;
  const upper = method.toUpperCase();
  for (const route of list) {
    if ((route.method === "*" || route.method === upper) && route.pattern.test(path)) return route.rule;
  }
  return undefined;
}
