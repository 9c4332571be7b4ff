import type { CredentialSource } from "../../domain/types.js";
import { type ApprovalTicket, denialFingerprint, type Verdict } from "../../domain/verdict.js";
import type { FixedCheckResponse } from "./wire/check-response-parts.js";

/** Encoded answers kept when the Check service is not told otherwise. */
export const DEFAULT_RESPONSE_CACHE_SIZE = 4096;

/**
 * Everything the fixed bytes of a verdict's answer are built from; the cache key. The rate-limit figures are not in
 * it (they are added per request), and neither are the decision options, which are fixed per cache: each Check
 * handler has its own.
 */
type ResponseKey =
  | {
      kind: "allow";
      /** The identity's fields that reach the answer: headers upstream and dynamic metadata. */
      keyId: string;
      keySpaceId: string;
      workspaceId: string;
      ownerType: string;
      ownerMemberId: string;
      actingMemberId: string;
      scopes: readonly string[];
      stripHeaders: readonly string[];
      warnings: readonly string[];
    }
  | {
      kind: "deny";
      reason: string;
      message: string;
      /** Where the key space reads keys: a 401 challenges for these. */
      credentialSources: readonly CredentialSource[] | undefined;
      approval: ApprovalTicket | undefined;
    }
  | { kind: "error" };

/** The fixed part of every answer, kept by the key of the verdict it answers. */
export interface ResponseCache {
  /**
   * The fixed part kept for a verdict with the same key as `verdict`, or the one `build` makes now, which is kept
   * (the least recently used one making room once the cache is full).
   */
  fixedPart(verdict: Verdict, build: (verdict: Verdict) => FixedCheckResponse): FixedCheckResponse;
  /** Number of kept answers. */
  readonly size: number;
  /** Answers served from the cache, and built afresh, since creation. */
  readonly hits: number;
  readonly misses: number;
}

interface Entry {
  key: ResponseKey;
  fixed: FixedCheckResponse;
  /** The miss count when the entry was last moved to the young end of the map. */
  stamp: number;
}

const ERROR_SLOT = "error";

/**
 * Creates the cache of a Check handler, holding at most `maxEntries` answers (0 keeps none).
 *
 * Entries are found by the verdict's fingerprint, which the domain computes once where it builds an identity or a
 * reused denial, so a hit costs one map lookup on a string whose hash is already known. The fingerprint only picks
 * the slot: an entry is used when its whole key equals the verdict's, field by field, so a stale or colliding
 * fingerprint costs a miss, never another identity's or denial's bytes. The headers to strip and the warnings, which
 * the domain builds per request, are compared the same way.
 */
export function createResponseCache(maxEntries: number = DEFAULT_RESPONSE_CACHE_SIZE): ResponseCache {
  const max = Number.isFinite(maxEntries) ? Math.max(0, Math.floor(maxEntries)) : DEFAULT_RESPONSE_CACHE_SIZE;
  // A Map iterates in insertion order, so its first entry is the least recently moved and goes first. Moving an
  // entry on every hit would cost two more map operations per Check; moving it on a hit once half the bound of
  // entries have been added since keeps any entry hit at least that often from reaching the front.
  const refreshAge = max >> 1;
  const entries = new Map<string, Entry>();
  let hits = 0;
  let misses = 0;
  return {
    fixedPart(verdict, build) {
      const slot = slotOf(verdict);
      const entry = entries.get(slot);
      if (entry !== undefined && sameKey(entry.key, verdict)) {
        hits++;
        if (misses - entry.stamp > refreshAge) {
          entries.delete(slot);
          entries.set(slot, entry);
          entry.stamp = misses;
        }
        return entry.fixed;
      }
      misses++;
      const fixed = build(verdict);
      // An approval ticket is new for every queued request, so its answer is never asked for again.
      if (max === 0 || (verdict.kind === "deny" && verdict.approval)) return fixed;
      if (entry !== undefined) entries.delete(slot);
      else if (entries.size >= max) entries.delete(entries.keys().next().value as string);
      entries.set(slot, { key: keyOf(verdict), fixed, stamp: misses });
      return fixed;
    },
    get size() {
      return entries.size;
    },
    get hits() {
      return hits;
    },
    get misses() {
      return misses;
    },
  };
}

function slotOf(verdict: Verdict): string {
  if (verdict.kind === "allow") return verdict.identity.fingerprint;
  if (verdict.kind === "deny") return verdict.fingerprint ?? denialFingerprint(verdict);
  return ERROR_SLOT;
}

/** The key of `verdict`, copied, so a caller changing its verdict later cannot change what an entry claims. */
function keyOf(verdict: Verdict): ResponseKey {
  if (verdict.kind === "allow") {
    const id = verdict.identity;
    return {
      kind: "allow",
      keyId: id.keyId,
      keySpaceId: id.keySpaceId,
      workspaceId: id.workspaceId,
      ownerType: id.ownerType,
      ownerMemberId: id.ownerMemberId,
      actingMemberId: id.actingMemberId,
      scopes: [...id.scopes],
      stripHeaders: [...verdict.stripHeaders],
      warnings: [...verdict.warnings],
    };
  }
  if (verdict.kind === "deny") {
    const { approval, credentialSources } = verdict;
    return {
      kind: "deny",
      reason: verdict.reason,
      message: verdict.message,
      credentialSources: credentialSources?.map((s) => ({ ...s })),
      approval: approval && { ...approval },
    };
  }
  return { kind: "error" };
}

function sameKey(key: ResponseKey, verdict: Verdict): boolean {
  if (verdict.kind === "allow") {
    if (key.kind !== "allow") return false;
    const id = verdict.identity;
    return (
      key.keyId === id.keyId &&
      key.keySpaceId === id.keySpaceId &&
      key.workspaceId === id.workspaceId &&
      key.ownerType === id.ownerType &&
      key.ownerMemberId === id.ownerMemberId &&
      key.actingMemberId === id.actingMemberId &&
      sameStrings(key.scopes, id.scopes) &&
      sameStrings(key.stripHeaders, verdict.stripHeaders) &&
      sameStrings(key.warnings, verdict.warnings)
    );
  }
  if (verdict.kind === "deny") {
    if (key.kind !== "deny") return false;
    return (
      key.reason === verdict.reason &&
      key.message === verdict.message &&
      sameSources(key.credentialSources, verdict.credentialSources) &&
      key.approval?.id === verdict.approval?.id &&
      key.approval?.status === verdict.approval?.status
    );
  }
  // An error's answer names none of its details (they stay in the logs), so every error shares one.
  return key.kind === "error";
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameSources(
  a: readonly CredentialSource[] | undefined,
  b: readonly CredentialSource[] | undefined,
): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.kind !== y.kind || (x.kind === "header" && x.header !== (y as typeof x).header)) return false;
  }
  return true;
}
