import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { type RunningServer, startServer } from "../server.js";
import { asToWorker, type ToPrimary } from "./messages.js";

/** `logger` with `fields` added to every line, so that each line names the worker process that wrote it. */
function withFields(logger: Logger, fields: Record<string, unknown>): Logger {
  return {
    debug: (m, f) => logger.debug(m, { ...fields, ...f }),
    info: (m, f) => logger.info(m, { ...fields, ...f }),
    warn: (m, f) => logger.warn(m, { ...fields, ...f }),
    error: (m, f) => logger.error(m, { ...fields, ...f }),
  };
}

function send(message: ToPrimary): void {
  process.send?.(message);
}

/**
 * A worker process: waits for the primary's "start" (the prepared database), serves both ports through the
 * primary's shared listen sockets, and stops when the primary says so. Resolves with the exit code.
 */
export function runWorker(config: Config, baseLogger: Logger): Promise<number> {
  let logger = withFields(baseLogger, { pid: process.pid });
  let server: RunningServer | undefined;
  let starting = false;
  let stopping: "drain" | "close" | undefined;
  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });

  const stop = (how: "drain" | "close", reason: string) => {
    // Drain requests repeat when a supervisor signals the whole process group and the primary forwards it too.
    if (stopping === "close" || stopping === how) return;
    stopping = how;
    if (!server) {
      // Not serving yet: nothing to drain.
      if (!starting) finish(0);
      return;
    }
    logger.info(how === "drain" ? "shutting down" : "closing now", { reason, drainMs: config.drainMs });
    const running = server;
    void (how === "drain" ? running.shutdown() : running.close()).then(
      () => finish(0),
      (error: unknown) => {
        logger.error("shutdown failed", { error });
        finish(1);
      },
    );
  };

  process.on("message", (raw) => {
    const message = asToWorker(raw);
    if (!message) return;
    if (message.type !== "start") {
      stop(message.type, "primary");
      return;
    }
    if (starting || server) return;
    starting = true;
    logger = withFields(baseLogger, { worker: message.slot, pid: process.pid });
    startServer(config, logger, {
      prepared: { serviceUrl: message.serviceUrl, pepper: message.pepper },
    }).then(
      (running) => {
        server = running;
        starting = false;
        // Logged first, so that this line precedes the primary's "keymesh serving" on the shared stderr.
        logger.info("worker serving", { httpPort: running.httpPort, grpcPort: running.grpcPort });
        send({ type: "listening", httpPort: running.httpPort, grpcPort: running.grpcPort });
        const pending = stopping;
        if (pending) {
          stopping = undefined;
          stop(pending, "primary");
        }
      },
      (error: unknown) => {
        logger.error("worker failed to start", { error });
        finish(1);
      },
    );
  });
  // A terminal's Ctrl-C reaches every process in the group: the primary alone decides, and tells the workers.
  process.on("SIGINT", () => {});
  // SIGTERM sent to this process alone (or to the whole group by a supervisor) drains it like the primary's word.
  process.on("SIGTERM", () => stop("drain", "SIGTERM"));
  // Without its primary no new connection reaches this worker, and nothing would restart or stop it.
  process.on("disconnect", () => {
    logger.warn("the primary process is gone; closing");
    stop("close", "primary gone");
  });
  send({ type: "hello" });
  return done;
}
