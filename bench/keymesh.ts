/**
 * The keymesh side of the bench: one throwaway redis-server and one `keymesh serve` child (embedded Postgres in
 * a fresh temp dir), configured through KeyAdmin like the README's trumpet recipe, with the keys every keymesh
 * scenario needs minted once. Both processes are shared by all scenarios and started on first use.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { KeyAdmin } from "../gen/keymesh/v1/admin_pb.js";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../gen/keymesh/v1/types_pb.js";
import { mintKey } from "../src/domain/key-format.js";
import { freePort } from "../test/support/processes.js";
import { startRedisServer } from "../test/support/redis-server.js";
import { REPO_ROOT, terminate, track } from "./child.js";

/** A running keymesh with the ports the bench drives and the root key that administers it. */
export interface KeymeshServer {
  pid: number;
  grpcPort: number;
  httpPort: number;
  rootKey: string;
  admin: ReturnType<typeof createClient<typeof KeyAdmin>>;
  stop(): Promise<void>;
}

/**
 * How a checkout's keymesh runs: `dist`, compiled, as `npm start` runs it (scripts/start.mjs builds dist/ first when
 * it is stale), or `tsx`, its TypeScript loaded at run time as before the build existed (reference checkouts, and
 * the RSS comparison).
 */
export type Runner = "dist" | "tsx";

/** The runner for a checkout: compiled for this tree, tsx for a reference checkout that may predate `dist/`. */
export function defaultRunner(root: string): Runner {
  return root === REPO_ROOT ? "dist" : "tsx";
}

/** The node flags of the checkout's `npm start` (package.json), so that a compiled keymesh runs as it ships. */
function startFlags(root: string): string[] {
  const { scripts } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    scripts: { start: string };
  };
  return scripts.start.split(/\s+/).filter((word) => word.startsWith("--"));
}

