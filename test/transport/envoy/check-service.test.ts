import { create, equals, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  CheckRequestSchema,
  CheckResponseSchema,
} from "../../../gen/envoy/service/auth/v3/external_auth_pb.js";
import type { Identity, Verdict } from "../../../src/domain/verdict.js";
import { createObservability } from "../../../src/observability/observability.js";
import { verdictToDecision } from "../../../src/transport/decision.js";
import { type CheckOutcome, createCheckHandler } from "../../../src/transport/envoy/check-service.js";
import { encodeCheckResponse } from "../../../src/transport/envoy/wire/check-response.js";
import { parsePrometheus } from "../../support/prometheus.js";
import { allow, deny, identity, limit } from "../fixtures.js";

const request = toBinary(
  CheckRequestSchema,
  create(CheckRequestSchema, {
    attributes: { request: { http: { method: "GET", path: "/", headers: { authorization: "Bearer k" } } } },
  }),
);

/** A handler whose authorizer answers the queued verdicts in order. */
function handlerAnswering(verdicts: Verdict[]) {
  const queue = [...verdicts];
  return createCheckHandler({ authorizer: { check: async () => queue.shift()! } });
}

async function answer(handle: ReturnType<typeof createCheckHandler>) {
  const outcome = await new Promise<CheckOutcome>((resolve) => handle(request, undefined, resolve));
  if (outcome.kind !== "response") throw new Error(`expected a response, got ${outcome.kind}`);
  return fromBinary(CheckResponseSchema, outcome.bytes);
}

const expected = (v: Verdict) => fromBinary(CheckResponseSchema, encodeCheckResponse(verdictToDecision(v)));

describe("createCheckHandler answering allows", () => {
  const frozen: Identity = Object.freeze({
    ...identity,
    scopes: Object.freeze([...identity.scopes]) as string[],
  });

  const sequences: [string, Verdict[]][] = [
    [
      "answers each allow of one frozen identity with that request's own rate-limit headers",
      [
        allow({ identity: frozen, limits: [limit({ remaining: 50 })] }),
        allow({ identity: frozen, limits: [limit({ remaining: 49, resetAt: 2_000_000_123 })] }),
        allow({ identity: frozen }),
        allow({ identity: frozen, limits: [limit({ remaining: 0, limit: 1_000_000_000 })] }),
      ],
    ],
    [
      "writes limit figures too large for exact digits the way the reference encoder spells them",
      [
        allow({ identity: frozen, limits: [limit({ limit: 1e21, remaining: 2 ** 53 })] }),
        allow({ identity: frozen, limits: [limit({ limit: Number.MAX_SAFE_INTEGER, resetAt: 1e300 })] }),
        allow({ identity: frozen, limits: [limit({ remaining: 1.5, resetAt: Number.POSITIVE_INFINITY })] }),
      ],
    ],
    [
      "re-encodes the fixed part when the same identity strips another header, or none",
      [
        allow({ identity: frozen, stripHeaders: ["authorization"] }),
        allow({ identity: frozen, stripHeaders: ["x-api-key"], limits: [limit()] }),
        allow({ identity: frozen, stripHeaders: [] }),
        allow({ identity: frozen, stripHeaders: ["authorization"] }),
      ],
    ],
    [
      "encodes warnings, which vary, the same as the reference encoder",
      [
        allow({ identity: frozen, warnings: ["key must be rotated within 3 days"] }),
        allow({ identity: frozen, warnings: ["key must be rotated within 2 days"], limits: [limit()] }),
        allow({ identity: frozen }),
      ],
    ],
  ];
  for (const [behaviour, verdicts] of sequences) {
    it(behaviour, async () => {
      const handle = handlerAnswering(verdicts);
      for (const v of verdicts)
        expect(equals(CheckResponseSchema, await answer(handle), expected(v))).toBe(true);
    });
  }

  it("never reuses what it encoded for an identity a caller changed afterwards, fingerprint and all", async () => {
    const mutable: Identity = { ...identity, scopes: [...identity.scopes] };
    const first = allow({ identity: mutable });
    const second = allow({ identity: mutable });
    const handle = handlerAnswering([first, second]);
    await answer(handle);
    mutable.keyId = "key_changed";
    mutable.scopes.push("pods:delete");
    const res = await answer(handle);
    expect(equals(CheckResponseSchema, res, expected(second))).toBe(true);
    expect(res.dynamicMetadata).toMatchObject({ key_id: "key_changed" });
  });
});

