/**
 * A hung Postgres. Needs Postgres: starts keymesh in its default mode, with an embedded Postgres of its own that the
 * tests freeze with SIGSTOP (the suite's shared Postgres is never stopped). The server runs with a 1 s admin
 * deadline, 1 s statement timeout, 1 s connect timeout and a 500 ms readiness probe.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import fc from "fast-check";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyAdmin } from "../../gen/keymesh/v1/admin_pb.js";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { loadConfig } from "../../src/config.js";
import { silentLogger } from "../../src/log.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { armCommitDeadline } from "../../src/store/commit-deadline.js";
import { auditLogRisks } from "../../src/store/roles.js";
import { freezePostgres } from "../support/postgres-freeze.js";
import { freePort } from "../support/processes.js";

const DEADLINE_MS = 1000;
// The answer is due at the deadline; allow for a busy 2-core machine.
const ANSWER_MARGIN_MS = 500;

let dataDir: string;
let server: RunningServer;
let admin: Client<typeof KeyAdmin>;
let httpUrl: string;
/** The owner's connection, used only while the database is running, to see what was committed. */
let observer: postgres.Sql;
let keyId: string;
const resumes: (() => void)[] = [];

const databaseDir = () => join(dataDir, "pg");
const serviceSql = () => server.core.admin.sql;

function freeze(): () => void {
  const resume = freezePostgres(databaseDir());
  resumes.push(resume);
  return resume;
}

/** Setup calls on a cold server (fresh connections, a loaded machine) may miss the 1 s deadline; they are retried. */
async function retried<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= 5 || ConnectError.from(error).code !== Code.Unavailable) throw error;
    }
  }
}

async function untilDatabaseAnswers(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await serviceSql()`select 1`;
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error("the database did not come back");
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "keymesh-hang-"));
  const port = await freePort();
  const config = loadConfig({
    KEYMESH_DATA_DIR: dataDir,
    KEYMESH_EMBEDDED_PG_PORT: String(port),
    KEYMESH_HTTP_PORT: "0",
    KEYMESH_GRPC_PORT: "0",
    KEYMESH_ADMIN_DEADLINE_MS: String(DEADLINE_MS),
    KEYMESH_DB_STATEMENT_TIMEOUT_MS: "1000",
    KEYMESH_DB_CONNECT_TIMEOUT_MS: "1000",
    KEYMESH_DB_PROBE_TIMEOUT_MS: "500",
    // Readiness follows the database alone here; a warm key cache would keep the check path ready without it.
    KEYMESH_READY_MIN_CACHED_KEYS: "0",
  });
  let rootKey = "";
  server = await startServer(config, silentLogger, { onRootKey: (secret) => (rootKey = secret) });
  httpUrl = `http://127.0.0.1:${server.httpPort}`;
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${rootKey}`);
    return next(req);
  };
  admin = createClient(
    KeyAdmin,
    createConnectTransport({ baseUrl: httpUrl, httpVersion: "1.1", interceptors: [auth] }),
  );
  const password = (await readFile(join(dataDir, "pg-password"), "utf8")).trim();
  observer = postgres(`postgres://keymesh:${encodeURIComponent(password)}@127.0.0.1:${port}/keymesh`, {
    max: 2,
    onnotice: () => {},
  });
  const { keySpace } = await retried(() =>
    admin.createKeySpace({
      name: "hang",
      format: { prefix: "hang_", style: KeyStyle.SINGLE },
      credentialSources: [{ kind: CredentialSourceKind.BEARER }],
      scopeModel: { scopes: ["read"] },
    }),
  );
  const { workspace } = await retried(() => admin.createWorkspace({ name: "hang", apiAccess: true }));
  const { key } = await retried(() =>
    admin.createKey({
      keySpaceId: keySpace!.id,
      workspaceId: workspace!.id,
      ownerType: OwnerType.ORGANIZATION,
      name: "initial",
      scopes: ["read"],
    }),
  );
  keyId = key!.id;
}, 180_000);

