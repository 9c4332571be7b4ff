/**
 * One measurement for bench/check-overhead.ts, in a process of its own: builds the Check handler of the checkout
 * at `--root` over in-memory backends, warms it up, then times batches of Checks and prints the median ns per Check
 * as one JSON line. `--variant before` builds it as that checkout's app.ts did (its counters); `metrics` with the
 * observability of this checkout, tracing off; `tracing` with tracing on, sampling 1% of traces by their id into a
 * batch exporter.
 */
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { buildCheckRequest } from "./fixtures.js";

const { values } = parseArgs({
  options: {
    root: { type: "string" },
    variant: { type: "string" },
    scenario: { type: "string" },
    checks: { type: "string", default: "200000" },
    batches: { type: "string", default: "7" },
  },
});
const root = values.root!;
const variant = values.variant as "before" | "metrics" | "tracing";
const scenario = values.scenario as "unlimited" | "unknown" | "limited";
const load = (path: string) => import(pathToFileURL(`${root}/${path}`).href);

const [checkService, authorizerModule, digestModule, keyFormat, keyCache, memoryLookup, memoryLimiter] =
  await Promise.all([
    load("src/transport/envoy/check-service.ts"),
    load("src/domain/authorizer.ts"),
    load("src/domain/digest.ts"),
    load("src/domain/key-format.ts"),
    load("src/cache/key-cache.ts"),
    load("src/store/memory-lookup.ts"),
    load("src/ratelimit/memory-limiter.ts"),
  ]);

const format = { prefix: "trpt_", workspaceSegment: true, style: "single", secretBytes: 0, idPrefix: "" };
const limits = scenario === "limited" ? [{ name: "minute", capacity: 1_000_000_000, periodSeconds: 60 }] : [];
const space = {
  id: "ks_bench",
  name: "trumpet",
  format,
  credentialSources: [{ kind: "bearer" }],
  scopeModel: { scopes: ["read"], hierarchies: [], ladders: [], fullAccessScope: "" },
  defaultKeyLimits: limits,
  defaultWorkspaceLimits: [],
  quotas: { maxKeysPerWorkspace: 0, maxUserKeysPerMember: 0, maxOrganizationKeysPerWorkspace: 0 },
  rotationGraceSeconds: 0,
  maxKeyAgeDays: 0,
  routes: [],
  creatorRoles: [],
  forwardCredential: false,
  keyAgeWarningDays: 7,
  defaultScopes: [],
  unmatchedRoutes: "allow",
  caseInsensitiveRoutes: false,
  createdAt: new Date(),
};
const digest = digestModule.createDigester("p".repeat(32));
const minted = keyFormat.mintKey(format, "a1b2c3");
const now = new Date();
const entry = {
  key: {
    id: "key_bench",
    keySpaceId: space.id,
    workspaceId: "ws_bench",
    ownerType: "organization",
    ownerMemberId: "",
    name: "bench",
    display: minted.display,
    scopes: ["read"],
    metadata: {},
    status: "active",
    createdAt: now,
    updatedAt: now,
    expiresAt: null,
    lastUsedAt: null,
    revokedAt: null,
    rotatedFromId: "",
    rotatedToId: "",
    limits: null,
    rejectionWebhookUrl: "",
  },
  digest: digest(minted.canonical),
  workspace: {
    id: "ws_bench",
    name: "bench",
    keySegment: "a1b2c3",
    status: "active",
    apiAccess: true,
    plan: "pro",
    keyLimits: null,
    workspaceLimits: null,
    maxKeyAgeDays: 0,
    ownerMemberId: "",
    createdAt: now,
  },
  owner: null,
};

