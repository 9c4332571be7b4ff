import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import type { AttributeContext_HttpRequestSchema } from "../../../../gen/envoy/service/auth/v3/attribute_context_pb.js";
import { CheckRequestSchema } from "../../../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { decodeCheckRequest } from "../../../../src/transport/envoy/wire/check-decode.js";

type Http = MessageInitShape<typeof AttributeContext_HttpRequestSchema>;

function encode(http: Http | undefined, contextExtensions: Record<string, string> = {}): Uint8Array {
  return toBinary(
    CheckRequestSchema,
    create(CheckRequestSchema, {
      attributes: {
        source: {
          address: {
            address: {
              case: "socketAddress",
              value: { address: "10.0.0.1", portSpecifier: { case: "portValue", value: 5555 } },
            },
          },
        },
        request: { time: { seconds: 1700000000n }, http },
        contextExtensions,
        metadataContext: { filterMetadata: { "envoy.lb": { canary: true } } },
        tlsSession: { sni: "api.example.com" },
      },
    }),
  );
}

function decodeOk(bytes: Uint8Array) {
  const result = decodeCheckRequest(bytes);
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.request;
}

/** Raw protobuf building blocks for hand-made wire bytes. */
const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
};
const len = (field: number, payload: number[]): number[] => [
  ...varint(field * 8 + 2),
  ...varint(payload.length),
  ...payload,
];
const str = (field: number, s: string): number[] => len(field, [...Buffer.from(s, "utf8")]);
/** CheckRequest{attributes{request{http{...}}}} around raw HttpRequest field bytes. */
const wrapHttp = (http: number[], attributesExtra: number[] = []): Uint8Array =>
  new Uint8Array(len(1, [...len(4, len(2, http)), ...attributesExtra]));

