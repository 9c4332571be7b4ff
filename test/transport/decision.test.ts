import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DenyReason, Verdict } from "../../src/domain/verdict.js";
import {
  DEFAULT_DECISION_OPTIONS,
  headerValue,
  mostConstrained,
  resolveDecisionOptions,
  retryAfter,
  verdictToDecision,
} from "../../src/transport/decision.js";
import { budgetMs, decideWithin, verdictWithin } from "../../src/transport/envoy/guard.js";
import { allow, DENY_REASONS, deny, identity, limit } from "./fixtures.js";

const NOW = 1_900_000_000;
const header = (list: [string, string][], name: string) => list.find(([n]) => n === name)?.[1];

describe("verdictToDecision for allows", () => {
  it("adds every identity header upstream with the configured prefix and strips the credential", () => {
    const d = verdictToDecision(allow(), resolveDecisionOptions({ identityHeaderPrefix: "x-id-" }));
    expect(d).toMatchObject({ allowed: true, httpStatus: 200, grpcCode: 0, body: "", transportError: false });
    expect(d.upstreamHeaders).toEqual([
      ["x-id-key-id", "key_1"],
      ["x-id-workspace-id", "ws_1"],
      ["x-id-owner-id", "mem_acting"],
      ["x-id-owner-type", "organization"],
      ["x-id-scopes", "pods:read,pods:write"],
      ["x-id-key-space-id", "ks_1"],
    ]);
    expect(d.removeHeaders).toEqual(["authorization"]);
    expect(d.responseHeaders).toEqual([]);
  });

  it("keeps an identity header even when its value is empty so a client-sent copy cannot survive", () => {
    const d = verdictToDecision(allow({ identity: { ...identity, scopes: [] } }));
    expect(header(d.upstreamHeaders, "x-keymesh-scopes")).toBe("");
  });

  it("puts the identity in dynamic metadata", () => {
    const d = verdictToDecision(allow());
    expect(d.dynamicMetadata).toMatchObject({
      decision: "allow",
      key_id: "key_1",
      workspace_id: "ws_1",
      owner_id: "mem_acting",
      scopes: ["pods:read", "pods:write"],
    });
  });

  it("sends the most constrained bucket's rate-limit headers to the client", () => {
    const limits = [
      limit({ name: "a", limit: 10, remaining: 3, resetAt: NOW + 50 }),
      limit({ name: "b", limit: 1000, remaining: 3, resetAt: NOW + 20 }),
      limit({ name: "c", limit: 5, remaining: 4, resetAt: NOW + 1 }),
    ];
    const d = verdictToDecision(allow({ limits }), DEFAULT_DECISION_OPTIONS, NOW);
    expect(d.responseHeaders).toEqual([
      ["x-ratelimit-limit", "1000"],
      ["x-ratelimit-remaining", "3"],
      ["x-ratelimit-reset", String(NOW + 20)],
    ]);
  });

  it("turns warnings into one Warning-style header with control characters removed", () => {
    const d = verdictToDecision(allow({ warnings: ['rotate "soon"', "bad\r\nline"] }));
    expect(header(d.responseHeaders, "x-keymesh-warning")).toBe(
      `199 keymesh "rotate 'soon'", 199 keymesh "bad??line"`,
    );
  });
});