describe("createCheckHandler answering without a backend", () => {
  it("answers an unreadable request before it returns, without asking the authorizer", () => {
    let asked = false;
    const handle = createCheckHandler({
      authorizer: {
        check: async () => {
          asked = true;
          return allow();
        },
      },
    });
    const outcomes: CheckOutcome[] = [];
    handle(new Uint8Array([0xff, 0xff, 0xff]), undefined, (o) => outcomes.push(o));
    expect(outcomes).toHaveLength(1);
    expect(asked).toBe(false);
    const res =
      outcomes[0]?.kind === "response" ? fromBinary(CheckResponseSchema, outcomes[0].bytes) : undefined;
    expect(res?.status?.code).toBe(16);
    expect(res?.httpResponse.case).toBe("deniedResponse");
  });

  it("answers a verdict the authorizer returns directly before it returns", () => {
    const revoked = deny("revoked");
    const handle = createCheckHandler({ authorizer: { check: () => revoked } });
    const outcomes: CheckOutcome[] = [];
    handle(request, undefined, (o) => outcomes.push(o));
    expect(outcomes).toHaveLength(1);
    const res =
      outcomes[0]?.kind === "response" ? fromBinary(CheckResponseSchema, outcomes[0].bytes) : undefined;
    expect(res && equals(CheckResponseSchema, res, expected(revoked))).toBe(true);
  });
});

describe("createCheckHandler counting answers (no Postgres or Redis)", () => {
  it("counts each answer once by its verdict: unreadable requests as denials, missed deadlines as errors", async () => {
    const observability = createObservability({
      config: { metricsKeySpaceLabels: 10, decisionLogSampleRate: 0, defaultKeySpace: "" },
    });
    const verdicts: (Verdict | "hang")[] = [
      allow(),
      deny("revoked"),
      { kind: "error", message: "db down" },
      "hang",
    ];
    const handle = createCheckHandler({
      authorizer: {
        check: () => {
          const next = verdicts.shift()!;
          return next === "hang" ? new Promise<Verdict>(() => {}) : next;
        },
      },
      deadlineMs: 20,
      observer: observability.decisions("envoy_grpc"),
    });
    for (let i = 0; i < 4; i++) await new Promise((resolve) => handle(request, undefined, resolve));
    await new Promise((resolve) => handle(new Uint8Array([0xff, 0xff]), undefined, resolve));
    const scrape = parsePrometheus(await observability.metrics.render());
    const legacy = (decision: string) => scrape.value("keymesh_check_decisions_total", { decision });
    expect([legacy("allow"), legacy("deny"), legacy("error")]).toEqual([1, 2, 2]);
    const decisions = (decision: string, reason: string) =>
      scrape
        .find("keymesh_decisions_total", { transport: "envoy_grpc", decision, reason })
        .reduce((sum, s) => sum + s.value, 0);
    expect(decisions("allow", "none")).toBe(1);
    expect(decisions("deny", "revoked")).toBe(1);
    expect(decisions("deny", "malformed")).toBe(1);
    expect(decisions("error", "unavailable")).toBe(2);
    // The missed deadline waited out its 20 ms, and the latency histogram saw it.
    const errors = { transport: "envoy_grpc", decision: "error" };
    expect(
      scrape.find("keymesh_decision_duration_seconds_count", errors).reduce((n, s) => n + s.value, 0),
    ).toBe(2);
    expect(
      scrape.find("keymesh_decision_duration_seconds_sum", errors).reduce((n, s) => n + s.value, 0),
    ).toBeGreaterThanOrEqual(0.019);
  });
});
