import type { Sql } from "postgres";
import type { Logger } from "../log.js";
import { signWebhook } from "./sign.js";

/** Options for delivering the webhook outbox. */
export interface OutboxWorkerOptions {
  sql: Sql;
  secret: string;
  logger: Logger;
  pollMs?: number;
  timeoutMs?: number;
  maxAttempts?: number;
  /** Backoff base; attempt n waits base × 2^(n-1), capped at an hour. */
  backoffMs?: number;
  /** Told what each delivery attempt came to (for metrics). */
  onDelivery?: (outcome: "delivered" | "retry" | "given_up") => void;
}

interface OutboxRow {
  id: string;
  url: string;
  event: string;
  payload: unknown;
  attempts: number;
}

/** Delivers webhooks from the Postgres outbox with retries and backoff; rows survive restarts until delivered. */
export function startOutboxWorker(options: OutboxWorkerOptions): {
  drain(): Promise<void>;
  stop(): Promise<void>;
} {
  const { sql, logger } = options;
  const maxAttempts = options.maxAttempts ?? 12;
  const backoffMs = options.backoffMs ?? 1000;
  let running: Promise<void> | undefined;
  let stopped = false;

  async function deliver(row: OutboxRow): Promise<string | undefined> {
    const body = JSON.stringify({ id: String(row.id), event: row.event, data: row.payload });
    try {
      const response = await fetch(row.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...signWebhook(options.secret, body, Math.floor(Date.now() / 1000)),
        },
        body,
        signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
        redirect: "manual",
      });
      return response.ok ? undefined : `HTTP ${response.status}`;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  }

  async function tick(): Promise<void> {
    // Each row is claimed under a row lock held during delivery, so two instances never send the same row at once.
    await sql.begin(async (tx) => {
      const rows = await tx<OutboxRow[]>`
        select id, url, event, payload, attempts from webhook_outbox
        where delivered_at is null and failed_at is null and next_attempt_at <= now()
        order by id limit 20 for update skip locked`;
      for (const row of rows) {
        const error = await deliver(row);
        const attempts = row.attempts + 1;
        if (error === undefined) {
          await tx`update webhook_outbox set delivered_at = now(), attempts = ${attempts} where id = ${row.id}`;
          options.onDelivery?.("delivered");
        } else if (attempts >= maxAttempts) {
          await tx`update webhook_outbox set failed_at = now(), attempts = ${attempts}, last_error = ${error} where id = ${row.id}`;
          logger.warn("webhook given up", { id: row.id, attempts, reason: error });
          options.onDelivery?.("given_up");
        } else {
          options.onDelivery?.("retry");
          const wait = Math.min(backoffMs * 2 ** (attempts - 1), 3_600_000);
          await tx`
            update webhook_outbox set attempts = ${attempts}, last_error = ${error},
              next_attempt_at = now() + make_interval(secs => ${wait / 1000})
            where id = ${row.id}`;
        }
      }
    });
  }

  const run = () => {
    if (stopped || running) return;
    running = tick()
      .catch((error: unknown) => logger.warn("webhook outbox tick failed", { error }))
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(run, options.pollMs ?? 500);
  timer.unref();
  return {
    async drain() {
      run();
      await running;
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
