import { request as httpRequest } from "node:http";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../../gen/keymesh/v1/types_pb.js";
import { KeyVerify, VerifyCode } from "../../../gen/keymesh/v1/verify_pb.js";
import { errorOf } from "../../scenarios/support.js";
import { asHttp, createEnvoyClient } from "../../support/envoy-client.js";
import {
  encodedSeparator,
  insertInto,
  normalPath,
  segment,
  spellingsOf,
} from "../../support/path-spellings.js";
import { startTestServer, type TestServer } from "../../support/server.js";

// A billing:read key on `GET /billing/*` -> billing:read, `POST /billing/*` -> billing:write, asked through every
// entry point: Envoy gRPC Check, HTTP /authz (Envoy http_service and nginx auth_request forms) and KeyVerify
// (grpc-js and Connect). Every spelling of a request must be decided as the request, or refused as invalid_path.

let t: TestServer;
let envoy: ReturnType<typeof createEnvoyClient>;
let connectVerify: ReturnType<typeof createClient<typeof KeyVerify>>;
let secret: string;
let port: number;

beforeAll(async () => {
  // Decisions are compared, not timed: a generous deadline keeps a busy machine from turning one into 503.
  t = await startTestServer({ env: { KEYMESH_CHECK_DEADLINE_MS: "2000" } });
  envoy = createEnvoyClient(t.grpcAddress);
  connectVerify = createClient(KeyVerify, createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }));
  port = Number(new URL(t.httpUrl).port);
  const { keySpace } = await t.admin.createKeySpace({
    name: "billing",
    format: { prefix: "bill_", style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    scopeModel: { scopes: ["billing:read", "billing:write"] },
    routes: [
      { method: "GET", path: "/billing/*", scopes: ["billing:read"] },
      { method: "POST", path: "/billing/*", scopes: ["billing:write"] },
    ],
  });
  const { workspace } = await t.admin.createWorkspace({ name: "Acme", apiAccess: true });
  ({ secret } = await t.admin.createKey({
    keySpaceId: keySpace!.id,
    workspaceId: workspace!.id,
    ownerType: OwnerType.ORGANIZATION,
    name: "reader",
    scopes: ["billing:read"],
  }));
});

afterAll(async () => {
  envoy?.close();
  await t?.stop();
});

/** What one entry point decided: "allow" or the denial code, and the HTTP status where there is one. */
interface Outcome {
  code: string;
  status?: number;
}

function http(method: string, path: string, headers: Record<string, string>): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    // node:http sends the request target as given; fetch would resolve dot segments before sending.
    const req = httpRequest({ host: "127.0.0.1", port, method, path, headers }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => {
        const status = res.statusCode ?? 0;
        resolve({
          status,
          code: status === 200 ? "allow" : (JSON.parse(body) as { error: { code: string } }).error.code,
        });
      });
    });
    req.on("error", reject);
    req.end();
  });
}

const verifyCode = (code: VerifyCode): string =>
  code === VerifyCode.VALID ? "allow" : VerifyCode[code]!.toLowerCase();

const authorization = () => `Bearer ${secret}`;

/** Each entry point, asked the same request. */
const transports: Record<string, (method: string, path: string) => Promise<Outcome>> = {
  async "gRPC Check"(method, path) {
    const view = asHttp(
      await envoy.check({
        method,
        path,
        headers: { authorization: authorization() },
        contextExtensions: { "keymesh.key_space": "billing" },
      }),
    );
    return { status: view.status, code: view.status === 200 ? "allow" : errorOf(view).code };
  },
  "HTTP /authz under the prefix (Envoy http_service)": (method, path) =>
    http(method, `/authz${path}`, { authorization: authorization(), "x-keymesh-key-space": "billing" }),
  "HTTP /authz with X-Original-URI (nginx auth_request)": (method, path) =>
    http("GET", "/authz?key_space=billing", {
      authorization: authorization(),
      "x-original-method": method,
      "x-original-uri": path,
    }),
  async "KeyVerify over grpc-js"(method, path) {
    const res = await t.verify.verify({ key: secret, keySpaceId: "billing", method, path });
    return { code: verifyCode(res.code) };
  },
  async "KeyVerify over Connect"(method, path) {
    const res = await connectVerify.verify({ key: secret, keySpaceId: "billing", method, path });
    return { code: verifyCode(res.code) };
  },
};

const STATUS: Record<string, number> = {
  allow: 200,
  insufficient_scope: 403,
  no_route: 403,
  invalid_path: 400,
};

async function everywhere(method: string, path: string): Promise<string> {
  const outcomes = await Promise.all(
    Object.entries(transports).map(async ([name, ask]) => ({ name, ...(await ask(method, path)) })),
  );
  const code = outcomes[0]!.code;
  for (const o of outcomes) {
    expect(o.code, `${o.name}: ${method} ${path}`).toBe(code);
    if (o.status !== undefined) expect(o.status, `${o.name}: ${method} ${path}`).toBe(STATUS[code]);
  }
  return code;
}

describe("route rules against other spellings of a path, over gRPC Check, /authz and KeyVerify (needs Postgres)", () => {
  it("refuses POST /billing/x however the report spelled it, on every entry point", async () => {
    for (const path of [
      "/billing/x",
      "/billing//x",
      "/billing/./x",
      "/x/../billing/x",
      "/billing/%2e/x",
      "/%62illing/x",
      "/BILLING/x",
      "/billing/x?y=1",
    ]) {
      expect(["insufficient_scope", "no_route"]).toContain(await everywhere("POST", path));
    }
    expect(await everywhere("POST", "/billing%2Fx")).toBe("invalid_path");
    expect(await everywhere("POST", "/billing/x/../../../billing/x")).toBe("invalid_path");
    expect(await everywhere("GET", "/billing/%2e/x")).toBe("allow");
    expect(await everywhere("GET", "/elsewhere")).toBe("no_route");
  });

  it("property: every entry point decides a spelling of a request as the request, or refuses it as invalid_path", async () => {
    const path = fc.oneof(
      normalPath,
      segment.map((s) => `/billing/${s}`),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("GET", "POST", "PUT"),
        spellingsOf(path),
        async (method, { path: p, spelling }) => {
          const expected = await everywhere(method, p);
          const got = await everywhere(method, spelling.path);
          if (got !== "invalid_path") expect(got).toBe(expected);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("property: no spelling of POST /billing/<x> is allowed for a billing:read key on any entry point", async () => {
    await fc.assert(
      fc.asyncProperty(spellingsOf(segment.map((s) => `/billing/${s}`)), async ({ spelling }) => {
        expect(["insufficient_scope", "invalid_path"]).toContain(await everywhere("POST", spelling.path));
      }),
      { numRuns: 100 },
    );
  });

  it("property: an encoded slash or backslash in any spelling is refused with 400 invalid_path on every entry point", async () => {
    await fc.assert(
      fc.asyncProperty(
        spellingsOf(segment.map((s) => `/billing/${s}`)),
        encodedSeparator,
        fc.nat(),
        async ({ spelling }, bad, at) => {
          expect(await everywhere("GET", insertInto(spelling.path, bad, at))).toBe("invalid_path");
        },
      ),
      { numRuns: 100 },
    );
  });
});
