/**
 * /metrics from outside: allowed and denied requests over every decision path, then one scrape, parsed.
 * Needs Postgres (a test server); the rate limiter is the in-memory one.
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { KeyVerify, VerifyCode } from "../../gen/keymesh/v1/verify_pb.js";
import { mintKey } from "../../src/domain/key-format.js";
import { createEnvoyClient } from "../support/envoy-client.js";
import { parsePrometheus, type Scrape } from "../support/prometheus.js";
import { startTestServer, type TestServer } from "../support/server.js";

let t: TestServer;
let envoy: ReturnType<typeof createEnvoyClient>;
const spaces: Record<"alpha" | "beta" | "gamma", { id: string; secret: string }> = {
  alpha: { id: "", secret: "" },
  beta: { id: "", secret: "" },
  gamma: { id: "", secret: "" },
};
let scrape: Scrape;
let text: string;
// Well formed (prefix, segment, checksum) but never issued: a not_found denial.
const unknownKey = mintKey(
  { prefix: "alpha_", workspaceSegment: true, style: "single", secretBytes: 0, idPrefix: "" },
  "acme",
).secret;

const TRANSPORTS = ["envoy_grpc", "http_authz", "verify_grpc", "verify_connect"] as const;
type Transport = (typeof TRANSPORTS)[number];

/** One allowed or denied request over `transport`, naming key space `space` (by name) with `key`. */
async function decide(transport: Transport, space: string, key: string | undefined): Promise<boolean> {
  const connect = createClient(KeyVerify, createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }));
  switch (transport) {
    case "envoy_grpc": {
      const res = await envoy.check({
        method: "GET",
        path: "/v1/things",
        headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
        contextExtensions: { "keymesh.key_space": space },
      });
      return res.status?.code === 0;
    }
    case "http_authz": {
      const res = await fetch(`${t.httpUrl}/authz?key_space=${encodeURIComponent(space)}`, {
        headers: {
          "x-original-method": "GET",
          "x-original-uri": "/v1/things",
          ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
        },
      });
      await res.arrayBuffer();
      return res.status === 200;
    }
    case "verify_grpc":
      return (await t.verify.verify({ keySpaceId: space, key: key ?? "" })).code === VerifyCode.VALID;
    case "verify_connect":
      return (await connect.verify({ keySpaceId: space, key: key ?? "" })).code === VerifyCode.VALID;
  }
}

beforeAll(async () => {
  // Two key spaces get labels of their own; the third is counted as `other`.
  t = await startTestServer({ env: { KEYMESH_METRICS_KEY_SPACES: "2" } });
  envoy = createEnvoyClient(t.grpcAddress);
  const { workspace } = await t.admin.createWorkspace({ name: "Acme", keySegment: "acme", apiAccess: true });
  for (const name of ["alpha", "beta", "gamma"] as const) {
    const { keySpace } = await t.admin.createKeySpace({
      name,
      format: { prefix: `${name}_`, workspaceSegment: true, style: KeyStyle.SINGLE },
      credentialSources: [{ kind: CredentialSourceKind.BEARER }],
      scopeModel: { scopes: ["read"] },
      defaultKeyLimits: [{ name: "minute", capacity: 1000n, periodSeconds: 60n }],
    });
    const { secret } = await t.admin.createKey({
      keySpaceId: keySpace!.id,
      workspaceId: workspace!.id,
      ownerType: OwnerType.ORGANIZATION,
      name: "k",
      scopes: ["read"],
    });
    spaces[name] = { id: keySpace!.id, secret };
  }
  // alpha and beta first, so that they take the two labels.
  for (const transport of TRANSPORTS) {
    expect(await decide(transport, "alpha", spaces.alpha.secret)).toBe(true);
    expect(await decide(transport, spaces.alpha.id, spaces.alpha.secret)).toBe(true);
    expect(await decide(transport, "alpha", unknownKey)).toBe(false);
    expect(await decide(transport, "beta", spaces.beta.secret)).toBe(true);
    expect(await decide(transport, "gamma", spaces.gamma.secret)).toBe(true);
    // A key pasted where the key space belongs must never become a label.
    expect(await decide(transport, spaces.beta.secret, spaces.beta.secret)).toBe(false);
  }
  // Requests that cannot be read: CheckRequest bytes that are no protobuf, forged /authz headers, a VerifyRequest without key space.
  expect((await envoy.checkRaw(new Uint8Array([0xff, 0xff]))).status?.code).not.toBe(0);
  const forged = await fetch(`${t.httpUrl}/authz?key_space=alpha`, {
    headers: { "x-original-uri": "/a", "x-forwarded-uri": "/b" },
  });
  expect(forged.status).toBe(400);
  await expect(t.verify.verify({ key: "x" })).rejects.toThrow();
  const connect = createClient(KeyVerify, createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }));
  await expect(connect.verify({ key: "x" })).rejects.toSatisfy(
    (e) => ConnectError.from(e).code === Code.InvalidArgument,
  );
  await expect(t.adminAs("not-a-root-key").listKeySpaces({})).rejects.toThrow();
  const res = await fetch(`${t.httpUrl}/metrics`);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  text = await res.text();
  scrape = parsePrometheus(text);
});

afterAll(async () => {
  envoy?.close();
  await t?.stop();
});

/** The sum of a family's samples matching `labels`. */
const total = (name: string, labels: Record<string, string>) =>
  scrape.find(name, labels).reduce((sum, s) => sum + s.value, 0);