describe("verdictToDecision for denials", () => {
  const expected: Record<DenyReason, [number, number]> = {
    missing: [401, 16],
    malformed: [401, 16],
    not_found: [401, 16],
    revoked: [401, 16],
    expired: [401, 16],
    disabled: [401, 16],
    key_too_old: [401, 16],
    insufficient_scope: [403, 7],
    workspace_disabled: [403, 7],
    api_access_disabled: [403, 7],
    approval_required: [202, 7],
    rate_limited: [429, 8],
    unavailable: [503, 14],
    invalid_path: [400, 3],
    no_route: [403, 7],
  };

  for (const reason of DENY_REASONS) {
    it(`maps ${reason} to HTTP ${expected[reason][0]} with a JSON body and a non-OK status`, () => {
      const v = deny(
        reason,
        reason === "approval_required" ? { approval: { id: "apr_9", status: "pending" } } : {},
      );
      const d = verdictToDecision(v, DEFAULT_DECISION_OPTIONS, NOW);
      expect([d.httpStatus, d.grpcCode]).toEqual(expected[reason]);
      expect(d.allowed).toBe(false);
      expect(d.upstreamHeaders).toEqual([]);
      expect(header(d.responseHeaders, "content-type")).toBe("application/json");
      const body = JSON.parse(d.body);
      if (reason === "approval_required")
        expect(body).toEqual({ approval: { id: "apr_9", status: "pending" } });
      else expect(body).toEqual({ error: { code: reason, message: `denied: ${reason}` } });
      expect(d.dynamicMetadata).toEqual({ decision: "deny", reason });
    });
  }

  it("challenges 401s with Bearer and the realm, flagging a rejected token as invalid_token", () => {
    const options = resolveDecisionOptions({ realm: "pods" });
    expect(header(verdictToDecision(deny("missing"), options).responseHeaders, "www-authenticate")).toBe(
      'Bearer realm="pods"',
    );
    expect(header(verdictToDecision(deny("revoked"), options).responseHeaders, "www-authenticate")).toBe(
      'Bearer realm="pods", error="invalid_token"',
    );
  });

  it("challenges with Basic when the deployment says so", () => {
    const d = verdictToDecision(deny("not_found"), resolveDecisionOptions({ challenge: "Basic" }));
    expect(header(d.responseHeaders, "www-authenticate")).toBe('Basic realm="keymesh"');
  });

  it("does not challenge 403s", () => {
    expect(
      header(verdictToDecision(deny("insufficient_scope")).responseHeaders, "www-authenticate"),
    ).toBeUndefined();
  });

  it("gives a 429 the longest Retry-After of the failing buckets plus the most constrained bucket's headers", () => {
    const limits = [
      limit({ name: "minute", limit: 60, remaining: 0, retryAfterSeconds: 12, resetAt: NOW + 12 }),
      limit({ name: "hour", limit: 1000, remaining: 0, retryAfterSeconds: 30.2, resetAt: NOW + 31 }),
      limit({ name: "day", limit: 9000, remaining: 500, retryAfterSeconds: 0, resetAt: NOW + 5 }),
    ];
    const d = verdictToDecision(deny("rate_limited", { limits }), DEFAULT_DECISION_OPTIONS, NOW);
    expect(d.responseHeaders).toEqual([
      ["content-type", "application/json"],
      ["retry-after", "31"],
      ["x-ratelimit-limit", "60"],
      ["x-ratelimit-remaining", "0"],
      ["x-ratelimit-reset", String(NOW + 12)],
    ]);
  });

  it("falls back to the reset time, then to one second, when no bucket gives a retry time", () => {
    expect(retryAfter([limit({ remaining: 0, retryAfterSeconds: 0, resetAt: NOW + 7.5 })], NOW)).toBe(8);
    expect(retryAfter([], NOW)).toBe(1);
  });

  it("hands a pending ticket on in a header too, when its id needs no escaping, for proxies that drop the body", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.stringMatching(/^apr_[A-Za-z0-9]{12}$/), fc.string({ maxLength: 140 })),
        (id) => {
          const verdict: Verdict = {
            kind: "deny",
            reason: "approval_required",
            message: "queued",
            limits: [],
            approval: { id, status: "pending" },
          };
          const d = verdictToDecision(verdict, resolveDecisionOptions({ identityHeaderPrefix: "x-km-" }));
          expect(d.httpStatus).toBe(202);
          expect(JSON.parse(d.body)).toEqual({ approval: { id, status: "pending" } });
          const sent = header(d.responseHeaders, "x-km-approval-id");
          if (/^[A-Za-z0-9_-]{1,128}$/.test(id)) expect(sent).toBe(id);
          else expect(sent).toBeUndefined();
        },
      ),
    );
  });

  it("answers approval_required without a ticket as a 403, since there is nothing to poll", () => {
    const d = verdictToDecision(deny("approval_required"));
    expect(d.httpStatus).toBe(403);
    expect(JSON.parse(d.body).error.code).toBe("approval_required");
  });
});

