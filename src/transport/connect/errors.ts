import { Code, ConnectError } from "@connectrpc/connect";
import { AdminError, type AdminErrorCode } from "../../admin/errors.js";
import type { Logger } from "../../log.js";
import { classifyStoreError, type StoreFailure } from "../../store/errors.js";

const codes: Record<AdminErrorCode, Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  permission_denied: Code.PermissionDenied,
  unavailable: Code.Unavailable,
};

const storeCodes: Record<StoreFailure, Code> = {
  bad_input: Code.InvalidArgument,
  conflict: Code.AlreadyExists,
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
  const stored = classifyStoreError(error);
  if (stored) {
    // Request validation should stop bad input before the database does; a refusal here shows a gap to close.
    if (stored.failure === "bad_input")
      logger.warn("the database refused a value from a request", { code: stored.code, ...fields });
    return new ConnectError(stored.message, storeCodes[stored.failure]);
  }
  logger.error("admin call failed", { error, ...fields });
  return new ConnectError("internal error", Code.Internal);
}
