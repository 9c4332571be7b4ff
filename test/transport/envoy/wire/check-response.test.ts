import { equals, fromBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { HeaderValueOption_HeaderAppendAction } from "../../../../gen/envoy/config/core/v3/base_pb.js";
import {
  type CheckResponse,
  CheckResponseSchema,
} from "../../../../gen/envoy/service/auth/v3/external_auth_pb.js";
import type { Verdict } from "../../../../src/domain/verdict.js";
import { DEFAULT_DECISION_OPTIONS, verdictToDecision } from "../../../../src/transport/decision.js";
import {
  createCheckResponseEncoder,
  encodeCheckResponse,
} from "../../../../src/transport/envoy/wire/check-response.js";
import { allow, DENY_REASONS, deny, limit } from "../../fixtures.js";

const NOW = 1_900_000_000;
const decide = (v: Verdict) => verdictToDecision(v, DEFAULT_DECISION_OPTIONS, NOW);
const decode = (bytes: Uint8Array) => fromBinary(CheckResponseSchema, bytes);

function allHeaders(res: CheckResponse) {
  const r = res.httpResponse;
  if (r.case === "okResponse") return [...r.value.headers, ...r.value.responseHeadersToAdd];
  if (r.case === "deniedResponse") return r.value.headers;
  return [];
}

describe("encodeCheckResponse", () => {
  it("encodes an allow as status 0 with ok_response headers, removals and dynamic metadata", () => {
    const res = decode(encodeCheckResponse(decide(allow({ limits: [limit()], warnings: ["w"] }))));
    expect(res.status?.code).toBe(0);
    expect(res.httpResponse.case).toBe("okResponse");
    const ok = res.httpResponse.value as Extract<
      CheckResponse["httpResponse"],
      { case: "okResponse" }
    >["value"];
    expect(ok.headers.map((h) => h.header?.key)).toContain("x-keymesh-key-id");
    expect(ok.headersToRemove).toEqual(["authorization"]);
    expect(ok.responseHeadersToAdd.map((h) => h.header?.key)).toEqual([
      "x-keymesh-warning",
      "x-ratelimit-limit",
      "x-ratelimit-remaining",
      "x-ratelimit-reset",
    ]);
    expect(res.dynamicMetadata).toMatchObject({ key_id: "key_1", scopes: ["pods:read", "pods:write"] });
  });

  for (const reason of DENY_REASONS) {
    it(`encodes a ${reason} denial with a non-zero status and the HTTP status in denied_response`, () => {
      const d = decide(deny(reason, { limits: [limit({ remaining: 0, retryAfterSeconds: 3 })] }));
      const res = decode(encodeCheckResponse(d));
      expect(res.status).toMatchObject({ code: d.grpcCode, message: `denied: ${reason}` });
      expect(res.status?.code).not.toBe(0);
      expect(res.httpResponse.case).toBe("deniedResponse");
      const denied = res.httpResponse.value as { status?: { code: number }; body: string };
      expect(denied.status?.code).toBe(d.httpStatus);
      expect(denied.body).toBe(d.body);
    });
  }

  it("sets append_action OVERWRITE_IF_EXISTS_OR_ADD explicitly on every header, never the deprecated append", () => {
    const verdicts = [allow({ limits: [limit()], warnings: ["w"] }), ...DENY_REASONS.map((r) => deny(r))];
    for (const v of verdicts) {
      for (const h of allHeaders(decode(encodeCheckResponse(decide(v))))) {
        expect(h.appendAction).toBe(HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD);
        expect(h.append).toBeUndefined();
      }
    }
  });

  it("keeps empty identity header values so they overwrite client-sent ones", () => {
    const v = allow();
    if (v.kind === "allow") v.identity = { ...v.identity, scopes: [] };
    const scopes = allHeaders(decode(encodeCheckResponse(decide(v)))).find(
      (h) => h.header?.key === "x-keymesh-scopes",
    );
    expect(scopes).toMatchObject({ header: { value: "" }, keepEmptyValue: true });
  });
});

describe("createCheckResponseEncoder", () => {
  const cases: [string, Verdict][] = [
    ["a plain allow", allow()],
    ["an allow with limits and warnings", allow({ limits: [limit({ remaining: 3 })], warnings: ["w"] })],
    ["a 401", deny("not_found")],
    ["a 429", deny("rate_limited", { limits: [limit({ remaining: 0, retryAfterSeconds: 9 })] })],
  ];
  for (const [name, v] of cases) {
    it(`produces bytes that decode exactly like the uncached encoding for ${name}, cold and warm`, () => {
      const encoder = createCheckResponseEncoder();
      const expected = decode(encodeCheckResponse(decide(v)));
      for (let i = 0; i < 2; i++)
        expect(equals(CheckResponseSchema, decode(encoder.encode(decide(v))), expected)).toBe(true);
      expect(encoder.size).toBe(1);
    });
  }

  it("shares one cache entry between responses that differ only in rate-limit values", () => {
    const encoder = createCheckResponseEncoder();
    const a = decode(encoder.encode(decide(allow({ limits: [limit({ remaining: 5 })] }))));
    const b = decode(encoder.encode(decide(allow({ limits: [limit({ remaining: 4 })] }))));
    expect(encoder.size).toBe(1);
    const remaining = (r: CheckResponse) =>
      allHeaders(r).find((h) => h.header?.key === "x-ratelimit-remaining")?.header?.value;
    expect([remaining(a), remaining(b)]).toEqual(["5", "4"]);
  });

  it("never serves a stale identity: a changed scope under the same key id is re-encoded", () => {
    const encoder = createCheckResponseEncoder();
    encoder.encode(decide(allow()));
    const v = allow();
    if (v.kind === "allow") v.identity = { ...v.identity, scopes: ["pods:read"] };
    const res = decode(encoder.encode(decide(v)));
    expect(allHeaders(res).find((h) => h.header?.key === "x-keymesh-scopes")?.header?.value).toBe(
      "pods:read",
    );
    expect([encoder.hits, encoder.misses]).toEqual([0, 2]);
    encoder.encode(decide(v));
    expect(encoder.hits).toBe(1);
  });

  it("treats a caller-supplied cache key as a slot only, never serving another decision's bytes", () => {
    const encoder = createCheckResponseEncoder();
    encoder.encode(decide(deny("not_found")), "slot");
    expect(decode(encoder.encode(decide(deny("revoked")), "slot")).status?.message).toBe("denied: revoked");
    encoder.encode(decide(deny("revoked")), "slot");
    expect([encoder.hits, encoder.misses, encoder.size]).toEqual([1, 2, 1]);
  });

  it("evicts the least recently used entry when full, and caches nothing with size 0", () => {
    const encoder = createCheckResponseEncoder({ maxEntries: 2 });
    encoder.encode(decide(deny("missing")));
    encoder.encode(decide(deny("revoked")));
    encoder.encode(decide(deny("missing")));
    encoder.encode(decide(deny("expired")));
    expect([encoder.size, encoder.hits, encoder.misses]).toEqual([2, 1, 3]);
    encoder.encode(decide(deny("missing")));
    expect(encoder.hits).toBe(2);
    encoder.encode(decide(deny("revoked")));
    expect(encoder.misses).toBe(4);
    const none = createCheckResponseEncoder({ maxEntries: 0 });
    none.encode(decide(allow()));
    none.encode(decide(allow()));
    expect([none.size, none.hits]).toEqual([0, 0]);
  });

  it("encodes a large body whose length needs a multi-byte varint", () => {
    const message = "m".repeat(20_000);
    const d = decide(deny("insufficient_scope", { message, limits: [limit({ remaining: 0 })] }));
    d.responseHeaders.push(["retry-after", "1"]);
    const res = decode(createCheckResponseEncoder().encode(d));
    expect((res.httpResponse.value as { body: string }).body).toContain(message);
  });
});
