/**
 * Spans from outside: requests carrying a W3C traceparent over every decision path and KeyAdmin, spans read from
 * an in-memory exporter. Needs Postgres and Redis (the key space's limits are charged on Redis).
 */
import { randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { KeyVerify, VerifyCode } from "../../gen/keymesh/v1/verify_pb.js";
import { createEnvoyClient } from "../support/envoy-client.js";
import { startTestServer, type TestServer } from "../support/server.js";

const CHECK_SPAN = "envoy.service.auth.v3.Authorization/Check";

let t: TestServer;
let envoy: ReturnType<typeof createEnvoyClient>;
const exporter = new InMemorySpanExporter();
let keySpaceId: string;
let workspaceId: string;

/** A caller's span: its W3C traceparent and the ids it carries. */
function callerSpan(sampled = true) {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-${sampled ? "01" : "00"}` };
}

/** The spans of one trace exported so far. */
const spansOf = (traceId: string): ReadableSpan[] =>
  exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);

async function issueKey(): Promise<{ id: string; secret: string }> {
  const { key, secret } = await t.admin.createKey({
    keySpaceId,
    workspaceId,
    ownerType: OwnerType.ORGANIZATION,
    name: "traced",
    scopes: ["read"],
  });
  return { id: key!.id, secret };
}

beforeAll(async () => {
  t = await startTestServer({ redis: true, spanExporter: exporter });
  envoy = createEnvoyClient(t.grpcAddress);
  const { keySpace } = await t.admin.createKeySpace({
    name: "traced",
    format: { prefix: "trc_", workspaceSegment: false, style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    scopeModel: { scopes: ["read"] },
    defaultKeyLimits: [{ name: "minute", capacity: 1000n, periodSeconds: 60n }],
  });
  keySpaceId = keySpace!.id;
  workspaceId = (await t.admin.createWorkspace({ name: "Acme", apiAccess: true })).workspace!.id;
});

afterAll(async () => {
  envoy?.close();
  await t?.stop();
});

describe("tracing with an in-memory exporter (needs Postgres and Redis)", () => {
  it("a Check carrying a traceparent produces a decision span whose parent is the caller's span", async () => {
    const key = await issueKey();
    const caller = callerSpan();
    const res = await envoy.check({
      path: "/v1/things",
      headers: { authorization: `Bearer ${key.secret}`, traceparent: caller.traceparent },
      contextExtensions: { "keymesh.key_space": "traced" },
    });
    expect(res.status?.code).toBe(0);
    const [decision, ...others] = spansOf(caller.traceId).filter((s) => s.name === CHECK_SPAN);
    expect(others).toEqual([]);
    expect(decision!.parentSpanContext?.spanId).toBe(caller.spanId);
    expect(decision!.kind).toBe(SpanKind.SERVER);
    expect(decision!.attributes).toMatchObject({
      "keymesh.transport": "envoy_grpc",
      "keymesh.decision": "allow",
      "keymesh.reason": "none",
      "keymesh.key_space": keySpaceId,
      "keymesh.key_id": key.id,
    });
  });

  it("the first Check of a key has Postgres and Redis child spans under its decision span", async () => {
    const key = await issueKey();
    const caller = callerSpan();
    await envoy.check({
      headers: { authorization: `Bearer ${key.secret}`, traceparent: caller.traceparent },
      contextExtensions: { "keymesh.key_space": keySpaceId },
    });
    const spans = spansOf(caller.traceId);
    const decision = spans.find((s) => s.name === CHECK_SPAN)!;
    const lookup = spans.find((s) => s.name === "postgres key_lookup");
    const limiter = spans.find((s) => s.name === "redis rate limit");
    expect(lookup?.parentSpanContext?.spanId).toBe(decision.spanContext().spanId);
    expect(lookup?.attributes["db.system.name"]).toBe("postgresql");
    expect(limiter?.parentSpanContext?.spanId).toBe(decision.spanContext().spanId);
    expect(limiter?.attributes["db.system.name"]).toBe("redis");
  });

  it("a denial's span names its reason, and an unsampled caller's trace records nothing", async () => {
    const caller = callerSpan();
    await envoy.check({
      headers: { authorization: "Bearer trc_notakey", traceparent: caller.traceparent },
      contextExtensions: { "keymesh.key_space": "traced" },
    });
    const [decision] = spansOf(caller.traceId);
    expect(decision!.attributes).toMatchObject({ "keymesh.decision": "deny", "keymesh.reason": "malformed" });
    expect(decision!.attributes["keymesh.key_id"]).toBeUndefined();
    const unsampled = callerSpan(false);
    const key = await issueKey();
    await envoy.check({
      headers: { authorization: `Bearer ${key.secret}`, traceparent: unsampled.traceparent },
      contextExtensions: { "keymesh.key_space": "traced" },
    });
    expect(spansOf(unsampled.traceId)).toEqual([]);
  });

  it("/authz and KeyVerify over gRPC and Connect join the caller's trace too", async () => {
    const key = await issueKey();
    const calls: [string, (traceparent: string) => Promise<unknown>][] = [
      [
        "http_authz",
        (traceparent) =>
          fetch(`${t.httpUrl}/authz?key_space=traced`, {
            headers: { authorization: `Bearer ${key.secret}`, traceparent, "x-original-uri": "/v1/x" },
          }).then((r) => r.arrayBuffer()),
      ],
      [
        "verify_grpc",
        (traceparent) => t.verify.verify({ keySpaceId, key: key.secret }, { headers: { traceparent } }),
      ],
      [
        "verify_connect",
        async (traceparent) => {
          const connect = createClient(
            KeyVerify,
            createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }),
          );
          const res = await connect.verify({ keySpaceId, key: key.secret }, { headers: { traceparent } });
          expect(res.code).toBe(VerifyCode.VALID);
        },
      ],
    ];
    for (const [transport, call] of calls) {
      const caller = callerSpan();
      await call(caller.traceparent);
      const decision = spansOf(caller.traceId).find((s) => s.attributes["keymesh.transport"] === transport);
      expect(decision?.parentSpanContext?.spanId, transport).toBe(caller.spanId);
      expect(decision?.attributes).toMatchObject({ "keymesh.decision": "allow", "keymesh.key_id": key.id });
    }
  });

  it("a KeyAdmin call gets a span under the caller's, with its method and status", async () => {
    const caller = callerSpan();
    await t.admin.getKeySpace({ id: keySpaceId }, { headers: { traceparent: caller.traceparent } });
    const [call] = spansOf(caller.traceId).filter((s) => s.name.startsWith("keymesh.v1.KeyAdmin/"));
    expect(call!.name).toBe("keymesh.v1.KeyAdmin/GetKeySpace");
    expect(call!.parentSpanContext?.spanId).toBe(caller.spanId);
    expect(call!.attributes).toMatchObject({ "rpc.method": "GetKeySpace", "rpc.response.status_code": "ok" });
  });

  it("no span name or attribute holds a key, the root key or the pepper", async () => {
    const key = await issueKey();
    // A key sent where the key space belongs, too.
    await envoy.check({
      headers: { authorization: `Bearer ${key.secret}`, traceparent: callerSpan().traceparent },
      contextExtensions: { "keymesh.key_space": key.secret },
    });
    await t.verify.verify(
      { keySpaceId: key.secret, key: key.secret },
      { headers: { traceparent: callerSpan().traceparent } },
    );
    const spans = exporter.getFinishedSpans();
    expect(spans.length).toBeGreaterThan(10);
    const written = JSON.stringify(
      spans.map((s) => ({
        name: s.name,
        attributes: s.attributes,
        events: s.events,
        resource: s.resource.attributes,
      })),
    );
    expect(written).toContain("keymesh.decision");
    for (const secret of [key.secret, t.rootKey, "test-pepper"]) expect(written).not.toContain(secret);
    expect(written).not.toMatch(/trc_[A-Za-z0-9]{20,}/);
  });
});
