import { Code, ConnectError } from "@connectrpc/connect";

/** The CLI's exit codes; scripts branch on them, so they are part of its interface (docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** Any failure not listed below; also `keyspaces diff --exit-code` when there are changes. */
  failure: 1,
  /** A check or verify was denied, or keymesh refused the root key. */
  denied: 2,
  notFound: 3,
  /** keymesh could not be reached, or did not answer within the deadline. */
  unavailable: 4,
  /** Bad flags, arguments or configuration. */
  usage: 64,
  /** An input file, or a value the server checked, is invalid. */
  invalidInput: 65,
} as const;

/** A failure the CLI explains itself: the message says what went wrong and what to do. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** A mistake in how the CLI was called. */
export const usageError = (message: string) => new CliError(message, EXIT.usage);

/** Where the CLI was talking to, for messages about failed calls. */
export interface CallTarget {
  address: string;
  timeoutMs: number;
  /** The command that lists what the failed command works on, for "not found" hints. */
  listCommand?: string;
}

/** Turns any failure into a CliError whose message says what to do next. */
export function explain(error: unknown, target: CallTarget): CliError {
  if (error instanceof CliError) return error;
  if (!(error instanceof ConnectError)) {
    const message = error instanceof Error ? error.message : String(error);
    return new CliError(message);
  }
  const detail = error.rawMessage;
  switch (error.code) {
    case Code.Unavailable:
      return new CliError(
        `keymesh at ${target.address} is unavailable (${detail}). Check that it is running and that ` +
          "--addr / KEYMESH_ADDR (or --grpc-addr / KEYMESH_GRPC_ADDR) point at it.",
        EXIT.unavailable,
      );
    case Code.DeadlineExceeded:
      return new CliError(
        `keymesh at ${target.address} did not answer within ${target.timeoutMs} ms. It may be overloaded or ` +
          "waiting on its database; raise --timeout to wait longer.",
        EXIT.unavailable,
      );
    case Code.Unauthenticated:
      return new CliError(
        `keymesh refused the root key: ${detail}. Set KEYMESH_ROOT_KEY or --root-key-file to a valid root key ` +
          "(the km_root_… key printed on keymesh's first start, or one made with CreateRootKey).",
        EXIT.denied,
      );
    case Code.PermissionDenied:
      // Some objects (the system workspace, the system key space's settings) are closed to every root key.
      if (detail.endsWith("is not allowed through KeyAdmin"))
        return new CliError(`no root key may do this: ${detail}.`, EXIT.denied);
      return new CliError(
        `the root key may not do this: ${detail}. Use a root key with a higher admin scope ` +
          "(admin:read < admin:write < admin:root).",
        EXIT.denied,
      );
    case Code.NotFound:
      return new CliError(
        target.listCommand ? `${detail}. See what exists with \`${target.listCommand}\`.` : `${detail}.`,
        EXIT.notFound,
      );
    case Code.InvalidArgument:
      return new CliError(`keymesh rejected the request: ${detail}`, EXIT.invalidInput);
    case Code.AlreadyExists:
    case Code.FailedPrecondition:
    case Code.ResourceExhausted:
      return new CliError(`keymesh refused: ${detail}`);
    case Code.Unimplemented:
      return new CliError(
        `${target.address} does not serve this call (${detail}); is it a keymesh of the same version, and the ` +
          "right port (8080 for --addr, 9090 for --grpc-addr)?",
      );
    default:
      return new CliError(
        `keymesh failed (${Code[error.code] ?? error.code}: ${detail}); its logs (JSON lines on stderr) have ` +
          "the detail.",
      );
  }
}