afterAll(async () => {
  for (const resume of resumes) resume();
  await observer?.end({ timeout: 5 });
  await server?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, 60_000);

describe("the embedded default runs the service as the restricted role (needs Postgres)", () => {
  it("connects as keymesh_service, which can neither truncate the audit log nor own it", async () => {
    const [who] = await serviceSql()<{ user: string; superuser: boolean }[]>`
      select current_user as user, rolsuper as superuser from pg_roles where rolname = current_user`;
    expect(who).toEqual({ user: "keymesh_service", superuser: false });
    expect(await auditLogRisks(serviceSql())).toEqual([]);
    await expect(serviceSql()`truncate audit_events`).rejects.toMatchObject({ code: "42501" });
    expect(await auditLogRisks(observer)).toContain("is a superuser");
  });
});

describe("a commit that reaches a hung database is refused once it is processed after the deadline (needs Postgres)", () => {
  async function commitWhileFrozen(commitIn: number, resumeAfter: number) {
    const marker = `deadline-${Math.random()}`;
    let resume: () => void = () => {};
    const committed = serviceSql()
      .begin(async (tx) => {
        expect(await armCommitDeadline(tx, Date.now() + commitIn)).toBe(true);
        await tx`insert into audit_events (actor, action, target_type, target_id) values ('t', ${marker}, 't', 't')`;
        // The COMMIT goes out when this returns, to a server that cannot process it yet.
        resume = freeze();
      })
      .then(
        () => "committed",
        (error: { code?: string }) => error.code,
      );
    await sleep(resumeAfter);
    resume();
    const outcome = await committed;
    const [row] = await observer<{ n: number }[]>`
      select count(*)::int as n from audit_events where action = ${marker}`;
    return { outcome, present: row!.n === 1 };
  }

  it("a COMMIT processed after the deadline rolls back with KM001; one processed before it applies", async () => {
    expect(await commitWhileFrozen(300, 700)).toEqual({ outcome: "KM001", present: false });
    await untilDatabaseAnswers();
    expect(await commitWhileFrozen(700, 100)).toEqual({ outcome: "committed", present: true });
  });
});

describe("a KeyAdmin write under a hung database (needs Postgres)", () => {
  let trial = 0;

  /**
   * Updates the key's name while the database is frozen at `stopAtMs` after the call starts (negative: before it),
   * with the key's row locked by another transaction until `lockMs` (null: not locked), so that the freeze lands at
   * every stage of the call's transaction: before it, during a lock wait, between statements, around the COMMIT.
   */
  async function run(stopAtMs: number, lockMs: number | null) {
    const name = `trial-${++trial}-${Math.random().toString(36).slice(2, 8)}`;
    let release: () => void = () => {};
    let holder: Promise<unknown> = Promise.resolve();
    if (lockMs !== null) {
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => {
        locked = resolve;
      });
      holder = observer
        .begin(async (tx) => {
          await tx`select 1 from keys where id = ${keyId} for update`;
          locked();
          await new Promise<void>((resolve) => {
            release = resolve;
          });
        })
        .catch(() => {});
      await isLocked;
    }
    let resume: () => void = () => {};
    if (stopAtMs < 0) resume = freeze();
    const started = performance.now();
    const stopped =
      stopAtMs < 0
        ? Promise.resolve()
        : sleep(stopAtMs).then(() => {
            resume = freeze();
          });
    const released = lockMs === null ? Promise.resolve() : sleep(lockMs).then(() => release());
    const outcome = await admin.updateKey({ id: keyId, name }).then(
      () => "ok" as const,
      (error: unknown) => ConnectError.from(error).code,
    );
    const elapsed = performance.now() - started;
    // Keep the server frozen a while after the answer, so that whatever the call sent waits queued, then resume.
    await Promise.all([stopped, released]);
    await sleep(300);
    resume();
    await holder;
    await untilDatabaseAnswers();
    // Time for statements still queued when the server resumed to be processed.
    await sleep(300);
    const [row] = await observer<{ name: string }[]>`select name from keys where id = ${keyId}`;
    const [audit] = await observer<{ n: number }[]>`
      select count(*)::int as n from audit_events where target_id = ${keyId} and after->>'name' = ${name}`;
    return { outcome, elapsed, applied: row!.name === name, audited: audit!.n > 0 };
  }

  it("answers within the deadline, UNAVAILABLE unless it committed, and an UNAVAILABLE change never applies later", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: -100, max: 1100 }),
        fc.option(fc.integer({ min: 0, max: 1300 }), { nil: null }),
        async (stopAtMs, lockMs) => {
          const r = await run(stopAtMs, lockMs);
          expect(r.elapsed).toBeLessThan(DEADLINE_MS + ANSWER_MARGIN_MS);
          expect(["ok", Code.Unavailable]).toContain(r.outcome);
          expect({ applied: r.applied, audited: r.audited }).toEqual({
            applied: r.outcome === "ok",
            audited: r.outcome === "ok",
          });
        },
      ),
      {
        numRuns: 14,
        endOnFailure: true,
        // Frozen before the call; frozen mid-transaction; lock released just before the commit deadline and frozen
        // right after, so the UPDATE, audit insert and COMMIT race the freeze; frozen after an unhindered success.
        examples: [
          [-50, null],
          [200, 100],
          [895, 890],
          [880, 870],
          [600, null],
        ],
      },
    );
  }, 180_000);

  it("a client timeout shorter than the setting bounds the call the same way", async () => {
    const resume = freeze();
    const started = performance.now();
    const outcome = await admin.updateKey({ id: keyId, name: "client-timeout" }, { timeoutMs: 400 }).then(
      () => "ok" as const,
      (error: unknown) => ConnectError.from(error).code,
    );
    const elapsed = performance.now() - started;
    await sleep(300);
    resume();
    await untilDatabaseAnswers();
    await sleep(300);
    const [row] = await observer<{ name: string }[]>`select name from keys where id = ${keyId}`;
    expect(elapsed).toBeLessThan(400 + ANSWER_MARGIN_MS);
    // The server answers shortly before the client's own timer; a client that loses that race reports its own.
    expect([Code.Unavailable, Code.DeadlineExceeded]).toContain(outcome);
    expect(row!.name).not.toBe("client-timeout");
  }, 30_000);
});

