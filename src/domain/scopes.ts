import type { ScopeLadder, ScopeModel } from "./types.js";

/** Whether held scopes cover a requirement outright, only through a human approval, or not at all. */
export type ScopeDecision =
  | { kind: "granted" }
  | { kind: "approval"; scope: string }
  | { kind: "denied"; scope: string };

const SCOPE_SYNTAX = /^[A-Za-z0-9:._*\-/]{1,128}$/;

function splitResource(scope: string): [string, string] | undefined {
  const at = scope.lastIndexOf(":");
  return at > 0 ? [scope.slice(0, at), scope.slice(at + 1)] : undefined;
}

function ladderFor(model: ScopeModel, resource: string, level: string): ScopeLadder | undefined {
  // A resource named by a ladder lives only on that ladder; the catch-all ladder serves the rest.
  const named = model.ladders.filter((l) => l.resources.includes(resource));
  const candidates = named.length > 0 ? named : model.ladders.filter((l) => l.resources.length === 0);
  return candidates.find((l) => l.levels.includes(level));
}

function decideOne(model: ScopeModel, held: ReadonlySet<string>, required: string): ScopeDecision["kind"] {
  if (held.has(required)) return "granted";
  if (model.fullAccessScope && held.has(model.fullAccessScope)) return "granted";
  for (const chain of model.hierarchies) {
    const need = chain.indexOf(required);
    if (need >= 0 && chain.some((scope, rank) => rank >= need && held.has(scope))) return "granted";
  }
  const parts = splitResource(required);
  const ladder = parts && ladderFor(model, parts[0], parts[1]);
  if (!parts || !ladder) return "denied";
  const [resource, level] = parts;
  const need = ladder.levels.indexOf(level);
  let approval = false;
  for (const scope of held) {
    const h = splitResource(scope);
    if (!h || h[0] !== resource) continue;
    const rank = ladder.levels.indexOf(h[1]);
    if (rank < 0) continue;
    if (rank >= need) return "granted";
    // An approval level (`write-approval`) reaches its target level only through a human.
    const target = ladder.approvalOf[h[1]];
    if (target !== undefined && ladder.levels.indexOf(target) >= need) approval = true;
  }
  return approval ? "approval" : "denied";
}

/** Decides whether `held` scopes cover every `required` scope under the key space's scope model. */
export function decideScopes(
  model: ScopeModel,
  held: readonly string[],
  required: readonly string[],
): ScopeDecision {
  if (required.length === 0) return GRANTED;
  const set = heldSet(held);
  let pending: string | undefined;
  for (const scope of required) {
    const kind = decideOne(model, set, scope);
    if (kind === "denied") return { kind: "denied", scope };
    if (kind === "approval") pending ??= scope;
  }
  return pending === undefined ? GRANTED : { kind: "approval", scope: pending };
}

const GRANTED: ScopeDecision = Object.freeze({ kind: "granted" });

// A key's scope list is one frozen array per cached entry (see identityOf), so its set is built once, not per Check.
const heldSets = new WeakMap<readonly string[], ReadonlySet<string>>();

function heldSet(held: readonly string[]): ReadonlySet<string> {
  if (!Object.isFrozen(held)) return new Set(held);
  let set = heldSets.get(held);
  if (!set) {
    set = new Set(held);
    heldSets.set(held, set);
  }
  return set;
}

function modelIsOpen(model: ScopeModel): boolean {
  return (
    model.scopes.length === 0 &&
    model.hierarchies.length === 0 &&
    model.ladders.length === 0 &&
    model.fullAccessScope === ""
  );
}

/** Returns the first scope that the key space's vocabulary does not know, or undefined when all are valid. */
export function unknownScope(model: ScopeModel, scopes: readonly string[]): string | undefined {
  for (const scope of scopes) {
    if (!SCOPE_SYNTAX.test(scope)) return scope;
    if (modelIsOpen(model)) continue;
    if (model.scopes.includes(scope) || scope === model.fullAccessScope) continue;
    if (model.hierarchies.some((chain) => chain.includes(scope))) continue;
    const parts = splitResource(scope);
    if (parts && ladderFor(model, parts[0], parts[1])) continue;
    return scope;
  }
  return undefined;
}
