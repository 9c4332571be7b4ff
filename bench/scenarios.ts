/**
 * What `npm run bench` measures. Each scenario starts its own server and names the CheckRequest it is driven
 * with; keymesh scenarios are appended to `scenarios` and are reported against the baseline of the same run.
 */
import { REPO_ROOT, type StartedServer, spawnServer } from "./child.js";
import { buildCheckRequest } from "./fixtures.js";
import {
  type BenchKeys,
  benchKeys,
  defaultRunner,
  errorDecisions,
  KEY_SPACE,
  type Runner,
  stopShared,
} from "./keymesh.js";
import { benchOptions } from "./options.js";

export type { StartedServer } from "./child.js";

/** One benchmarked server and the request it is driven with. */
export interface Scenario {
  /** Short unique id, used in tables and log file names ([a-z0-9-]). */
  name: string;
  description: string;
  /** Starts the server (ideally as a child process, so its RSS can be read) and resolves once it accepts Checks. */
  start(): Promise<StartedServer>;
  /** The encoded CheckRequest (unframed) every request sends; may be omitted if start() returns one. */
  request?: Uint8Array;
  /** CheckResponse.status.code the probe must see before load is applied; default 0 (allowed). */
  expectedCheckCode?: number;
}

/** Name of the scenario that ×baseline ratios and the fixed-load rate are computed from. */
export const BASELINE = "baseline";

/** The request the reference servers get: a well-formed key in keymesh's `km_live_` shape. */
export const REFERENCE_REQUEST = buildCheckRequest({
  authorization: "Bearer km_live_4fJ9kQ2xR7mT1bW8zN3pL6vY0cH5sD2gA8eK1q",
  keySpace: "ks_7Hq2LmX9pR4tVb1Nc",
});

/** The ceiling (raw node:http2), grpc-js with no decoding and the baseline (grpc-js + protobuf-es). */
export const referenceScenarios: Scenario[] = [
  {
    name: "ceiling",
    description: "raw node:http2, canned gRPC OK, no decoding: the most any Node gRPC server can do here",
    start: () => spawnServer("bench/ceiling-server.ts"),
    request: REFERENCE_REQUEST,
  },
  {
    name: "grpc-noop",
    description:
      "grpc-js with buffer (de)serializers and canned OK bytes, no decoding: the most a grpc-js Check can do",
    start: () => spawnServer("bench/grpc-noop-server.ts"),
    request: REFERENCE_REQUEST,
  },
  {
    name: BASELINE,
    description: "grpc-js + protobuf-es: decode CheckRequest, encode an OK CheckResponse, no logic",
    start: () => spawnServer("bench/baseline-server.ts"),
    request: REFERENCE_REQUEST,
  },
  {
    name: "h2-noop",
    description:
      "keymesh's node:http2 gRPC server with canned OK bytes, no decoding: the most a Check on it can do",
    start: () => spawnServer("bench/grpc-h2-noop-server.ts"),
    request: REFERENCE_REQUEST,
  },
  {
    name: "h2-noop-plain",
    description: "h2-noop without the stream-map recycler: what the recycler is worth on this Node version",
    start: () => spawnServer("bench/grpc-h2-noop-server.ts", { args: ["0", "plain"] }),
    request: REFERENCE_REQUEST,
  },
];

/** The prefix of the scenarios that run the reference checkout (BENCH_REFERENCE_DIR). */
export const REFERENCE_PREFIX = "ref-";

/** A scenario on the shared keymesh (one server, one redis-server), driven with one of its minted keys. */
function keymesh(
  name: string,
  description: string,
  key: (keys: BenchKeys) => string,
  expectedCheckCode: number,
  root: string = REPO_ROOT,
  runner: Runner = defaultRunner(root),
): Scenario {
  return {
    name,
    description,
    expectedCheckCode,
    async start() {
      const keys = await benchKeys(root, runner);
      const { server } = keys;
      return {
        port: server.grpcPort,
        pid: server.pid,
        helperPids: [keys.redisPid],
        request: buildCheckRequest({ authorization: `Bearer ${key(keys)}`, keySpace: KEY_SPACE }),
        errorVerdicts: () => errorDecisions(server.httpPort),
        // Scenarios share the process: the first stop ends it, later ones are no-ops.
        stop: () => stopShared(root, runner),
      };
    },
  };
}

/** keymesh's Check on the paths Envoy sees most; all share one keymesh + redis-server + embedded Postgres. */
function keymeshScenariosOf(root: string, prefix: string): Scenario[] {
  const of = (name: string, description: string, key: (keys: BenchKeys) => string, code: number) =>
    keymesh(`${prefix}${name}`, description, key, code, root);
  return [
    of(
      "km-limited",
      "valid key, cache warm, 1 Redis token bucket (Lua script per Check)",
      (k) => k.limited,
      0,
    ),
    of("km-unlimited", "valid key, cache warm, no rate limit", (k) => k.unlimited, 0),
    of(
      "km-malformed",
      "Bearer trpt_ key failing its checksum: 401 before any lookup",
      (k) => k.malformed,
      16,
    ),
    of("km-unknown", "well-formed key never issued: 401 from the negative cache", (k) => k.unknown, 16),
    of("km-revoked", "revoked key, cache warm: 401", (k) => k.revoked, 16),
  ];
}

/**
 * This checkout's keymesh scenarios, compiled; and once more through tsx, the way keymesh ran before it had a
 * build, so that the RSS the build saves is measured in the same run.
 */
export const keymeshScenarios: Scenario[] = [
  ...keymeshScenariosOf(REPO_ROOT, ""),
  keymesh(
    "km-unlimited-tsx",
    "valid key, no rate limit, this tree run through tsx instead of dist/",
    (k) => k.unlimited,
    0,
    REPO_ROOT,
    "tsx",
  ),
];

const referenceDir = benchOptions().referenceDir;

/** Every scenario `npm run bench` runs, in order; the reference checkout's twins last, when one is given. */
export const scenarios: Scenario[] = [
  ...referenceScenarios,
  ...keymeshScenarios,
  ...(referenceDir ? keymeshScenariosOf(referenceDir, REFERENCE_PREFIX) : []),
];