describe("verdictToDecision for backend failures", () => {
  it("is a 503 denial that hides the cause when failureMode is deny", () => {
    const d = verdictToDecision({ kind: "error", message: "connect ECONNREFUSED 10.0.0.5:5432" });
    expect(d).toMatchObject({
      allowed: false,
      httpStatus: 503,
      grpcCode: 14,
      transportError: false,
      reason: "error",
    });
    expect(d.body).not.toContain("10.0.0.5");
    expect(JSON.parse(d.body).error.code).toBe("unavailable");
  });

  it("flags a transport error when failureMode is error", () => {
    const d = verdictToDecision(
      { kind: "error", message: "x" },
      resolveDecisionOptions({ failureMode: "error" }),
    );
    expect(d.transportError).toBe(true);
  });

  it("keeps a domain unavailable denial as a 503 decision even when failureMode is error", () => {
    const d = verdictToDecision(deny("unavailable"), resolveDecisionOptions({ failureMode: "error" }));
    expect(d).toMatchObject({ httpStatus: 503, transportError: false });
  });
});

describe("helpers", () => {
  it("picks the lowest remaining bucket and breaks ties by the soonest reset", () => {
    const a = limit({ name: "a", remaining: 2, resetAt: 10 });
    const b = limit({ name: "b", remaining: 2, resetAt: 5 });
    expect(mostConstrained([a, b])?.name).toBe("b");
    expect(mostConstrained([])).toBeUndefined();
  });

  it("replaces anything but printable ASCII in header values", () => {
    expect(headerValue("ok value\t1")).toBe("ok value\t1");
    expect(headerValue("é\u0000\n")).toBe("???");
  });
});

describe("the deadline guard", () => {
  it("keeps the configured deadline unless the caller's own deadline is sooner", () => {
    expect(budgetMs(150, Number.POSITIVE_INFINITY, 0)).toBe(150);
    expect(budgetMs(150, 200, 0)).toBe(150);
    expect(budgetMs(150, 100, 0)).toBe(80);
    expect(budgetMs(150, new Date(5), 10)).toBe(1);
  });

  const failing: (() => Verdict | Promise<never>)[] = [
    () => {
      throw new Error("sync");
    },
    () => Promise.reject(new Error("async")),
    () => Promise.resolve(undefined as never),
    () => undefined as unknown as Verdict,
  ];
  const guards: [string, number, number | undefined, (() => Verdict | Promise<never>)[]][] = [
    // Only the guard's own timer catches a hang; an authorizer that times itself cannot hang by its contract.
    [
      "turns a throw, a rejection, a non-verdict and a hang into error verdicts",
      20,
      undefined,
      [...failing, () => new Promise<never>(() => {})],
    ],
    [
      "still turns a throw, a rejection and a non-verdict into errors for an authorizer that times itself",
      50,
      20,
      failing,
    ],
  ];
  for (const [behaviour, deadlineMs, selfLimitedMs, cases] of guards) {
    it(behaviour, async () => {
      for (const produce of cases)
        expect((await verdictWithin(produce, deadlineMs, selfLimitedMs)).kind).toBe("error");
      expect((await verdictWithin(async () => allow(), deadlineMs, selfLimitedMs)).kind).toBe("allow");
    });
  }

  it("passes a verdict returned directly on before it returns, and one returned later only once", async () => {
    const seen: Verdict[] = [];
    decideWithin(
      () => allow(),
      20,
      undefined,
      (v) => seen.push(v),
    );
    expect(seen.map((v) => v.kind)).toEqual(["allow"]);
    // Settling after the deadline fired must not answer a second time.
    let settle: (v: Verdict) => void = () => {};
    decideWithin(
      () => new Promise<Verdict>((resolve) => (settle = resolve)),
      5,
      undefined,
      (v) => seen.push(v),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    settle(allow());
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(seen.map((v) => v.kind)).toEqual(["allow", "error"]);
  });

  it("times an authorizer whose own deadline is longer than the caller's budget", async () => {
    const started = performance.now();
    const verdict = await verdictWithin(() => new Promise<never>(() => {}), 20, 5000);
    expect(verdict).toMatchObject({ kind: "error", message: "no decision within 20 ms" });
    expect(performance.now() - started).toBeLessThan(2000);
  });
});
