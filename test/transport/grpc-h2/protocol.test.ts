/** The gRPC header formats and message prefix (src/transport/grpc-h2/protocol.ts); no Postgres, no Redis. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeGrpcMessage,
  encodeGrpcMessage,
  envelope,
  isGrpcContentType,
  parseEncoding,
  parseTimeout,
} from "../../../src/transport/grpc-h2/protocol.js";

describe("grpc-message percent-encoding", () => {
  it("encodes any text to printable ASCII that decodes back to the same text (property)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), (text) => {
        const encoded = encodeGrpcMessage(text);
        expect(encoded).toMatch(/^[\x20-\x7e]*$/);
        expect(decodeGrpcMessage(encoded)).toBe(text);
      }),
    );
  });

  it("leaves plain ASCII as it is and escapes the percent sign", () => {
    expect(encodeGrpcMessage("unknown method /a.B/C")).toBe("unknown method /a.B/C");
    expect(encodeGrpcMessage("100% é\n")).toBe("100%25 %C3%A9%0A");
  });
});

describe("grpc-timeout", () => {
  it("reads every unit and refuses what the spec does not allow", () => {
    expect(parseTimeout(undefined)).toBeUndefined();
    expect(parseTimeout("2H")).toBe(7_200_000);
    expect(parseTimeout("3M")).toBe(180_000);
    expect(parseTimeout("1S")).toBe(1000);
    expect(parseTimeout("250m")).toBe(250);
    expect(parseTimeout("1500u")).toBe(1.5);
    expect(parseTimeout("99999999n")).toBeCloseTo(99.999999);
    for (const bad of ["", "m", "1", "123456789m", "1.5S", "-1S", "1s", "1 S", " 1S", "1SS"]) {
      expect(parseTimeout(bad)).toBeNaN();
    }
  });

  it("accepts exactly 1 to 8 digits and one unit (property)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), (value) => {
        const valid = /^[0-9]{1,8}[HMSmun]$/.test(value);
        expect(Number.isNaN(parseTimeout(value))).toBe(!valid);
      }),
    );
  });
});

describe("content-type, encoding and the message prefix", () => {
  it("recognises gRPC content types and supported encodings", () => {
    for (const ok of ["application/grpc", "application/grpc+proto", "application/grpc; charset=utf-8"]) {
      expect(isGrpcContentType(ok)).toBe(true);
    }
    for (const bad of [
      undefined,
      "application/json",
      "application/grpc+json",
      "application/grpcx",
      "text/grpc",
    ]) {
      expect(isGrpcContentType(bad)).toBe(false);
    }
    expect(parseEncoding(undefined)).toBe("identity");
    expect(parseEncoding("gzip")).toBe("gzip");
    expect(parseEncoding("br")).toBeUndefined();
  });

  it("prefixes a message with flag 0 and its big-endian length", () => {
    const framed = envelope(new Uint8Array([1, 2, 3]));
    expect([...framed]).toEqual([0, 0, 0, 0, 3, 1, 2, 3]);
  });
});
