import { Code, ConnectError } from "@connectrpc/connect";
import { AdminError, type AdminErrorCode } from "../../admin/errors.js";
import type { Logger } from "../../log.js";
import { isDatabaseUnavailable } from "../../store/errors.js";

const codes: Record<AdminErrorCode, Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  permission_denied: Code.PermissionDenied,
  unavailable: Code.Unavailable,
};

/**
 * Maps any failure to a ConnectError; unexpected ones are logged (with `fields`, the call's request id and trace id)
 * and hidden behind INTERNAL.
 */
export function toConnectError(
  error: unknown,
  logger: Logger,
  fields?: Record<string, string>,
): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof AdminError) return new ConnectError(error.message, codes[error.code]);
  const pg = error as { code?: string; constraint_name?: string };
  if (pg.code === "23505")
    return new ConnectError(`already exists (${pg.constraint_name ?? "unique"})`, Code.AlreadyExists);
  if (isDatabaseUnavailable(error)) return new ConnectError("the database is unavailable", Code.Unavailable);
  logger.error("admin call failed", { error, ...fields });
  return new ConnectError("internal error", Code.Internal);
}
