import { settleWithin } from "../runtime/deadline.js";
import { type Admission, type AdmissionOptions, admitWithin, approveThenAdmit } from "./admission.js";
import type { Authorizer, CheckRequest } from "./check-request.js";
import { type Presented, readCredential } from "./credentials.js";
import { type Digester, digestsEqual } from "./digest.js";
import { identityOf } from "./identity.js";
import type { KeyEntry } from "./key-entry.js";
import { parsePresentedKey } from "./key-format.js";
import { normalizePath, type PathProblem } from "./path-normalize.js";
import type { EntryCache, KeyLookup, KeySpaceDirectory } from "./ports.js";
import { createPresentedMemo, type ParsedKey } from "./presented-memo.js";
import { matchRoute } from "./routes.js";
import { decideScopes } from "./scopes.js";
import { couldNameKeySpace } from "./stored-text.js";
import type { KeySpace } from "./types.js";
import { type DenyReason, errorVerdict, reusedDenial, type Verdict } from "./verdict.js";

/** Everything the authorizer depends on, each behind a small interface (see ports.ts). */
export interface AuthorizerOptions extends AdmissionOptions {
  keySpaces: KeySpaceDirectory;
  lookup: KeyLookup;
  cache: EntryCache;
  digest: Digester;
  /** Key space used when a request names none. */
  defaultKeySpace: string;
  /**
   * The id of a key space this authorizer never decides for, however a request names it, answering as for an
   * unknown key: the data plane's authorizer must not accept root keys, whatever key space a request (or a
   * misconfigured route) names.
   */
  excludedKeySpaceId?: string;
  /** A decision is made within this time even when a backend hangs. */
  deadlineMs: number;
  now?: () => number;
}

const DAY_MS = 86_400_000;

function deny(reason: DenyReason, message: string, space?: KeySpace): Verdict {
  const verdict: Extract<Verdict, { kind: "deny" }> = { kind: "deny", reason, message, limits: [] };
  if (space) verdict.credentialSources = space.credentialSources;
  return verdict;
}

// The denials that repeat on every bad request, built once (per key space, whose credential sources a 401's
// challenge names).
const fixedDeny = (reason: DenyReason, message: string, space?: KeySpace): Verdict =>
  reusedDenial(reason, message, space?.credentialSources);
const NOT_FOUND = fixedDeny("not_found", "the API key is not valid");
const NO_ROUTE = fixedDeny("no_route", "no route rule of the key space matches the request");
// One denial per kind of bad path; the problems are a handful of constants, so this stays small.
const INVALID_PATHS = new Map<PathProblem, Verdict>();

function invalidPath(problem: PathProblem): Verdict {
  let verdict = INVALID_PATHS.get(problem);
  if (!verdict) {
    verdict = fixedDeny("invalid_path", problem.message);
    INVALID_PATHS.set(problem, verdict);
  }
  return verdict;
}

interface SpaceDenials {
  notFound: Verdict;
  malformed: Verdict;
  missing: Verdict;
  revoked: Verdict;
}

// Keyed by the key space object, so a reloaded key space (new sources) gets new denials and the old ones go with it.
const spaceDenials = new WeakMap<KeySpace, SpaceDenials>();

function denialsOf(space: KeySpace): SpaceDenials {
  let denials = spaceDenials.get(space);
  if (!denials) {
    denials = {
      notFound: fixedDeny("not_found", "the API key is not valid", space),
      malformed: fixedDeny("malformed", "the API key is malformed", space),
      missing: fixedDeny("missing", "an API key is required", space),
      revoked: fixedDeny("revoked", "the API key has been revoked", space),
    };
    spaceDenials.set(space, denials);
  }
  return denials;
}

function present(space: KeySpace, req: CheckRequest): Presented {
  if (req.presentedKey === undefined) return readCredential(space.credentialSources, req.headers);
  return req.presentedKey ? { kind: "found", value: req.presentedKey, header: "" } : { kind: "missing" };
}

