/** Unit test (no Postgres, no Redis): the prepared encoding decodes exactly like the protobuf-es reference. */
import { equals, fromBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  type CheckResponse,
  CheckResponseSchema,
} from "../../../../gen/envoy/service/auth/v3/external_auth_pb.js";
import type { Verdict } from "../../../../src/domain/verdict.js";
import {
  DEFAULT_DECISION_OPTIONS,
  RATE_LIMIT_HEADER_NAMES,
  rateLimitFigures,
  VOLATILE_HEADERS,
  verdictToDecision,
  volatileHeaders,
} from "../../../../src/transport/decision.js";
import { encodeCheckResponse } from "../../../../src/transport/envoy/wire/check-response.js";
import {
  completeCheckResponse,
  completeCheckResponseWithIntegers,
  prepareCheckResponse,
} from "../../../../src/transport/envoy/wire/check-response-parts.js";
import { allow, deny, limit } from "../../fixtures.js";

const NOW = 1_900_000_000;
const decide = (v: Verdict) => verdictToDecision(v, DEFAULT_DECISION_OPTIONS, NOW);
const decode = (bytes: Uint8Array) => fromBinary(CheckResponseSchema, bytes);
const reference = (v: Verdict) => decode(encodeCheckResponse(decide(v)));
const spliced = (v: Verdict) =>
  decode(completeCheckResponse(prepareCheckResponse(decide(v)), volatileHeaders(v, NOW)));

function responseHeaders(res: CheckResponse) {
  const r = res.httpResponse;
  if (r.case === "okResponse") return r.value.responseHeadersToAdd;
  if (r.case === "deniedResponse") return r.value.headers;
  return [];
}

describe("prepareCheckResponse and completeCheckResponse", () => {
  const cases: [string, Verdict][] = [
    ["a plain allow", allow()],
    ["an allow with limits and warnings", allow({ limits: [limit({ remaining: 3 })], warnings: ["w"] })],
    ["a 401", deny("not_found")],
    ["a 429", deny("rate_limited", { limits: [limit({ remaining: 0, retryAfterSeconds: 9 })] })],
    [
      "a 202 with an approval ticket",
      deny("approval_required", { approval: { id: "apr_1", status: "pending" } }),
    ],
  ];
  for (const [name, v] of cases) {
    it(`produce bytes that decode exactly like the protobuf-es encoding for ${name}`, () => {
      expect(equals(CheckResponseSchema, spliced(v), reference(v))).toBe(true);
    });
  }

  it("leave every volatile header out of the prepared part, so one part serves every rate-limit value", () => {
    const fixed = prepareCheckResponse(decide(allow({ limits: [limit({ remaining: 5 })] })));
    for (const remaining of [5, 4, 0]) {
      const v = allow({ limits: [limit({ remaining })] });
      const res = decode(completeCheckResponse(fixed, volatileHeaders(v, NOW)));
      expect(equals(CheckResponseSchema, res, reference(v))).toBe(true);
    }
    const bare = decode(completeCheckResponse(fixed, []));
    expect(responseHeaders(bare).filter((h) => VOLATILE_HEADERS.has(h.header?.key ?? ""))).toEqual([]);
  });

  it("write whole-number figures as the same bytes as their decimal strings", () => {
    const v = allow({ limits: [limit({ limit: 1_000_000_000, remaining: 0, resetAt: 2_000_000_123 })] });
    const fixed = prepareCheckResponse(decide(v));
    const names = RATE_LIMIT_HEADER_NAMES.map((n) => Buffer.from(n));
    const figures = rateLimitFigures(v.kind === "allow" ? v.limits : [])!;
    expect(Buffer.from(completeCheckResponseWithIntegers(fixed, names, figures))).toEqual(
      Buffer.from(completeCheckResponse(fixed, volatileHeaders(v, NOW))),
    );
  });

  it("encode a large body whose length needs a multi-byte varint", () => {
    const message = "m".repeat(20_000);
    const v = deny("rate_limited", { message, limits: [limit({ remaining: 0, retryAfterSeconds: 1 })] });
    const res = spliced(v);
    expect((res.httpResponse.value as { body: string }).body).toContain(message);
    expect(equals(CheckResponseSchema, res, reference(v))).toBe(true);
  });
});