describe("decodeCheckRequest", () => {
  it("reads method, path, lower-cased headers and the keymesh context extensions", () => {
    const req = decodeOk(
      encode(
        {
          id: "123",
          method: "POST",
          path: "/v1/pods?watch=1",
          host: "api.example.com",
          headers: { Authorization: "Bearer abc", ":path": "/v1/pods?watch=1", "X-Custom": "1" },
          size: 42n,
          protocol: "HTTP/2",
        },
        {
          "keymesh.key_space": "pods",
          "keymesh.scope": "pods:read, pods:write  admin",
          "keymesh.cost": "5",
          other: "x",
        },
      ),
    );
    expect(req).toMatchObject({
      keySpace: "pods",
      scopes: ["pods:read", "pods:write", "admin"],
      method: "POST",
      path: "/v1/pods?watch=1",
      cost: 5,
    });
    expect(req.headers.get("authorization")).toBe("Bearer abc");
    expect(req.headers.get("x-custom")).toBe("1");
    expect(req.body).toBeUndefined();
  });

  it("defaults key space, scopes and cost, and treats a non-integer cost as 0", () => {
    const req = decodeOk(encode({ method: "GET", path: "/" }, { "keymesh.cost": "2.5" }));
    expect(req).toMatchObject({ keySpace: "", scopes: [], cost: 0 });
    expect(decodeOk(encode({ method: "GET" }, { "keymesh.cost": "-3" })).cost).toBe(0);
  });

  it("reads header_map, preferring value and falling back to raw_value, folding repeats", () => {
    const req = decodeOk(
      encode({
        method: "GET",
        headerMap: {
          headers: [
            { key: "Authorization", rawValue: Buffer.from("Bearer raw") },
            { key: "x-a", value: "1" },
            { key: "x-a", rawValue: Buffer.from("2") },
            { key: "x-b", value: "v", rawValue: Buffer.from("ignored") },
          ],
        },
      }),
    );
    expect(req.headers.get("authorization")).toBe("Bearer raw");
    expect(req.headers.get("x-a")).toBe("1,2");
    expect(req.headers.get("x-b")).toBe("v");
  });

  it("answers header lookups, before and after iterating, as a map of every decoded header would", () => {
    const bytes = () =>
      wrapHttp([
        ...len(3, [...str(1, "X-Api-Key"), ...str(2, "k1")]),
        ...len(3, [...str(1, "x-api-key"), ...str(2, "k2")]),
        ...len(13, len(1, [...str(1, "X-API-KEY"), ...str(2, "k3")])),
        ...len(13, len(1, [...str(1, "Accept"), ...str(3, "json")])),
        // The Kelvin sign lower-cases to an ASCII "k": a name is matched as decoded text, not as bytes.
        ...len(3, [...str(1, "x-api-\u212Aey"), ...str(2, "k4")]),
        ...len(3, [...str(1, "x-api-ke"), ...str(2, "short")]),
        ...str(2, "GET"),
      ]);
    const expected = new Map([
      ["x-api-key", "k4"],
      ["accept", "json"],
      ["x-api-ke", "short"],
    ]);
    const lazy = decodeOk(bytes()).headers;
    for (const name of [...expected.keys(), "x-api-kez", "X-Api-Key", "missing"]) {
      expect(lazy.get(name)).toBe(expected.get(name));
      expect(lazy.has(name)).toBe(expected.has(name));
    }
    // Before the Kelvin entry the three spellings fold to "k2,k3": a map entry replaces, header_map folds.
    const folded = decodeOk(
      wrapHttp([
        ...len(3, [...str(1, "X-Api-Key"), ...str(2, "k1")]),
        ...len(3, [...str(1, "x-api-key"), ...str(2, "k2")]),
        ...len(13, len(1, [...str(1, "X-API-KEY"), ...str(2, "k3")])),
      ]),
    ).headers;
    expect(folded.get("x-api-key")).toBe("k2,k3");
    const iterated = decodeOk(bytes()).headers;
    expect(new Map(iterated)).toEqual(expected);
    expect(iterated.size).toBe(3);
    expect(iterated.get("accept")).toBe("json");
  });

  it("keeps each request's headers its own, however many there are and whatever is decoded next", () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 300; i++) many[`x-h${i}`] = `v${i}`;
    const big = decodeOk(encode({ method: "GET", headers: many }));
    const small = decodeOk(encode({ method: "GET", headers: { "x-h0": "other" } }));
    expect(big.headers.get("x-h299")).toBe("v299");
    expect(big.headers.get("x-h0")).toBe("v0");
    expect(big.headers.size).toBe(300);
    expect(small.headers.get("x-h0")).toBe("other");
    expect(small.headers.get("x-h299")).toBeUndefined();
  });

  it("passes the body, preferring raw_body over body", () => {
    expect(Buffer.from(decodeOk(encode({ body: "hello" })).body!).toString()).toBe("hello");
    const both = decodeOk(encode({ body: "text", rawBody: new Uint8Array([0, 255, 1]) }));
    expect([...both.body!]).toEqual([0, 255, 1]);
  });

  it("keeps an empty credential as an empty header value for the authorizer to reject", () => {
    expect(decodeOk(encode({ headers: { authorization: "" } })).headers.get("authorization")).toBe("");
  });

  it("decodes invalid UTF-8 with replacement characters instead of throwing", () => {
    const bytes = wrapHttp([
      ...len(3, [...str(1, "authorization"), ...len(2, [0x42, 0xff, 0xfe, 0xc3])]),
      ...str(2, "GET"),
    ]);
    const req = decodeOk(bytes);
    expect(req.headers.get("authorization")).toBe("B\ufffd\ufffd\ufffd");
    expect(req.method).toBe("GET");
  });

  it("skips unknown fields of every wire type, including nested groups", () => {
    const unknown = [
      ...varint(99 * 8 + 0),
      ...varint(2 ** 31),
      ...varint(98 * 8 + 1),
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
      ...varint(97 * 8 + 5),
      1,
      2,
      3,
      4,
      ...len(96, [1, 2, 3]),
      // group 95 { group 94 { varint 1 } }
      ...varint(95 * 8 + 3),
      ...varint(94 * 8 + 3),
      ...varint(1 * 8 + 0),
      1,
      ...varint(94 * 8 + 4),
      ...varint(95 * 8 + 4),
    ];
    const bytes = wrapHttp([...unknown, ...str(2, "PUT"), ...unknown, ...str(4, "/x")], unknown);
    expect(decodeOk(bytes)).toMatchObject({ method: "PUT", path: "/x" });
  });

  it("treats a known field number with the wrong wire type as unknown", () => {
    const bytes = wrapHttp([...varint(2 * 8 + 0), 5, ...str(4, "/ok")]);
    expect(decodeOk(bytes)).toMatchObject({ method: "", path: "/ok" });
  });

  it("merges repeated occurrences of singular message fields as protobuf does", () => {
    const bytes = new Uint8Array([...wrapHttp(str(2, "GET")), ...wrapHttp(str(4, "/later"))]);
    expect(decodeOk(bytes)).toMatchObject({ method: "GET", path: "/later" });
  });

  it("reads only keymesh's own context extensions, a later entry for a key replacing an earlier one", () => {
    const first = encode({ method: "GET" }, { "keymesh.key_space": "early", "keymesh.cost": "7" });
    const later = encode(undefined, {
      "keymesh.key_space": " late ",
      "Keymesh.scope": "upper:case",
      "keymesh.scop": "short",
      "keymesh.scope.x": "long",
    });
    const req = decodeOk(new Uint8Array([...first, ...later]));
    expect(req).toMatchObject({ keySpace: "late", cost: 7, scopes: [] });
  });

  it("rejects a request without HTTP attributes", () => {
    expect(decodeCheckRequest(new Uint8Array(0))).toEqual({
      ok: false,
      reason: "no HTTP request attributes",
    });
    expect(decodeCheckRequest(encode(undefined)).ok).toBe(false);
  });

  it("rejects every truncation of a valid request cleanly, never throwing", () => {
    const bytes = encode(
      { method: "GET", path: "/v1", headers: { authorization: "Bearer abc" } },
      { a: "b" },
    );
    // CheckRequest is a single length-delimited field, so every proper prefix is truncated.
    for (let cut = 1; cut < bytes.length; cut++)
      expect(decodeCheckRequest(bytes.subarray(0, cut)).ok).toBe(false);
  });

  it("rejects garbage, invalid wire types, bad groups and over-long varints", () => {
    const cases: number[][] = [
      [0xff, 0xff, 0xff],
      [0x0f],
      [0x07, 0x00],
      [0x00, 0x01],
      [...varint(5 * 8 + 4)],
      [...varint(5 * 8 + 3), ...varint(6 * 8 + 4)],
      [...varint(5 * 8 + 3)],
      [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
      [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
    ];
    for (const bytes of cases) expect(decodeCheckRequest(new Uint8Array(bytes)).ok).toBe(false);
  });

  it("survives random bytes without throwing", () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed & 0xff;
    };
    for (let i = 0; i < 2000; i++) {
      const bytes = new Uint8Array(1 + (random() % 64)).map(random);
      expect(() => decodeCheckRequest(bytes)).not.toThrow();
    }
  });

  it("rejects headers beyond the 64 KiB budget as malformed", () => {
    const big = { authorization: `Bearer ${"x".repeat(70_000)}` };
    expect(decodeCheckRequest(encode({ method: "GET", headers: big }))).toEqual({
      ok: false,
      reason: "headers too large",
    });
    const many: Record<string, string> = {};
    for (let i = 0; i < 700; i++) many[`x-h-${i}`] = "v".repeat(100);
    expect(decodeCheckRequest(encode({ headers: many })).ok).toBe(false);
    expect(
      decodeOk(encode({ headers: { authorization: `Bearer ${"x".repeat(60_000)}` } })).headers.size,
    ).toBe(1);
  });

  it("honours custom limits, including the path limit", () => {
    const bytes = encode({ path: `/${"p".repeat(100)}`, headers: { a: "b".repeat(100) } });
    expect(decodeCheckRequest(bytes, { maxHeaderBytes: 50, maxPathBytes: 1000 })).toEqual({
      ok: false,
      reason: "headers too large",
    });
    expect(decodeCheckRequest(bytes, { maxHeaderBytes: 1000, maxPathBytes: 50 })).toEqual({
      ok: false,
      reason: "path too long",
    });
  });

  it("accepts a Buffer view into a larger buffer", () => {
    const bytes = encode({ method: "DELETE" });
    const padded = Buffer.concat([Buffer.from([1, 2, 3]), Buffer.from(bytes)]);
    expect(decodeOk(padded.subarray(3)).method).toBe("DELETE");
  });
});
