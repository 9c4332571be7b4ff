/**
 * In-process cost of the Check handler, without gRPC or HTTP/2: `npx tsx bench/check-handler.ts [rounds]`.
 * Calls createCheckHandler with canned CheckRequest bytes for an unlimited valid key, a malformed key and a revoked
 * key (both kept in the key cache, so no scenario awaits I/O) and prints the median ns per Check over the rounds.
 */
import { createKeyCache } from "../src/cache/key-cache.js";
import { createAuthorizer } from "../src/domain/authorizer.js";
import { createDigester } from "../src/domain/digest.js";
import type { KeyEntry } from "../src/domain/key-entry.js";
import { mintKey } from "../src/domain/key-format.js";
import type { Key, KeySpace, Workspace } from "../src/domain/types.js";
import {
  createMemoryKeyLookup,
  createMemoryKeySpaces,
  createMemoryUsage,
} from "../src/store/memory-lookup.js";
import { createCheckHandler } from "../src/transport/envoy/check-service.js";
import { buildCheckRequest } from "./fixtures.js";

const digest = createDigester("p".repeat(32));
const now = new Date();
const space: KeySpace = {
  id: "ks_bench",
  name: "bench",
  format: { prefix: "km_live_", workspaceSegment: false, style: "single", secretBytes: 0, idPrefix: "" },
  credentialSources: [{ kind: "bearer" }],
  scopeModel: { scopes: ["pods:read"], hierarchies: [], ladders: [], fullAccessScope: "" },
  defaultKeyLimits: [],
  defaultWorkspaceLimits: [],
  quotas: { maxKeysPerWorkspace: 0, maxUserKeysPerMember: 0, maxOrganizationKeysPerWorkspace: 0 },
  rotationGraceSeconds: 0,
  maxKeyAgeDays: 0,
  routes: [{ method: "GET", path: "/v1/pods", scopes: ["pods:read"], cost: 1 }],
  creatorRoles: [],
  forwardCredential: false,
  keyAgeWarningDays: 0,
  defaultScopes: [],
  unmatchedRoutes: "deny",
  caseInsensitiveRoutes: false,
  createdAt: now,
};
const workspace: Workspace = {
  id: "ws_bench",
  name: "bench",
  keySegment: "",
  status: "active",
  apiAccess: true,
  plan: "pro",
  keyLimits: null,
  workspaceLimits: null,
  maxKeyAgeDays: 0,
  ownerMemberId: "",
  createdAt: now,
};

function entry(status: Key["status"]): { secret: string; entry: KeyEntry } {
  const minted = mintKey(space.format, "");
  const key: Key = {
    id: `key_${status}`,
    keySpaceId: space.id,
    workspaceId: workspace.id,
    ownerType: "organization",
    ownerMemberId: "",
    name: status,
    display: minted.display,
    scopes: ["pods:read"],
    metadata: {},
    status,
    createdAt: now,
    updatedAt: now,
    expiresAt: null,
    lastUsedAt: null,
    revokedAt: status === "revoked" ? now : null,
    rotatedFromId: "",
    rotatedToId: "",
    limits: null,
    rejectionWebhookUrl: "",
  };
  return { secret: minted.secret, entry: { key, digest: digest(minted.canonical), workspace, owner: null } };
}

const valid = entry("active");
const revoked = entry("revoked");
const handle = createCheckHandler({
  authorizer: createAuthorizer({
    keySpaces: createMemoryKeySpaces([space]),
    lookup: createMemoryKeyLookup([valid.entry, revoked.entry]),
    cache: createKeyCache({
      ttlMs: 600_000,
      maxEntries: 100,
      negativeTtlMs: 600_000,
      negativeMaxEntries: 100,
    }),
    digest,
    limiter: undefined,
    usage: createMemoryUsage(),
    defaultKeySpace: "",
    rateLimitFailure: "open",
    deadlineMs: 150,
  }),
});
const request = (secret: string) =>
  buildCheckRequest({ authorization: `Bearer ${secret}`, keySpace: space.name });
const scenarios = {
  "unlimited valid key": request(valid.secret),
  "malformed key": request("km_live_not-a-key"),
  "revoked key": request(revoked.secret),
};

let answered = 0;
const done = (outcome: { kind: string }) => {
  if (outcome.kind === "response") answered++;
};

/** ns per Check over `n` calls; the first calls fill the key cache, so they are run before measuring. */
async function measure(bytes: Uint8Array, n: number): Promise<number> {
  answered = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) handle(bytes, undefined, done);
  const ns = Number(process.hrtime.bigint() - started) / n;
  await new Promise((resolve) => setImmediate(resolve));
  if (answered !== n) throw new Error(`only ${answered} of ${n} Checks were answered synchronously`);
  return ns;
}

const rounds = Number(process.argv[2] ?? 15);
for (const bytes of Object.values(scenarios)) {
  handle(bytes, undefined, () => {});
  await new Promise((resolve) => setTimeout(resolve, 10));
  await measure(bytes, 50_000);
}
const samples = new Map<string, number[]>(Object.keys(scenarios).map((name) => [name, []]));
for (let round = 0; round < rounds; round++) {
  for (const [name, bytes] of Object.entries(scenarios))
    samples.get(name)?.push(await measure(bytes, 100_000));
}
for (const [name, values] of samples) {
  values.sort((a, b) => a - b);
  console.log(
    `${name.padEnd(20)} ${(values[values.length >> 1] as number).toFixed(0).padStart(6)} ns/Check (median of ${rounds})`,
  );
}
