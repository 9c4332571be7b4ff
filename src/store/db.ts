import postgres, { type Sql } from "postgres";
import { INT8_ARRAY_OID, parseTextArray, serializeArray, TEXT_ARRAY_OID } from "./array-types.js";
import { createHangWatchdog } from "./hang-watchdog.js";

/** How a pool bounds its waits; statement and lock timeouts are sent as connection parameters. */
export interface SqlOptions {
  max?: number;
  onnotice?: (notice: postgres.Notice) => void;
  /** Server-side statement_timeout, and the hang watchdog's limit with it; unset for migrations. */
  statementTimeoutMs?: number;
  lockTimeoutMs?: number;
  connectTimeoutMs?: number;
}

// A live server answers within statement_timeout (with the result or a cancellation); allow this for the answer
// to arrive before the hang watchdog calls the server unresponsive.
const ANSWER_GRACE_MS = 1000;

/** Opens a connection pool; jsonb and timestamps come back as JS values. */
export function createSql(url: string, options: SqlOptions = {}): Sql {
  const timeouts: Record<string, string> = {};
  // No idle_in_transaction_session_timeout: the webhook outbox legitimately holds a transaction open while it
  // delivers (up to its HTTP timeout per row), and admin transactions are bounded by their call deadline.
  if (options.statementTimeoutMs !== undefined)
    timeouts.statement_timeout = String(options.statementTimeoutMs);
  if (options.lockTimeoutMs !== undefined) timeouts.lock_timeout = String(options.lockTimeoutMs);
  const watchdog =
    options.statementTimeoutMs === undefined
      ? undefined
      : createHangWatchdog(options.statementTimeoutMs + ANSWER_GRACE_MS);
  return postgres(url, {
    max: options.max ?? 10,
    // Bounded waits: a hung database must surface as an error, never as a stuck request.
    connect_timeout: (options.connectTimeoutMs ?? 5000) / 1000,
    idle_timeout: 60,
    onnotice: options.onnotice ?? (() => {}),
    connection: { application_name: "keymesh", ...timeouts },
    // postgres.js would otherwise query array types on each new connection and leave a failure unhandled.
    fetch_types: false,
    types: {
      textArray: {
        to: TEXT_ARRAY_OID,
        from: [TEXT_ARRAY_OID],
        serialize: serializeArray,
        parse: parseTextArray,
      },
      int8Array: { to: INT8_ARRAY_OID, from: [], serialize: serializeArray, parse: (x: string) => x },
    },
    ...(watchdog ? { socket: watchdog.socket } : {}),
  });
}

/** Notifications of changes that caches on every instance must drop. */
export const CHANGES_CHANNEL = "keymesh_changes";

/** What changed: a key, a workspace, a member or a key space. */
export interface Change {
  type: "key" | "workspace" | "member" | "key_space";
  id: string;
}
