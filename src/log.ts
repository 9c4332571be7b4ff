import { type DestinationStream, pino } from "pino";

/** A structured logger that writes one JSON line per event. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** Writes out lines still buffered; called before the process exits. */
  flush?(): Promise<void>;
}

type Level = "debug" | "info" | "warn" | "error";

// Field names whose values are secrets or may hold one; they are never written.
const secretField =
  /secret|password|pepper|authorization|api-?key|token|credential|database_?url|redis_?url/i;

/** An error as a log field: its kind, message, code and stack, never the other properties a library hung on it. */
function errorField(error: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { type: error.name, message: error.message };
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" || typeof code === "number") out.code = code;
  if (error.stack) out.stack = error.stack;
  return out;
}

function redact(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (secretField.test(name)) out[name] = "[redacted]";
    else if (value instanceof Error) out[name] = errorField(value);
    else out[name] = value;
  }
  return out;
}

/**
 * Creates a logger at `level` with secret-named fields redacted. By default lines go to stderr through pino's
 * asynchronous destination, so a burst of lines never blocks the event loop on a slow terminal or pipe; `flush`
 * (and pino's own exit hook) writes out what is buffered. `write`, for tests, receives each line synchronously.
 */
export function createLogger(level: Level = "info", write?: (line: string) => void): Logger {
  const destination: DestinationStream = write
    ? { write: (line: string) => write(line) }
    : pino.destination({ dest: 2, sync: false });
  const log = pino(
    {
      level,
      messageKey: "message",
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  const emit = (name: Level, message: string, fields?: Record<string, unknown>) => {
    if (!log.isLevelEnabled(name)) return;
    if (fields) log[name](redact(fields), message);
    else log[name](message);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    flush: () =>
      new Promise<void>((resolve) => {
        if (write) return resolve();
        log.flush(() => resolve());
      }),
  };
}

/** A logger that writes nothing, for tests. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
