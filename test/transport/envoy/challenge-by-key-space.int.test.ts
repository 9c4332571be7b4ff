/**
 * A 401 challenges for the credential sources of the key space that judged it, over Envoy Check and /authz alike
 * (needs Postgres). Key spaces with generated source lists are created through KeyAdmin; each is then asked without
 * a key and with a key it does not know, interleaved so that a cached denial of one key space cannot answer another.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle } from "../../../gen/keymesh/v1/types_pb.js";
import { parseChallenges } from "../../support/challenges.js";
import { createOfficialEnvoyClient, headerOf } from "../../support/official-envoy-client.js";
import { startTestServer, type TestServer } from "../../support/server.js";

type Source = { kind: "bearer" } | { kind: "basic" } | { kind: "header"; header: string };

const headerName = fc.stringMatching(/^x-[a-z0-9-]{1,20}$/);
const sourceArb: fc.Arbitrary<Source> = fc.oneof(
  fc.constant<Source>({ kind: "bearer" }),
  fc.constant<Source>({ kind: "basic" }),
  headerName.map((header): Source => ({ kind: "header", header })),
);

const kindOf = {
  bearer: CredentialSourceKind.BEARER,
  basic: CredentialSourceKind.BASIC,
  header: CredentialSourceKind.HEADER,
};

/** What a client is told to send, per challenge: the scheme, or the header for a custom-header source. */
function expectedChallenges(sources: Source[]): string[] {
  const out: string[] = [];
  for (const s of sources) {
    const name = s.kind === "header" ? `ApiKey ${s.header}` : s.kind === "basic" ? "Basic" : "Bearer";
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

function described(value: string | null | undefined): string[] {
  return parseChallenges(value ?? "").map((c) =>
    c.scheme === "ApiKey" ? `ApiKey ${c.params.header}` : c.scheme,
  );
}

/** A credential of the right shape for the first source, that no key space issued. */
function unknownCredential(source: Source): Record<string, string> {
  if (source.kind === "header") return { [source.header]: "ch_0123456789abcdefghijklmnopqrstuv" };
  if (source.kind === "basic")
    return { authorization: `Basic ${Buffer.from("ch_id:0123456789abcdefghijkl").toString("base64")}` };
  return { authorization: "Bearer ch_0123456789abcdefghijklmnopqrstuv" };
}

let t: TestServer;
let envoy: ReturnType<typeof createOfficialEnvoyClient>;
const spaces: { name: string; sources: Source[] }[] = [];

beforeAll(async () => {
  t = await startTestServer();
  envoy = createOfficialEnvoyClient(t.grpcAddress);
  const configurations = fc.sample(fc.array(sourceArb, { minLength: 1, maxLength: 4 }), {
    numRuns: 14,
    seed: 16,
  });
  // The three single-source cases always run, whatever the generator draws.
  configurations.push([{ kind: "bearer" }], [{ kind: "basic" }], [{ kind: "header", header: "x-api-key" }]);
  for (const [i, sources] of configurations.entries()) {
    const name = `challenge${i}`;
    await t.admin.createKeySpace({
      name,
      format: { prefix: "ch_", style: KeyStyle.SINGLE },
      credentialSources: sources.map((s) =>
        s.kind === "header" ? { kind: kindOf.header, header: s.header } : { kind: kindOf[s.kind] },
      ),
    });
    spaces.push({ name, sources });
  }
});

afterAll(async () => {
  envoy?.close();
  await t?.stop();
});

async function viaEnvoy(space: string, headers: Record<string, string>) {
  const res = await envoy.check({
    path: "/v1/things",
    headers,
    contextExtensions: { "keymesh.key_space": space },
  });
  expect(res.status?.code).toBe(16);
  expect(res.denied_response?.status?.code).toBe("Unauthorized");
  return headerOf(res.denied_response?.headers, "www-authenticate");
}

async function viaAuthz(space: string, headers: Record<string, string>) {
  const res = await fetch(`${t.httpUrl}/authz?key_space=${space}`, {
    headers: { ...headers, "x-original-method": "GET", "x-original-uri": "/v1/things" },
  });
  expect(res.status).toBe(401);
  return res.headers.get("www-authenticate");
}

describe("WWW-Authenticate per key space over Envoy Check and /authz (Postgres)", () => {
  it("challenges a request without a key for exactly the sources of its key space, in order", async () => {
    // Twice over every key space, interleaved: the second round is answered from the encoded-denial cache.
    for (let round = 0; round < 2; round++) {
      for (const { name, sources } of spaces) {
        expect(described(await viaEnvoy(name, {})), name).toEqual(expectedChallenges(sources));
        expect(described(await viaAuthz(name, {})), name).toEqual(expectedChallenges(sources));
      }
    }
  });

  it("challenges an unknown key the same way, with invalid_token only on a Bearer challenge", async () => {
    for (const { name, sources } of spaces) {
      const credential = unknownCredential(sources[0]!);
      for (const value of [await viaEnvoy(name, credential), await viaAuthz(name, credential)]) {
        const parsed = parseChallenges(value ?? "");
        expect(described(value), name).toEqual(expectedChallenges(sources));
        for (const c of parsed)
          expect(c.params.error).toBe(c.scheme === "Bearer" ? "invalid_token" : undefined);
      }
    }
  });

  it("a key space that reads only custom headers is never challenged with Basic or Bearer", async () => {
    const headerOnly = spaces.filter((s) => s.sources.every((x) => x.kind === "header"));
    expect(headerOnly.length).toBeGreaterThan(0);
    for (const { name } of headerOnly) {
      for (const value of [await viaEnvoy(name, {}), await viaAuthz(name, {})])
        expect(value).not.toMatch(/\b(Basic|Bearer)\b/);
    }
  });

  it("an unknown key space falls back to the deployment's Bearer challenge", async () => {
    expect(described(await viaEnvoy("no-such-space", {}))).toEqual(["Bearer"]);
    expect(described(await viaAuthz("no-such-space", {}))).toEqual(["Bearer"]);
  });
});
