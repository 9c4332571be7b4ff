import { normalizePath } from "./path-normalize.js";
import type { RouteRule } from "./types.js";

/** A route rule compiled for matching. */
interface CompiledRoute {
  rule: RouteRule;
  method: string;
  pattern: RegExp;
}

// One cache per case mode: a key space's rules array is shared by every Check until the key space is reloaded.
const compiledExact = new WeakMap<readonly RouteRule[], CompiledRoute[]>();
const compiledFolded = new WeakMap<readonly RouteRule[], CompiledRoute[]>();

const NEVER = /(?!)/;

function compile(rulePath: string, caseInsensitive: boolean): RegExp {
  // Rules are compared in the form requests are normalised to; a rule no request can take never matches.
  const path = normalizePath(rulePath);
  if (typeof path !== "string" || path === "") return NEVER;
  let source = "";
  for (const segment of path.split("/").slice(1)) {
    // `**` swallows the rest of the path, including nothing at all.
    if (segment === "**") source += "(?:/.*)?";
    else source += `/${segment.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*")}`;
  }
  return new RegExp(`^${source}/?$`, caseInsensitive ? "i" : "");
}

/**
 * Returns the first rule whose method and path pattern match. `path` must come from normalizePath (no query,
 * no dot segments, no repeated slashes); paths compare case-sensitively unless `caseInsensitive`.
 */
export function matchRoute(
  rules: readonly RouteRule[],
  method: string,
  path: string,
  caseInsensitive = false,
): RouteRule | undefined {
  if (rules.length === 0) return undefined;
  const cache = caseInsensitive ? compiledFolded : compiledExact;
  let list = cache.get(rules);
  if (!list) {
    list = rules.map((rule) => ({
      rule,
      method: rule.method.toUpperCase(),
      pattern: compile(rule.path, caseInsensitive),
    }));
    cache.set(rules, list);
  }
  const upper = method.toUpperCase();
  for (const route of list) {
    if ((route.method === "*" || route.method === upper) && route.pattern.test(path)) return route.rule;
  }
  return undefined;
}
