import postgres from "postgres";

/**
 * Why the store refused or failed an operation, in terms the layers above can act on without knowing Postgres:
 * - `bad_input`: a value the database cannot hold or convert (SQLSTATE class 22, or a value past a size limit);
 * - `conflict`: a unique constraint already holds the value;
 * - `unavailable`: the database cannot be reached, is shutting down, or gave up on the statement.
 */
export type StoreFailure = "bad_input" | "conflict" | "unavailable";

/** A classified storage failure. Its message never carries a value from the request or a connection detail. */
export class StoreError extends Error {
  constructor(
    readonly failure: StoreFailure,
    message: string,
    /** The SQLSTATE or client error code behind it, for logs. */
    readonly code: string,
  ) {
    super(message);
    this.name = "StoreError";
  }
}

/** The SQLSTATE of a commit refused because the admin call's deadline had passed (migration 005). */
export const COMMIT_DEADLINE_SQLSTATE = "KM001";

/** The code of the error a connection is closed with when the server stopped answering it (hang-watchdog.ts). */
export const UNRESPONSIVE_CODE = "DATABASE_UNRESPONSIVE";

// Errors postgres.js raises itself, and Node socket errors it passes on, when the server cannot be reached; and the
// hang watchdog's, when it stopped answering.
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  UNRESPONSIVE_CODE,
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

// SQLSTATEs outside class 08 that also mean "try again later": the server is going away, is out of connections
// or resources, the statement was cancelled (a statement timeout) or waited too long for a lock or in a
// transaction, or the commit came after the admin call's deadline.
const UNAVAILABLE_SQLSTATES: ReadonlySet<string> = new Set([
  COMMIT_DEADLINE_SQLSTATE,
  "55P03",
  "25P03",
  "57P01",
  "57P02",
  "57P03",
  "57014",
  "53000",
  "53100",
  "53200",
  "53300",
]);

/**
 * Classifies an error thrown by a query: a StoreError for the failures above, undefined for anything else (a bug,
 * which the caller reports as internal). Class 22 (data exception: 22001 too long, 22003 out of range, 22007 and
 * 22008 bad dates, 22021 a NUL or invalid byte, 22P02 bad syntax, 22P05 a `\u0000` in JSON, ...) and 54000 (a value
 * too large to index) are bad input.
 */
export function classifyStoreError(error: unknown): StoreError | undefined {
  if (error instanceof StoreError) return error;
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string") return undefined;
  if (error instanceof postgres.PostgresError) {
    if (code.startsWith("22") || code === "54000") {
      return new StoreError("bad_input", `a value in the request cannot be stored (SQLSTATE ${code})`, code);
    }
    if (code === "23505") {
      const constraint = (error as { constraint_name?: string }).constraint_name ?? "unique";
      return new StoreError("conflict", `already exists (${constraint})`, code);
    }
    if (code.startsWith("08") || UNAVAILABLE_SQLSTATES.has(code)) {
      return new StoreError("unavailable", "the database is unavailable", code);
    }
    return undefined;
  }
  // postgres.js reports a cancelled statement with the SQLSTATE as a plain error's code.
  if (CONNECTION_CODES.has(code) || code === "57014") {
    return new StoreError("unavailable", "the database is unavailable", code);
  }
  return undefined;
}

/** True when the database role lacks a privilege the statement needs (SQLSTATE 42501). */
export function isInsufficientPrivilege(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "42501";
}

/** True when `error` means the database is unreachable, hung, too slow or shutting down, not that the request is bad. */
export function isDatabaseUnavailable(error: unknown): boolean {
  return classifyStoreError(error)?.failure === "unavailable";
}
