/** The sampled decision log and request fields on log lines (no Postgres or Redis). */
import { describe, expect, it } from "vitest";
import type { Verdict } from "../../src/domain/verdict.js";
import { createLogger } from "../../src/log.js";
import { createObservability } from "../../src/observability/observability.js";
import type { ObservedRequest } from "../../src/observability/ports.js";
import { identity } from "../transport/fixtures.js";

const KEY = "trpt_acme_s3cr3tS3cr3tS3cr3tS3cr3t";

function observerLogging(rate: number) {
  const lines: string[] = [];
  const observability = createObservability({
    config: { metricsKeySpaceLabels: 5, decisionLogSampleRate: rate, defaultKeySpace: "" },
    logger: createLogger("info", (line) => lines.push(line)),
  });
  observability.lookupKeySpacesWith((n) => (n === "pods" ? { id: "ks_1", name: "pods" } : undefined));
  return { observer: observability.decisions("envoy_grpc"), lines };
}

function request(headers: Record<string, string>): ObservedRequest {
  return {
    keySpace: "pods",
    method: "GET",
    path: `/v1/pods?api_key=${KEY}`,
    headers: new Map(Object.entries({ authorization: `Bearer ${KEY}`, ...headers })),
  };
}

const allow: Verdict = { kind: "allow", identity, limits: [], warnings: [], stripHeaders: [] };
const denied: Verdict = { kind: "deny", reason: "revoked", message: "revoked", limits: [] };

describe("decision log", () => {
  it("writes key id, key space, decision, reason, route, request id and trace id, and never the key", () => {
    const { observer, lines } = observerLogging(1);
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    observer.decided(
      allow,
      request({ "x-request-id": "req-42", traceparent: `00-${traceId}-00f067aa0ba902b7-01` }),
      performance.now(),
    );
    observer.decided(denied, request({}), performance.now());
    expect(lines).toHaveLength(2);
    const [allowed, refused] = lines.map((l) => JSON.parse(l));
    expect(allowed).toMatchObject({
      level: "info",
      message: "decision",
      transport: "envoy_grpc",
      decision: "allow",
      reason: "none",
      keyId: identity.keyId,
      keySpace: identity.keySpaceId,
      route: "GET /v1/pods",
      requestId: "req-42",
      traceId,
    });
    expect(refused).toMatchObject({ decision: "deny", reason: "revoked", keySpace: "ks_1" });
    // Without x-request-id a request gets a generated one; without traceparent there is no trace id.
    expect(refused.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(refused.traceId).toBeUndefined();
    for (const line of lines) expect(line).not.toContain("s3cr3t");
  });

  it("is off at rate 0 and samples about the configured share", () => {
    expect(observerLogging(0).lines).toEqual([]);
    const off = observerLogging(0);
    for (let i = 0; i < 1000; i++) off.observer.decided(denied, request({}), performance.now());
    expect(off.lines).toEqual([]);
    const sampled = observerLogging(0.1);
    for (let i = 0; i < 4000; i++) sampled.observer.decided(denied, request({}), performance.now());
    // 400 expected; the bounds are six standard deviations (19) either side.
    expect(sampled.lines.length).toBeGreaterThan(286);
    expect(sampled.lines.length).toBeLessThan(514);
  });

  it("gives a failure's log line the request id and trace id of its request", () => {
    const { observer } = observerLogging(0);
    const fields = observer.logFields(request({ "x-request-id": "r-1\n\u0000injected" }));
    expect(fields.requestId).toBe("r-1injected");
    expect(fields.traceId).toBeUndefined();
  });
});
