import { fromBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { HeaderValueOption_HeaderAppendAction } from "../../../../gen/envoy/config/core/v3/base_pb.js";
import {
  type CheckResponse,
  CheckResponseSchema,
} from "../../../../gen/envoy/service/auth/v3/external_auth_pb.js";
import type { Verdict } from "../../../../src/domain/verdict.js";
import { DEFAULT_DECISION_OPTIONS, verdictToDecision } from "../../../../src/transport/decision.js";
import { encodeCheckResponse } from "../../../../src/transport/envoy/wire/check-response.js";
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