function resolveSpace(
  o: AuthorizerOptions,
  req: CheckRequest,
): KeySpace | undefined | "ambiguous" | Promise<KeySpace | undefined | "ambiguous"> {
  // Not async: the named case, nearly every Check, gets a cached space back directly, with no promise or await.
  const named = req.keySpace || o.defaultKeySpace;
  if (!named) return inferSpace(o, req);
  // A reference no key space can have (a NUL, or too long) is unknown without asking the store.
  if (!couldNameKeySpace(named)) return undefined;
  const space = o.keySpaces.get(named);
  if (o.excludedKeySpaceId === undefined) return space;
  return space instanceof Promise ? space.then((s) => unlessExcluded(o, s)) : unlessExcluded(o, space);
}

function unlessExcluded(o: AuthorizerOptions, space: KeySpace | undefined): KeySpace | undefined {
  return space?.id === o.excludedKeySpaceId ? undefined : space;
}

/** No key space named: the one whose sources and layout accept the presented key. */
async function inferSpace(
  o: AuthorizerOptions,
  req: CheckRequest,
): Promise<KeySpace | undefined | "ambiguous"> {
  const matches: KeySpace[] = [];
  const spaces = await o.keySpaces.all();
  for (const space of spaces) {
    const presented = present(space, req);
    if (presented.kind === "found" && parsePresentedKey(space.format, presented.value)) matches.push(space);
  }
  if (matches.length > 1) return "ambiguous";
  return matches[0] ?? spaces[0];
}

function judgeEntry(entry: KeyEntry, space: KeySpace, now: number, warnings: string[]): Verdict | undefined {
  const { key, workspace, owner } = entry;
  if (key.revokedAt) return denialsOf(space).revoked;
  if (key.expiresAt && key.expiresAt.getTime() <= now)
    return deny("expired", "the API key has expired", space);
  if (key.ownerType === "user" && owner && owner.status !== "active") {
    return deny("disabled", "the API key's owner has closed their account", space);
  }
  if (workspace.status !== "active") return deny("workspace_disabled", "the workspace is disabled");
  if (!workspace.apiAccess)
    return deny("api_access_disabled", "API access is not included in the workspace's plan");
  const maxAgeDays = workspace.maxKeyAgeDays || space.maxKeyAgeDays;
  if (maxAgeDays > 0) {
    const deadline = key.createdAt.getTime() + maxAgeDays * DAY_MS;
    if (now >= deadline) {
      return deny(
        "key_too_old",
        `the API key is older than the ${maxAgeDays}-day rotation policy; rotate it`,
        space,
      );
    }
    const warnDays = space.keyAgeWarningDays || 7;
    if (deadline - now <= warnDays * DAY_MS) {
      const days = Math.ceil((deadline - now) / DAY_MS);
      warnings.push(
        `key must be rotated within ${days} day${days === 1 ? "" : "s"} (${maxAgeDays}-day policy)`,
      );
    }
  }
  return undefined;
}

type Inflight = Map<string, Promise<KeyEntry | undefined>>;

// Concurrent misses for one digest share a single lookup, so a burst on a cold key costs one query, not hundreds.
function lookupOnce(
  o: AuthorizerOptions,
  inflight: Inflight,
  hex: string,
  digest: Buffer,
): Promise<KeyEntry | undefined> {
  const running = inflight.get(hex);
  if (running) return running;
  // A change committed while the query runs may not be in what it reads, so such a result is not cached.
  const readAt = o.cache.generation;
  const lookup = o.lookup
    .findByDigest(digest)
    .then((entry) => {
      if (entry) o.cache.set(hex, entry, readAt);
      else o.cache.setMissing(hex, readAt);
      return entry;
    })
    .finally(() => inflight.delete(hex));
  inflight.set(hex, lookup);
  return lookup;
}

/** A verdict, or the promise of one when a backend (key lookup, limiter, approvals) had to be asked. */
type Decided = Verdict | Promise<Verdict>;

type ParseKey = (format: KeySpace["format"], presented: string) => ParsedKey;

// Not async anywhere a backend is not asked: a bad, unknown, revoked or unlimited key is decided synchronously,
// with no promise, microtask or deadline.
function decide(o: AuthorizerOptions, inflight: Inflight, parsed: ParseKey, req: CheckRequest): Decided {
  const resolving = resolveSpace(o, req);
  return resolving instanceof Promise
    ? resolving.then((space) => decideIn(o, inflight, parsed, req, space))
    : decideIn(o, inflight, parsed, req, resolving);
}

