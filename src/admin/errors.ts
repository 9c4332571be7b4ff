/** The closed set of reasons an admin operation fails, mapped to RPC codes at the transport boundary. */
export type AdminErrorCode =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "resource_exhausted"
  | "permission_denied"
  | "unavailable";

/** An expected, client-facing failure of an admin operation. */
export class AdminError extends Error {
  constructor(
    readonly code: AdminErrorCode,
    message: string,
    /** The request field at fault, for invalid_argument. */
    readonly field?: string,
  ) {
    super(message);
    this.name = "AdminError";
  }
}

/** Shorthand for a not_found error about `what` with `id`. */
export function notFound(what: string, id: string): AdminError {
  return new AdminError("not_found", `${what} ${JSON.stringify(id)} not found`);
}

/** Shorthand for an invalid_argument error naming `field`. */
export function invalid(field: string, message: string): AdminError {
  return new AdminError("invalid_argument", `${field}: ${message}`, field);
}