/** Starts `keymesh serve` with `env` added and resolves once it prints its root key and listens. */
export async function startKeymesh(
  env: Record<string, string>,
  nodeArgs: string[] = [],
  root: string = REPO_ROOT,
  runner: Runner = defaultRunner(root),
): Promise<KeymeshServer> {
  const dataDir = mkdtempSync(join(os.tmpdir(), "keymesh-bench-data-"));
  // `nodeArgs` after `npm start`'s flags, so that a V8 flag given here overrides the shipped one.
  const args =
    runner === "dist"
      ? [...startFlags(root), ...nodeArgs, "scripts/start.mjs"]
      : [...nodeArgs, "--import", "tsx", "src/main.ts"];
  const child = track(
    spawn(process.execPath, [...args, "serve"], {
      cwd: root,
      env: {
        ...process.env,
        KEYMESH_DATA_DIR: dataDir,
        KEYMESH_EMBEDDED_PG_PORT: String(await freePort()),
        KEYMESH_GRPC_PORT: "0",
        KEYMESH_HTTP_PORT: "0",
        // One process unless a scenario asks for more: with REDIS_URL the default is one worker per core, and the
        // scenarios compare single processes (bench/workers.ts measures the workers).
        KEYMESH_WORKERS: "1",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  child.once("exit", () => rmSync(dataDir, { recursive: true, force: true }));
  let out = "";
  let err = "";
  const started = await new Promise<{ rootKey: string; grpcPort: number; httpPort: number }>(
    (resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`keymesh did not start:\n${err.slice(-2000)}`)),
        60_000,
      );
      const check = (): void => {
        const root = /^\s*(km_root_\S+)\s*$/m.exec(out);
        const grpc = /"grpcPort":(\d+)/.exec(err);
        const http = /"httpPort":(\d+)/.exec(err);
        if (!root || !grpc || !http) return;
        clearTimeout(timer);
        resolve({ rootKey: root[1]!, grpcPort: Number(grpc[1]), httpPort: Number(http[1]) });
      };
      child.stdout!.setEncoding("utf8").on("data", (c: string) => {
        out += c;
        check();
      });
      child.stderr!.setEncoding("utf8").on("data", (c: string) => {
        err = (err + c).slice(-20_000);
        check();
      });
      child.once("exit", (code) => reject(new Error(`keymesh exited (${code}):\n${err.slice(-2000)}`)));
    },
  );
  // Logs after start-up still reach the terminal (keymesh logs no line per Check).
  child.stderr!.removeAllListeners("data");
  child.stderr!.pipe(process.stderr);
  child.stdout!.removeAllListeners("data");
  child.stdout!.resume();
  const transport = createConnectTransport({
    baseUrl: `http://127.0.0.1:${started.httpPort}`,
    httpVersion: "1.1",
    interceptors: [
      (next) => (req) => {
        req.header.set("authorization", `Bearer ${started.rootKey}`);
        return next(req);
      },
    ],
  });
  return {
    ...started,
    pid: child.pid!,
    admin: createClient(KeyAdmin, transport),
    stop: () => terminate(child, 10_000),
  };
}

/** keymesh's count of Checks answered without a decision, from its /metrics on `httpPort`. */
export async function errorDecisions(httpPort: number): Promise<number> {
  const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const match = /^keymesh_check_decisions_total\{decision="error"\} (\d+)$/m.exec(metrics);
  if (!match) throw new Error('keymesh /metrics has no keymesh_check_decisions_total{decision="error"}');
  return Number(match[1]);
}

/** The key space the keymesh scenarios name in context_extensions["keymesh.key_space"]. */
export const KEY_SPACE = "trumpet";

/** The keys the warm-cache scenarios send. */
export interface BenchKeys {
  server: KeymeshServer;
  /** The redis-server keymesh's rate limits run on. */
  redisPid: number;
  limited: string;
  unlimited: string;
  revoked: string;
  /** Well-formed (right prefix, segment, length and checksum) but never issued. */
  unknown: string;
  /** A real key with one body character changed: fails the checksum before any lookup. */
  malformed: string;
}

/**
 * Starts a redis-server and a keymesh using it (with `nodeArgs`, e.g. `--cpu-prof`, and `env` added), from the
 * checkout at `root`, and mints the keys.
 */
export async function startBench(
  nodeArgs: string[] = [],
  root: string = REPO_ROOT,
  runner: Runner = defaultRunner(root),
  env: Record<string, string> = {},
): Promise<BenchKeys & { stop(): Promise<void> }> {
  const redis = await startRedisServer();
  try {
    const server = await startKeymesh({ REDIS_URL: redis.url, ...env }, nodeArgs, root, runner);
    const stop = async (): Promise<void> => {
      await server.stop();
      await redis.stop();
    };
    try {
      return { server, redisPid: redis.pid, ...(await mint(server)), stop };
    } catch (error) {
      await stop();
      throw error;
    }
  } catch (error) {
    await redis.stop();
    throw error;
  }
}

const shared = new Map<string, Promise<BenchKeys & { stop(): Promise<void> }>>();

/** Starts (once per checkout and runner) the keymesh and redis-server its keymesh scenarios share. */
export function benchKeys(
  root: string = REPO_ROOT,
  runner: Runner = defaultRunner(root),
): Promise<BenchKeys> {
  const id = `${runner}:${root}`;
  let started = shared.get(id);
  if (!started) {
    started = startBench([], root, runner);
    shared.set(id, started);
  }
  return started;
}

/** Stops the shared keymesh and redis-server of a checkout and runner; safe to call more than once. */
export async function stopShared(
  root: string = REPO_ROOT,
  runner: Runner = defaultRunner(root),
): Promise<void> {
  const id = `${runner}:${root}`;
  const started = shared.get(id);
  shared.delete(id);
  if (started) await (await started).stop();
}

/** Creates the trumpet key space and workspace on `server`; returns their ids. */
export async function createTrumpet(
  server: KeymeshServer,
): Promise<{ keySpaceId: string; workspaceId: string }> {
  const { keySpace } = await server.admin.createKeySpace({
    name: KEY_SPACE,
    format: { prefix: "trpt_", workspaceSegment: true, style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
  });
  const { workspace } = await server.admin.createWorkspace({
    name: "Acme",
    keySegment: "a1b2c3",
    apiAccess: true,
  });
  return { keySpaceId: keySpace!.id, workspaceId: workspace!.id };
}

async function mint(server: KeymeshServer): Promise<Omit<BenchKeys, "server" | "redisPid">> {
  const { keySpaceId, workspaceId } = await createTrumpet(server);
  const create = (name: string, limits?: { name: string; capacity: bigint; periodSeconds: bigint }[]) =>
    server.admin.createKey({
      keySpaceId,
      workspaceId,
      ownerType: OwnerType.ORGANIZATION,
      name,
      ...(limits ? { limits: { limits } } : {}),
    });
  // One bucket, large enough never to run dry during a run: every Check still runs the Lua script.
  const limited = await create("limited", [{ name: "minute", capacity: 1_000_000_000n, periodSeconds: 60n }]);
  const unlimited = await create("unlimited");
  const revoked = await create("revoked");
  await server.admin.revokeKey({ id: revoked.key!.id });
  // Minted locally in the key space's format (prefix, segment, length, checksum) but never issued.
  const unknown = mintKey(
    { prefix: "trpt_", workspaceSegment: true, style: "single", secretBytes: 0, idPrefix: "" },
    "a1b2c3",
  ).secret;
  const s = limited.secret;
  const i = s.length - 10; // inside the random body, before the 6-character checksum
  const malformed = s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);
  return { limited: s, unlimited: unlimited.secret, revoked: revoked.secret, unknown, malformed };
}
