/** The SQLSTATE of a commit refused because the admin call's deadline had passed (migration 005). */
export const COMMIT_DEADLINE_SQLSTATE = "KM001";

/** The code of the error a connection is closed with when the server stopped answering it (hang-watchdog.ts). */
export const UNRESPONSIVE_CODE = "DATABASE_UNRESPONSIVE";

// Failures that say nothing about the request, only that the database cannot serve it now: the caller may retry.
const unavailable = new Set([
  UNRESPONSIVE_CODE,
  COMMIT_DEADLINE_SQLSTATE,
  // Sockets and postgres.js's own connection errors.
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  // statement_timeout (or a cancel), lock_timeout, idle_in_transaction_session_timeout.
  "57014",
  "55P03",
  "25P03",
  // The server is shutting down, restarting, out of connections, or in recovery.
  "57P01",
  "57P02",
  "57P03",
  "53300",
  "08000",
  "08001",
  "08003",
  "08006",
]);

/** True when `error` means the database is unreachable, hung, too slow or shutting down, not that the request is bad. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && unavailable.has(code);
}

/** The constraint a unique violation (SQLSTATE 23505) broke, or undefined when `error` is not one. */
export function uniqueViolation(error: unknown): { constraint: string } | undefined {
  const pg = error as { code?: unknown; constraint_name?: unknown } | null;
  if (pg?.code !== "23505") return undefined;
  return { constraint: typeof pg.constraint_name === "string" ? pg.constraint_name : "unique" };
}

/** True when the database role lacks a privilege the statement needs (SQLSTATE 42501). */
export function isInsufficientPrivilege(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "42501";
}