describe("queries on a hung database time out (needs Postgres)", () => {
  it("a statement running longer than statement_timeout is cancelled by the server", async () => {
    const started = performance.now();
    await expect(serviceSql()`select pg_sleep(5)`).rejects.toMatchObject({ code: "57014" });
    expect(performance.now() - started).toBeLessThan(2500);
  });

  it("a query sent to a frozen server fails within statement_timeout plus a second, and so do queued ones", async () => {
    const resume = freeze();
    const started = performance.now();
    try {
      const outcomes = await Promise.all(
        Array.from({ length: 25 }, () =>
          serviceSql()`select 1`.then(
            () => "answered",
            (error: { code?: string }) => ({ code: error.code, at: performance.now() - started }),
          ),
        ),
      );
      for (const outcome of outcomes) {
        expect(outcome).toMatchObject({
          code: expect.stringMatching(/^(DATABASE_UNRESPONSIVE|CONNECT_TIMEOUT)$/),
        });
      }
      // The first wave fails when the watchdog gives up on its connections (statement timeout + 1 s); the
      // queued queries then get fresh connections, which fail at the connect timeout.
      const latest = Math.max(...outcomes.map((o) => (o as { at: number }).at));
      expect(latest).toBeLessThan(2000 + 1000 + 3000);
    } finally {
      resume();
    }
    await untilDatabaseAnswers();
  }, 30_000);
});

describe("readiness follows the database (needs Postgres)", () => {
  async function healthWithin(status: number, ms: number): Promise<number> {
    const started = performance.now();
    while (performance.now() - started < ms) {
      const res = await fetch(`${httpUrl}/healthz`);
      await res.text();
      if (res.status === status) return performance.now() - started;
      await sleep(50);
    }
    throw new Error(`/healthz did not answer ${status} within ${ms} ms`);
  }

  it("/healthz turns 503 within a few seconds of a hang and 200 again soon after the database resumes", async () => {
    await healthWithin(200, 5000);
    const resume = freeze();
    try {
      // One probe interval (1 s) plus the probe timeout (500 ms), with room for a busy machine.
      expect(await healthWithin(503, 4000)).toBeLessThan(3000);
    } finally {
      resume();
    }
    expect(await healthWithin(200, 5000)).toBeLessThan(3000);
  }, 30_000);
});
