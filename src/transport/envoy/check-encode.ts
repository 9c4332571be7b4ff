import * as grpc from "@grpc/grpc-js";
import type { CredentialSource } from "../../domain/types.js";
import type { Identity, Verdict } from "../../domain/verdict.js";
import {
  type DecisionOptions,
  RATE_LIMIT_HEADER_NAMES,
  rateLimitFigures,
  rateLimitHeaders,
  UNAVAILABLE_MESSAGE,
  verdictToDecision,
} from "../decision.js";
import {
  completeCheckResponse,
  completeCheckResponseWithIntegers,
  createCheckResponseEncoder,
  type FixedCheckResponse,
  prepareCheckResponse,
  sameStrings,
} from "./wire/check-response.js";
import { allWriteableIntegers } from "./wire/header-option-wire.js";

/** The rate-limit header names as bytes, encoded once. */
const RATE_LIMIT_NAME_BYTES: readonly Uint8Array[] = RATE_LIMIT_HEADER_NAMES.map((name) => Buffer.from(name));

/** Distinct denial answers kept encoded; there are a handful of reasons, and messages vary only by scope name. */
const MAX_CACHED_DENIALS = 256;

/** What one Check call produces: CheckResponse bytes, or a gRPC error under failureMode "error". */
export type CheckOutcome =
  | { kind: "response"; bytes: Uint8Array }
  | { kind: "error"; code: grpc.status; details: string };

type AllowVerdict = Extract<Verdict, { kind: "allow" }>;

/**
 * The encode step of Check: a verdict to the outcome sent to Envoy. Every reuse of encoded bytes for a Check answer
 * is here: whole denials by reason, message and the credential sources a 401 challenges for, the fixed part of an allow per identity, and the encoder's LRU of
 * whole responses for everything else.
 */
export function createCheckEncoder(
  decisionOptions: DecisionOptions,
  responseCacheSize: number | undefined,
): (verdict: Verdict) => CheckOutcome {
  const encoder = createCheckResponseEncoder({ maxEntries: responseCacheSize });
  const unavailable: CheckOutcome = {
    kind: "error",
    code: grpc.status.UNAVAILABLE,
    details: UNAVAILABLE_MESSAGE,
  };

  // Denials without limits or an approval ticket depend only on reason and message, so their bytes are kept whole:
  // an attack of bad keys then costs no decision building or encoding. Bounded, as messages can name scopes.
  const denials = new Map<string, CheckOutcome>();
  const outcome = (verdict: Verdict): CheckOutcome => {
    if (verdict.kind === "deny" && verdict.limits.length === 0 && !verdict.approval) {
      const key = `${verdict.reason}\u0000${verdict.message}\u0000${sourcesKey(verdict.credentialSources)}`;
      let cached = denials.get(key);
      if (!cached) {
        cached = build(verdict);
        if (denials.size < MAX_CACHED_DENIALS) denials.set(key, cached);
      }
      return cached;
    }
    return build(verdict);
  };
  // An allow without warnings depends only on its identity and the headers it strips. identityOf gives one frozen
  // identity per cached key entry, so the fixed bytes are kept per identity (dropped with it) and a Check encodes
  // only its rate-limit headers: no decision object, no cache-key lookup, no field-by-field comparison.
  const allows = new WeakMap<Identity, { strip: readonly string[]; fixed: FixedCheckResponse }>();
  const allow = (verdict: AllowVerdict): Uint8Array => {
    let hit = allows.get(verdict.identity);
    if (!hit || !sameStrings(hit.strip, verdict.stripHeaders)) {
      const decision = verdictToDecision({ ...verdict, limits: [] }, decisionOptions);
      hit = { strip: [...verdict.stripHeaders], fixed: prepareCheckResponse(decision) };
      allows.set(verdict.identity, hit);
    }
    // Limit figures go straight from numbers to bytes: every limited allow pays for these headers.
    const figures = rateLimitFigures(verdict.limits);
    if (!figures) return completeCheckResponse(hit.fixed, []);
    return allWriteableIntegers(figures)
      ? completeCheckResponseWithIntegers(hit.fixed, RATE_LIMIT_NAME_BYTES, figures)
      : completeCheckResponse(hit.fixed, rateLimitHeaders(verdict.limits));
  };
  const build = (verdict: Verdict): CheckOutcome => {
    if (
      verdict.kind === "allow" &&
      verdict.warnings.length === 0 &&
      Object.isFrozen(verdict.identity) &&
      Object.isFrozen(verdict.identity.scopes)
    ) {
      return { kind: "response", bytes: allow(verdict) };
    }
    const decision = verdictToDecision(verdict, decisionOptions);
    if (decision.transportError) return unavailable;
    return { kind: "response", bytes: encoder.encode(decision) };
  };
  return outcome;
}

// One key string per credential-source list: key spaces keep their list while cached, so this is computed once each.
const sourceKeys = new WeakMap<readonly CredentialSource[], string>();

function sourcesKey(sources: readonly CredentialSource[] | undefined): string {
  if (!sources) return "";
  let key = sourceKeys.get(sources);
  if (key === undefined) {
    key = sources.map((s) => (s.kind === "header" ? `header:${s.header}` : s.kind)).join("\u0000");
    sourceKeys.set(sources, key);
  }
  return key;
}