function decideIn(
  o: AuthorizerOptions,
  inflight: Inflight,
  parsed: ParseKey,
  req: CheckRequest,
  space: KeySpace | undefined | "ambiguous",
): Decided {
  if (space === "ambiguous") return deny("malformed", "the key matches more than one key space; name one");
  if (!space) return NOT_FOUND;
  // Only route rules read the path. A path they could not match without guessing is refused before the key is
  // looked up, as a proxy that normalises paths would refuse it before asking.
  const path = space.routes.length === 0 ? "" : normalizePath(req.path);
  if (typeof path !== "string") return invalidPath(path);
  const denials = denialsOf(space);
  const presented = present(space, req);
  if (presented.kind === "missing") return denials.missing;
  if (presented.kind === "malformed") return denials.malformed;
  const key = parsed(space.format, presented.value);
  if (key.canonical === undefined) return denials.malformed;

  const { digest, hex } = key;
  const cached = o.cache.get(hex);
  if (cached.kind === "miss") return denials.notFound;
  if (cached.kind === "hit") {
    if (cached.refresh && !inflight.has(hex)) {
      // Answered from the entry meanwhile; a failed re-read leaves it until its TTL, when a Check surfaces the error.
      lookupOnce(o, inflight, hex, digest).catch(() => {});
    }
    return judge(o, req, space, presented, digest, path, cached.entry);
  }
  return lookupOnce(o, inflight, hex, digest).then((entry) =>
    judge(o, req, space, presented, digest, path, entry),
  );
}

function judge(
  o: AuthorizerOptions,
  req: CheckRequest,
  space: KeySpace,
  presented: Extract<Presented, { kind: "found" }>,
  digest: Buffer,
  path: string,
  entry: KeyEntry | undefined,
): Decided {
  if (!entry) return denialsOf(space).notFound;
  // A key from another key space answers exactly like an unknown one: no hint that it exists elsewhere.
  if (!digestsEqual(entry.digest, digest) || entry.key.keySpaceId !== space.id) {
    return denialsOf(space).notFound;
  }

  const now = (o.now ?? Date.now)();
  const warnings: string[] = [];
  const refused = judgeEntry(entry, space, now, warnings);
  if (refused) return refused;

  const route = matchRoute(space.routes, req.method, path, space.caseInsensitiveRoutes);
  // Explicitly demanded scopes replace the rules, so only a request the rules alone decide can be unmatched.
  if (!route && space.routes.length > 0 && req.scopes.length === 0 && space.unmatchedRoutes !== "allow")
    return NO_ROUTE;
  const required = req.scopes.length > 0 ? req.scopes : (route?.scopes ?? space.defaultScopes);
  // The identity's scopes: the key's, in one frozen array per cached entry, which decideScopes can keep a set of.
  const identity = identityOf(entry);
  const scopes = decideScopes(space.scopeModel, identity.scopes, required);
  if (scopes.kind === "denied")
    return deny("insufficient_scope", `the API key lacks the scope ${scopes.scope}`);
  const admit: Admission = {
    entry,
    space,
    cost: req.cost || route?.cost || 1,
    warnings,
    allow: {
      kind: "allow",
      identity,
      limits: [],
      warnings,
      stripHeaders: space.forwardCredential || !presented.header ? [] : [presented.header],
    },
  };
  if (scopes.kind === "approval") return approveThenAdmit(o, req, admit, scopes.scope);
  return admitWithin(o, admit);
}

/** Creates the authorizer: it answers every request with a verdict within the deadline, and never throws. */
export function createAuthorizer(options: AuthorizerOptions): Authorizer {
  const inflight: Inflight = new Map();
  const parsed = createPresentedMemo(options.digest);
  const lateMessage = `no decision within ${options.deadlineMs} ms`;
  const tooLate = (): Verdict => ({ kind: "error", message: lateMessage });
  return {
    deadlineMs: options.deadlineMs,
    check(request) {
      let decided: Decided;
      try {
        decided = decide(options, inflight, parsed, request);
      } catch (error) {
        return errorVerdict(error);
      }
      return decided instanceof Promise
        ? settleWithin(decided, options.deadlineMs, tooLate, errorVerdict)
        : decided;
    },
  };
}
