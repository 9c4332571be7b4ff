import cluster from "node:cluster";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig } from "./config.js";
import { createLogger, type Logger } from "./log.js";
import { bootstrapOnce, migrateOnly, startServer } from "./server.js";
import { runPrimary } from "./workers/primary.js";
import { runWorker } from "./workers/worker.js";

const usage = `usage: keymesh <command>

commands:
  serve       run the service (KeyAdmin, KeyVerify, Envoy ext_authz Check, HTTP authz)
  migrate     apply database migrations and exit
  bootstrap   create the first root key and print it once
`;

function banner(secret: string): string {
  return [
    "",
    "keymesh: the first root key was created. It is shown this once; store it in a secret manager.",
    "",
    `    ${secret}`,
    "",
    "Use it as `authorization: Bearer <key>` on KeyAdmin calls.",
    "",
  ].join("\n");
}

// Kept so that the exit path can write out lines still buffered by the asynchronous log destination.
let activeLogger: Logger | undefined;

/** Writes out buffered log lines, waiting at most a second. */
function flushLogs(): Promise<void> {
  return Promise.race([
    activeLogger?.flush?.(),
    new Promise<void>((resolve) => setTimeout(resolve, 1000).unref()),
  ]);
}

async function main(command: string | undefined): Promise<number> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  activeLogger = logger;
  switch (command) {
    case "serve": {
      // The one-time root key goes to stdout, a terminal; structured logs go to stderr.
      const onRootKey = (secret: string) => process.stdout.write(banner(secret));
      if (cluster.isWorker) return runWorker(config, logger);
      if (config.workers > 1) {
        // Workers run this module again, with the same Node flags (a loader such as tsx's comes along).
        return runPrimary(config, logger, {
          exec: fileURLToPath(import.meta.url),
          args: ["serve"],
          onRootKey,
        });
      }
      const server = await startServer(config, logger, { onRootKey });
      logger.info("keymesh serving", {
        httpPort: server.httpPort,
        grpcPort: server.grpcPort,
        host: config.host,
        node: process.version,
      });
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) {
            // A second signal (Ctrl-C twice, or an impatient supervisor) skips what is left of the drain.
            logger.info("closing now", { signal });
            void server.close().then(resolve);
            return;
          }
          stopping = true;
          logger.info("shutting down", { signal, drainMs: config.drainMs });
          void server.shutdown().then(resolve);
        };
        process.on("SIGTERM", () => stop("SIGTERM"));
        process.on("SIGINT", () => stop("SIGINT"));
      });
      logger.info("stopped");
      return 0;
    }
    case "migrate": {
      const applied = await migrateOnly(config, logger);
      logger.info("migrations applied", { applied });
      return 0;
    }
    case "bootstrap": {
      const secret = await bootstrapOnce(config, logger);
      if (!secret) {
        process.stderr.write("keymesh: a root key exists already; create more with KeyAdmin.CreateRootKey\n");
        return 1;
      }
      process.stdout.write(banner(secret));
      return 0;
    }
    default:
      process.stderr.write(usage);
      return command ? 2 : 0;
  }
}

main(process.argv[2]).then(
  async (code) => {
    await flushLogs();
    process.exit(code);
  },
  async (error: unknown) => {
    await flushLogs();
    if (error instanceof ConfigError) process.stderr.write(`keymesh: ${error.message}\n`);
    else
      process.stderr.write(
        `keymesh: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    process.exit(1);
  },
);
