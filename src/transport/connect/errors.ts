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

/** Maps any failure to a ConnectError; unexpected ones are logged and hidden behind INTERNAL. */
export function toConnectError(error: unknown, logger: Logger): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof AdminError) return new ConnectError(error.message, codes[error.code]);
  const stored = classifyStoreError(error);
  if (stored) {
    // Request validation should stop bad input before the database does; a refusal here shows a gap to close.
    if (stored.failure === "bad_input")
      logger.warn("the database refused a value from a request", { code: stored.code });
    return new ConnectError(stored.message, storeCodes[stored.failure]);
  }
  // The logger keeps only an Error's message: no stack, no query parameters, no connection settings.
  logger.error("admin call failed", { error });
  return new ConnectError("internal error", Code.Internal);
}
