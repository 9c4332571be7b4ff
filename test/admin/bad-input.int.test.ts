/**
 * Bad input to KeyAdmin on a real server (needs Postgres): every request the server cannot or must not take is a
 * client error naming what is wrong, never a server fault, and the server keeps serving.
 */
import http2 from "node:http2";
import { type DescMessage, fromBinary, type Message, toBinary, toJsonString } from "@bufbuild/protobuf";
import { reflect } from "@bufbuild/protobuf/reflect";
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetKeyRequestSchema, KeyAdmin } from "../../gen/keymesh/v1/admin_pb.js";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { codeOf } from "../scenarios/support.js";
import { messageArbitrary } from "../support/proto-arbitrary.js";
import { slots } from "../support/proto-slots.js";
import { startTestServer, type TestServer } from "../support/server.js";

let t: TestServer;
let keySpaceId: string;
let workspaceId: string;
let memberId: string;

beforeAll(async () => {
  t = await startTestServer();
  const { keySpace } = await t.admin.createKeySpace({
    name: "inputs",
    format: { prefix: "in_", style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    scopeModel: { scopes: ["read"] },
  });
  keySpaceId = keySpace!.id;
  workspaceId = (await t.admin.createWorkspace({ name: "w", apiAccess: true })).workspace!.id;
  memberId = (await t.admin.addMember({ workspaceId, name: "m", role: "Developer" })).member!.id;
});

afterAll(async () => {
  await t?.stop();
});

interface Answer {
  status: number;
  code: string;
  message: string;
}

/** Calls a KeyAdmin method over the Connect protocol with the root key. */
async function connect(method: string, body: Uint8Array | string, type: "json" | "proto"): Promise<Answer> {
  const res = await fetch(`${t.httpUrl}/${KeyAdmin.typeName}/${method}`, {
    method: "POST",
    headers: {
      "content-type": `application/${type}`,
      "connect-protocol-version": "1",
      authorization: `Bearer ${t.rootKey}`,
    },
    body,
  });
  const text = await res.text();
  if (res.status === 200) return { status: 200, code: "ok", message: "" };
  const error = JSON.parse(text) as { code: string; message: string };
  return { status: res.status, code: error.code, message: error.message };
}

function envelope(bytes: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

/** Calls a KeyAdmin method over gRPC-web (HTTP/1.1) and reads the status from the trailer envelope. */
async function grpcWeb(method: string, bytes: Uint8Array): Promise<{ status: string; message: string }> {
  const res = await fetch(`${t.httpUrl}/${KeyAdmin.typeName}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto", authorization: `Bearer ${t.rootKey}` },
    body: envelope(bytes),
  });
  const body = Buffer.from(await res.arrayBuffer());
  let at = 0;
  while (at < body.length) {
    const length = body.readUInt32BE(at + 1);
    if (body[at] === 0x80) {
      const trailer = body.subarray(at + 5, at + 5 + length).toString("utf8");
      const field = (name: string) => new RegExp(`^${name}:\\s*(.*?)\\r?$`, "im").exec(trailer)?.[1] ?? "";
      return { status: field("grpc-status"), message: decodeURIComponent(field("grpc-message")) };
    }
    at += 5 + length;
  }
  return { status: res.headers.get("grpc-status") ?? "", message: res.headers.get("grpc-message") ?? "" };
}

/** Calls a KeyAdmin method over gRPC (HTTP/2 with prior knowledge) and reads the status from the trailers. */
function grpc(method: string, bytes: Uint8Array): Promise<{ status: string; message: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(t.httpUrl);
    session.on("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":path": `/${KeyAdmin.typeName}/${method}`,
      "content-type": "application/grpc+proto",
      te: "trailers",
      authorization: `Bearer ${t.rootKey}`,
    });
    let headers: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => {
      headers = h;
    });
    stream.on("trailers", (trailers) => {
      headers = { ...headers, ...trailers };
    });
    stream.resume();
    stream.on("end", () => {
      session.close();
      resolve({
        status: String(headers["grpc-status"] ?? ""),
        message: decodeURIComponent(String(headers["grpc-message"] ?? "")),
      });
    });
    stream.on("error", reject);
    stream.end(envelope(bytes));
  });
}

/** Bytes that are not a valid encoding of `desc`: random bytes, or a valid message whose string holds bad UTF-8. */
function unparseable(desc: DescMessage) {
  const random = fc.uint8Array({ minLength: 1, maxLength: 64 }).filter((bytes) => {
    try {
      fromBinary(desc, bytes);
      return false;
    } catch {
      return true;
    }
  });
  // Field 1 as a length-delimited string whose bytes are not UTF-8 (a lone continuation byte, an overlong form,
  // a surrogate encoded in three bytes).
  const badUtf8 = fc
    .tuple(fc.string({ maxLength: 8 }), fc.constantFrom([0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff]))
    .map(([text, bad]) => {
      const bytes = Buffer.concat([Buffer.from(text), Buffer.from(bad)]);
      return new Uint8Array(Buffer.concat([Buffer.from([0x0a, bytes.length]), bytes]));
    });
  return fc.oneof(random, badUtf8);
}

describe("KeyAdmin refuses bad input with a client error naming it (needs Postgres)", () => {
  it("a NUL in any string of any request, as JSON or binary, is INVALID_ARGUMENT naming the field", async () => {
    const dictionary = { key_space_id: [keySpaceId], workspace_id: [workspaceId], member_id: [memberId] };
    const poisoned = fc
      .constantFrom(...KeyAdmin.methods)
      .chain((m) => fc.tuple(fc.constant(m), messageArbitrary(m.input, { clean: true, dictionary })))
      .filter(([m, message]) => slots(reflect(m.input, message)).length > 0)
      .chain(([m, message]) =>
        fc.tuple(
          fc.constant(m),
          fc.constant(message),
          fc.nat(slots(reflect(m.input, message)).length - 1),
          fc.string({ maxLength: 4 }),
        ),
      );
    await fc.assert(
      fc.asyncProperty(poisoned, async ([method, message, index, around]) => {
        const slot = slots(reflect(method.input, message as Message))[index]!;
        const bad = `${around}\u0000${around}`;
        slot.set(bad);
        const field = slot.keyPath ? slot.keyPath(bad) : slot.path;
        for (const [body, type] of [
          [toBinary(method.input, message), "proto"],
          [toJsonString(method.input, message), "json"],
        ] as const) {
          const answer = await connect(method.name, body, type);
          expect(answer.code, `${method.name} ${type}: ${answer.message}`).toBe("invalid_argument");
          expect(answer.message).toContain(`${field}: `);
          expect(answer.message).toContain("NUL");
        }
      }),
      { seed: 14, numRuns: 60 },
    );
  });

  it("a page token the server did not issue is INVALID_ARGUMENT naming page_token, on every list", async () => {
    const tokens = fc.oneof(
      fc.constantFrom("9999999999999999999", "-1", "0x10", "%00"),
      fc.bigInt({ min: 2n ** 63n, max: 10n ** 19n - 1n }).map(String),
      fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !/^\d{1,18}$/.test(s)),
      fc
        .tuple(
          fc.oneof(
            fc
              .integer({ min: 10_000, max: 275_000 })
              .map((y) => `+${String(y).padStart(6, "0")}-01-01T00:00:00.000Z`),
            fc.constantFrom("0000-01-01T00:00:00.000Z", "2024-13-01T00:00:00.000Z", "yesterday"),
          ),
          fc.oneof(
            fc.constant("ws_1"),
            fc.string({ maxLength: 8 }).map((s) => `ws_${s}\u0000`),
          ),
        )
        .map(([at, id]) => Buffer.from(JSON.stringify({ at, id })).toString("base64url")),
    );
    const lists = ["ListKeySpaces", "ListWorkspaces", "ListKeys", "ListApprovals", "ListAuditEvents"];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...lists), tokens, async (method, pageToken) => {
        const answer = await connect(method, JSON.stringify({ pageToken }), "json");
        expect(answer.code, `${method} ${JSON.stringify(pageToken)}`).toBe("invalid_argument");
        expect(answer.message).toContain("page_token");
      }),
      { seed: 15, numRuns: 80 },
    );
  });

  it("the page tokens the server issues keep working", async () => {
    await t.admin.createWorkspace({ name: "w2" });
    const first = await t.admin.listWorkspaces({ pageSize: 1 });
    expect(first.nextPageToken).not.toBe("");
    await expect(
      t.admin.listWorkspaces({ pageSize: 1, pageToken: first.nextPageToken }),
    ).resolves.toBeDefined();
    const events = await t.admin.listAuditEvents({ pageSize: 1 });
    await expect(
      t.admin.listAuditEvents({ pageSize: 1, pageToken: events.nextPageToken }),
    ).resolves.toBeDefined();
  });

  it("invalid protobuf or invalid UTF-8 is INVALID_ARGUMENT over Connect, gRPC and gRPC-web", async () => {
    await fc.assert(
      fc.asyncProperty(unparseable(GetKeyRequestSchema), async (bytes) => {
        const overConnect = await connect("GetKey", bytes, "proto");
        expect(overConnect.code, overConnect.message).toBe("invalid_argument");
        expect((await grpcWeb("GetKey", bytes)).status).toBe(String(Code.InvalidArgument));
        expect((await grpc("GetKey", bytes)).status).toBe(String(Code.InvalidArgument));
      }),
      { seed: 16, numRuns: 40 },
    );
  });

  it("a JSON field the schema does not have is INVALID_ARGUMENT naming it, at any depth", async () => {
    const known = new Set(
      KeyAdmin.methods
        .flatMap((m) => m.input.fields.flatMap((f) => [f.name, f.jsonName]))
        .concat("prefix", "style"),
    );
    const unknown = fc
      .string({ minLength: 1, maxLength: 12 })
      .filter((k) => !known.has(k) && k !== "__proto__");
    await fc.assert(
      fc.asyncProperty(unknown, fc.boolean(), async (key, nested) => {
        const body = nested
          ? { name: "x", format: { style: "KEY_STYLE_SINGLE", [key]: 1 }, credentialSources: [{ kind: 1 }] }
          : { name: "x", [key]: true };
        const answer = await connect(
          nested ? "CreateKeySpace" : "CreateWorkspace",
          JSON.stringify(body),
          "json",
        );
        expect(answer.code).toBe("invalid_argument");
        expect(answer.message).toContain(`key "${key}" is unknown`);
      }),
      { seed: 17, numRuns: 40 },
    );
  });

  it("metadata is accepted up to 16 KiB as JSON and refused past it, naming metadata", async () => {
    const create = (metadata: Record<string, string>) =>
      t.admin.createKey({
        keySpaceId,
        workspaceId,
        ownerType: OwnerType.ORGANIZATION,
        name: "meta",
        scopes: ["read"],
        metadata,
      });
    // {"k":"…"} is 8 bytes around the value.
    const { key } = await create({ k: "x".repeat(16 * 1024 - 8) });
    expect(JSON.stringify(key!.metadata)).toHaveLength(16 * 1024);
    expect(await codeOf(create({ k: "x".repeat(16 * 1024 - 7) }))).toBe(Code.InvalidArgument);
    const large = await connect(
      "CreateKey",
      JSON.stringify({
        keySpaceId,
        workspaceId,
        ownerType: "OWNER_TYPE_ORGANIZATION",
        name: "m",
        metadata: { k: "x".repeat(100_000) },
      }),
      "json",
    );
    expect(large).toMatchObject({ code: "invalid_argument" });
    expect(large.message).toContain("metadata: must be at most 16384 bytes");
  });

  it("after all of it the server still serves", async () => {
    expect((await fetch(`${t.httpUrl}/healthz`)).status).toBe(200);
    await expect(t.admin.getKeySpace({ id: keySpaceId })).resolves.toBeDefined();
  });
});
