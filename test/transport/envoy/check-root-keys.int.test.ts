import { request as httpRequest } from "node:http";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle } from "../../../gen/keymesh/v1/types_pb.js";
import { VerifyCode } from "../../../gen/keymesh/v1/verify_pb.js";
import { ROOT_KEY_SPACE_ID } from "../../../src/admin/admin-policy.js";
import { asHttp, createEnvoyClient } from "../../support/envoy-client.js";
import { startTestServer, type TestServer } from "../../support/server.js";

// Root keys authenticate KeyAdmin only. Whatever key space a request names on the data plane (by the system key
// space's id or name, by a route's context extension, or by none at all), a root key is answered as an unknown key.

let t: TestServer;
let envoy: ReturnType<typeof createEnvoyClient>;
let port: number;
let systemName: string;

beforeAll(async () => {
  t = await startTestServer({ env: { KEYMESH_CHECK_DEADLINE_MS: "2000" } });
  envoy = createEnvoyClient(t.grpcAddress);
  port = Number(new URL(t.httpUrl).port);
  const { keySpace } = await t.admin.getKeySpace({ id: ROOT_KEY_SPACE_ID });
  systemName = keySpace!.name;
  // A customer key space whose credential source and layout would also read a root key's Bearer header.
  await t.admin.createKeySpace({
    name: "customer",
    format: { prefix: "cust_", style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
  });
});

afterAll(async () => {
  envoy?.close();
  await t?.stop();
});

function authz(keySpace: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const query = keySpace ? `?key_space=${encodeURIComponent(keySpace)}` : "";
    const req = httpRequest(
      {
        host: "127.0.0.1",
        port,
        method: "GET",
        path: `/authz${query}`,
        headers: { authorization: `Bearer ${key}`, "x-original-method": "GET", "x-original-uri": "/v1/x" },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("root keys on the data plane (needs Postgres)", () => {
  it("the root key still authenticates KeyAdmin", async () => {
    await expect(t.admin.listKeySpaces({})).resolves.toBeDefined();
  });

  it("property: a root key is refused as not_found by Check, /authz and KeyVerify, however the key space is named", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(ROOT_KEY_SPACE_ID, systemName, "", "customer"),
        fc.constantFrom("GET", "POST", "DELETE"),
        async (keySpace, method) => {
          const check = asHttp(
            await envoy.check({
              method,
              path: "/v1/x",
              headers: { authorization: `Bearer ${t.rootKey}` },
              contextExtensions: keySpace ? { "keymesh.key_space": keySpace } : {},
            }),
          );
          expect(check.status, `Check naming "${keySpace}"`).toBe(401);
          expect(await authz(keySpace, t.rootKey), `/authz naming "${keySpace}"`).toBe(401);
          // KeyVerify requires a key space, so an empty one is a bad request rather than a verdict.
          if (keySpace) {
            const verified = await t.verify.verify({
              key: t.rootKey,
              keySpaceId: keySpace,
              method,
              path: "/v1/x",
            });
            // The system key space answers as an unknown one; a customer one finds the root key malformed.
            const expected = keySpace === "customer" ? VerifyCode.MALFORMED : VerifyCode.NOT_FOUND;
            expect(verified.code, `KeyVerify naming "${keySpace}"`).toBe(expected);
          }
        },
      ),
      { numRuns: 24 },
    );
  });
});
