import cluster, { type Worker } from "node:cluster";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { type PreparedDatabase, prepareForWorkers } from "../server.js";
import { createTeardown } from "../teardown.js";
import { asToPrimary, type ToWorker } from "./messages.js";
import {
  DEFAULT_RESTART_POLICY,
  nextCrashCount,
  type RestartPolicy,
  restartDelayMs,
} from "./restart-backoff.js";

// Beyond the drain and grace periods, what a worker may take to close its pools before the primary kills it.
const BACKEND_CLOSE_MS = 15_000;

/** One of the N places a worker runs in; a crashed worker is replaced in the same slot. */
interface Slot {
  index: number;
  worker: Worker | undefined;
  listeningSince: number | undefined;
  crashes: number;
  restart: NodeJS.Timeout | undefined;
}

/** Options for `runPrimary`. */
export interface PrimaryOptions {
  /** The module workers run (keymesh's own main module), with the arguments it was given. */
  exec: string;
  args: string[];
  onRootKey(secret: string): void;
  restartPolicy?: RestartPolicy;
}

/**
 * The primary process of `KEYMESH_WORKERS` > 1: does the one-time work (embedded Postgres, migrations, the first root
 * key), forks the workers, which share its listen sockets (cluster round-robin, so every node net or http2 server
 * works unchanged), replaces a worker that exits with backoff, and on SIGTERM or SIGINT drains them all and exits
 * once every one has. Resolves with the exit code.
 */
export async function runPrimary(config: Config, logger: Logger, options: PrimaryOptions): Promise<number> {
  const policy = options.restartPolicy ?? DEFAULT_RESTART_POLICY;
  const teardown = createTeardown((name, error) =>
    logger.error("teardown step failed", { step: name, error }),
  );
  let prepared: PreparedDatabase;
  try {
    const result = await prepareForWorkers(config, logger, teardown);
    prepared = { serviceUrl: result.serviceUrl, pepper: result.pepper };
    if (result.rootKey) options.onRootKey(result.rootKey);
  } catch (error) {
    await teardown.run();
    throw error;
  }

  // Round-robin is Node's default except on Windows; set, since the even spread of connections is the point.
  cluster.schedulingPolicy = cluster.SCHED_RR;
  cluster.setupPrimary({ exec: options.exec, args: options.args });

  const slots: Slot[] = Array.from({ length: config.workers }, (_, index) => ({
    index: index + 1,
    worker: undefined,
    listeningSince: undefined,
    crashes: 0,
    restart: undefined,
  }));
  let serving = false;
  let stopping: "drain" | "close" | undefined;
  let exitCode = 0;
  let killTimer: NodeJS.Timeout | undefined;
  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });

  const live = () => slots.filter((slot) => slot.worker !== undefined);
  const tell = (slot: Slot, message: ToWorker) => {
    if (slot.worker?.isConnected()) slot.worker.send(message);
  };

  const maybeFinish = () => {
    if (!stopping || live().length > 0) return;
    clearTimeout(killTimer);
    void teardown.run().then(() => {
      logger.info("stopped", { exitCode });
      finish(exitCode);
    });
  };

  const stop = (how: "drain" | "close", reason: string) => {
    if (stopping === "close" || stopping === how) return;
    stopping = how;
    for (const slot of slots) clearTimeout(slot.restart);
    logger.info(how === "drain" ? "shutting down" : "closing now", {
      reason,
      workers: live().length,
      drainMs: how === "drain" ? config.drainMs : 0,
    });
    for (const slot of live()) tell(slot, { type: how });
    clearTimeout(killTimer);
    const budget = (how === "drain" ? config.drainMs : 0) + config.shutdownGraceMs + BACKEND_CLOSE_MS;
    killTimer = setTimeout(() => {
      for (const slot of live()) {
        logger.error("worker did not stop in time; killing it", {
          worker: slot.index,
          pid: slot.worker?.process.pid,
        });
        slot.worker?.process.kill("SIGKILL");
      }
      exitCode = 1;
    }, budget);
    maybeFinish();
  };

  const fork = (slot: Slot) => {
    slot.restart = undefined;
    const worker = cluster.fork();
    slot.worker = worker;
    slot.listeningSince = undefined;
    const pid = worker.process.pid;
    logger.info("worker started", { worker: slot.index, pid });
    worker.on("message", (raw: unknown) => {
      const message = asToPrimary(raw);
      if (message?.type === "hello") {
        tell(slot, { type: "start", slot: slot.index, ...prepared });
        if (stopping) tell(slot, { type: stopping });
      } else if (message?.type === "listening") {
        slot.listeningSince = Date.now();
        if (!serving && slots.every((s) => s.listeningSince !== undefined)) {
          serving = true;
          logger.info("keymesh serving", {
            httpPort: message.httpPort,
            grpcPort: message.grpcPort,
            host: config.host,
            node: process.version,
            workers: slots.length,
          });
        }
      }
    });
    worker.once("exit", (code, signal) => {
      slot.worker = undefined;
      const fields = { worker: slot.index, pid, code, signal };
      if (stopping) {
        if (code !== 0) exitCode = 1;
        logger.info("worker exited", fields);
        maybeFinish();
        return;
      }
      logger.error("worker exited unexpectedly", fields);
      if (!serving && slot.listeningSince === undefined) {
        // A worker that cannot start at all (a bad database role, a port in use) would fail the same way forever.
        exitCode = 1;
        stop("close", "a worker failed to start");
        return;
      }
      const servedMs = slot.listeningSince === undefined ? undefined : Date.now() - slot.listeningSince;
      slot.crashes = nextCrashCount(slot.crashes, servedMs, policy);
      const delayMs = restartDelayMs(slot.crashes, policy);
      logger.warn("restarting worker", { worker: slot.index, delayMs, crashes: slot.crashes });
      slot.restart = setTimeout(() => fork(slot), delayMs);
    });
  };

  process.on("SIGTERM", () => stop(stopping ? "close" : "drain", "SIGTERM"));
  process.on("SIGINT", () => stop(stopping ? "close" : "drain", "SIGINT"));
  for (const slot of slots) fork(slot);
  return done;
}