let limiter = scenario === "limited" ? memoryLimiter.createMemoryLimiter() : undefined;
let lookup = memoryLookup.createMemoryKeyLookup([entry]);
let observer: unknown;
if (variant !== "before") {
  // Wired as src/core.ts and src/app.ts wire them.
  const { loadConfig } = await load("src/config.ts");
  const { createTracing } = await load("src/observability/tracing.ts");
  const { createObservability } = await load("src/observability/observability.ts");
  const backends = await load("src/observability/backends.ts");
  const config = loadConfig(
    variant === "tracing"
      ? {
          OTEL_TRACES_EXPORTER: "otlp",
          // Nothing listens there: the batch exporter's failed posts stand in for a collector, off the hot path.
          OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9",
          OTEL_TRACES_SAMPLER: "traceidratio",
          OTEL_TRACES_SAMPLER_ARG: "0.01",
        }
      : {},
  );
  const tracing = await createTracing(config.tracing);
  const observability = createObservability({ config, tracing });
  observability.lookupKeySpacesWith((n: string) => (n === space.name || n === space.id ? space : undefined));
  const { metrics } = observability;
  lookup = backends.instrumentKeyLookup(lookup, metrics.database("key_lookup"), () => true, tracing);
  if (limiter) limiter = backends.instrumentLimiter(limiter, "memory", metrics.limiter("memory"), tracing);
  observer = observability.decisions("envoy_grpc");
}
const authorizer = authorizerModule.createAuthorizer({
  keySpaces: memoryLookup.createMemoryKeySpaces([space]),
  lookup,
  cache: keyCache.createKeyCache({
    ttlMs: 3_600_000,
    maxEntries: 1000,
    negativeTtlMs: 3_600_000,
    negativeMaxEntries: 1000,
  }),
  digest,
  limiter,
  usage: memoryLookup.createMemoryUsage(),
  defaultKeySpace: "",
  rateLimitFailure: "open",
  deadlineMs: 150,
});
const handle =
  variant === "before"
    ? checkService.createCheckHandler({ authorizer, counters: checkService.createCheckCounters() })
    : checkService.createCheckHandler({ authorizer, observer });

const unknown = keyFormat.mintKey(format, "a1b2c3").secret;
const request = buildCheckRequest({
  authorization: `Bearer ${scenario === "unknown" ? unknown : minted.secret}`,
  keySpace: space.name,
});
const expectedCode = scenario === "unknown" ? 16 : 0;

/** Runs `n` Checks (in flight together, when the limiter makes them asynchronous) and resolves when all are done. */
function run(n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let left = n;
    const done = (outcome: { kind: string; bytes?: Uint8Array }) => {
      if (outcome.kind !== "response") reject(new Error(`Check failed: ${JSON.stringify(outcome)}`));
      if (--left === 0) resolve();
    };
    for (let i = 0; i < n; i++) handle(request, undefined, done);
  });
}

// A first Check fills the caches; its answer proves the setup decides what the scenario says.
await new Promise<void>((resolve, reject) =>
  handle(request, undefined, (o: { kind: string; bytes: Uint8Array }) => {
    const bytes = Buffer.from(o.bytes ?? []);
    // CheckResponse.status (field 1) is a google.rpc.Status whose code (field 1) is absent when 0.
    const code = bytes[0] === 0x0a && bytes[1]! > 0 && bytes[2] === 0x08 ? bytes[3] : 0;
    if (code === expectedCode) resolve();
    else reject(new Error(`expected status ${expectedCode}, got ${code}`));
  }),
);
const checks = Number(values.checks);
const chunk = scenario === "limited" ? 1000 : checks;
for (let i = 0; i < 3; i++) for (let done = 0; done < checks; done += chunk) await run(chunk);
// CPU time rather than wall time: on a shared machine a process waits for a core for long stretches, which wall
// time would charge to whichever variant happened to run then.
const cpuPerCheck: number[] = [];
const wallPerCheck: number[] = [];
for (let b = 0; b < Number(values.batches); b++) {
  const wall = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  for (let done = 0; done < checks; done += chunk) await run(chunk);
  const used = process.cpuUsage(cpu);
  wallPerCheck.push(Number(process.hrtime.bigint() - wall) / checks);
  cpuPerCheck.push(((used.user + used.system) * 1000) / checks);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(
  JSON.stringify({
    variant,
    scenario,
    cpuNsPerCheck: median(cpuPerCheck),
    minCpuNsPerCheck: Math.min(...cpuPerCheck),
    wallNsPerCheck: median(wallPerCheck),
  }),
);
process.exit(0);