describe("/metrics after decisions on every path (needs Postgres)", () => {
  it("declares the decision counter and latency histogram with their types", () => {
    expect(scrape.types.get("keymesh_decisions_total")).toBe("counter");
    expect(scrape.types.get("keymesh_decision_duration_seconds")).toBe("histogram");
  });

  it.each(TRANSPORTS)(
    "counts %s decisions by decision, reason and key space, each with a histogram",
    (transport) => {
      const alpha = spaces.alpha.id;
      const expected: [Record<string, string>, number][] = [
        [{ decision: "allow", reason: "none", key_space: alpha }, 2],
        [{ decision: "deny", reason: "not_found", key_space: alpha }, 1],
        [{ decision: "allow", reason: "none", key_space: spaces.beta.id }, 1],
        [{ decision: "allow", reason: "none", key_space: "other" }, 1],
        [{ decision: "deny", reason: "malformed", key_space: "unknown" }, 1],
      ];
      for (const [labels, count] of expected) {
        const series = { transport, ...labels };
        expect(scrape.value("keymesh_decisions_total", series), JSON.stringify(series)).toBe(count);
        expect(scrape.value("keymesh_decision_duration_seconds_count", series)).toBe(count);
        expect(scrape.value("keymesh_decision_duration_seconds_bucket", { ...series, le: "+Inf" })).toBe(
          count,
        );
        const sum = scrape.value("keymesh_decision_duration_seconds_sum", series)!;
        expect(sum).toBeGreaterThan(0);
        expect(sum).toBeLessThan(count * 2);
        const buckets = scrape.find("keymesh_decision_duration_seconds_bucket", series).map((s) => s.value);
        expect(buckets.length).toBeGreaterThan(5);
        expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
      }
      // The pasted key named no key space: denied, under `unknown`; how it was denied depends on the transport.
      expect(total("keymesh_decisions_total", { transport, decision: "deny", key_space: "unknown" })).toBe(2);
    },
  );

  it("bounds the key_space label and never writes a key or an unknown key space's text", () => {
    const values = new Set(scrape.find("keymesh_decisions_total").map((s) => s.labels.key_space));
    expect([...values].sort()).toEqual([spaces.alpha.id, spaces.beta.id, "other", "unknown"].sort());
    expect(text).not.toContain(spaces.gamma.id);
    for (const { secret } of Object.values(spaces)) expect(text).not.toContain(secret);
    expect(text).not.toContain(unknownKey);
    expect(scrape.value("keymesh_key_space_info", { key_space: spaces.alpha.id, name: "alpha" })).toBe(1);
  });

  it("keeps the Envoy-only family the bench reads", () => {
    expect(scrape.value("keymesh_check_decisions_total", { decision: "allow" })).toBe(4);
    expect(scrape.value("keymesh_check_decisions_total", { decision: "deny" })).toBe(3);
    expect(text).toMatch(/^keymesh_check_decisions_total\{decision="error"\} 0$/m);
  });

  it("reports backends, the cache, KeyAdmin calls and the stream-map recycler", () => {
    expect(
      scrape.value("keymesh_db_query_duration_seconds_count", { operation: "key_lookup" }),
    ).toBeGreaterThan(0);
    expect(scrape.value("keymesh_db_failures_total", { operation: "key_lookup", kind: "unavailable" })).toBe(
      0,
    );
    expect(scrape.value("keymesh_rate_limiter_duration_seconds_count", { backend: "memory" })).toBe(16);
    expect(scrape.value("keymesh_rate_limiter_failures_total")).toBe(0);
    expect(scrape.value("keymesh_key_cache_lookups_total", { result: "hit" })).toBeGreaterThan(0);
    expect(scrape.value("keymesh_key_cache_lookups_total", { result: "miss" })).toBeGreaterThan(0);
    expect(scrape.value("keymesh_cached_keys")).toBeGreaterThanOrEqual(3);
    expect(scrape.value("keymesh_database_up")).toBe(1);
    expect(scrape.value("keymesh_webhook_outbox_pending")).toBe(0);
    expect(scrape.value("keymesh_webhook_outbox_oldest_pending_age_seconds")).toBe(0);
    expect(scrape.value("keymesh_admin_calls_total", { method: "CreateKeySpace", code: "ok" })).toBe(3);
    expect(
      scrape.value("keymesh_admin_calls_total", { method: "ListKeySpaces", code: "unauthenticated" }),
    ).toBe(1);
    expect(scrape.value("keymesh_admin_call_duration_seconds_count", { method: "CreateKey" })).toBe(3);
    expect(scrape.value("keymesh_stream_map_sessions_watched_total", { listener: "grpc" })).toBeGreaterThan(
      0,
    );
    expect(scrape.value("keymesh_stream_map_sessions_unsupported_total", { listener: "grpc" })).toBe(0);
    expect(scrape.value("keymesh_stream_map_recycled_total", { listener: "http" })).toBeGreaterThanOrEqual(0);
  });

  it("includes the process's event loop, garbage collection, heap and handles", () => {
    for (const name of [
      "nodejs_eventloop_lag_p99_seconds",
      "nodejs_eventloop_active_seconds_total",
      "nodejs_heap_size_used_bytes",
      "nodejs_active_handles_total",
      "process_cpu_seconds_total",
    ]) {
      expect(scrape.find(name).length, name).toBeGreaterThan(0);
    }
    expect(scrape.types.get("nodejs_gc_duration_seconds")).toBe("histogram");
  });
});
