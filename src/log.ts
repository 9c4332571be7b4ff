/** A structured logger that writes one JSON line per event. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const levels = { debug: 10, info: 20, warn: 30, error: 40 } as const;

// Field names whose values are secrets or may hold one; they are never written.
const secretField =
  /secret|password|pepper|authorization|api-?key|token|credential|database_?url|redis_?url/i;

function redact(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (secretField.test(name)) out[name] = "[redacted]";
    else if (value instanceof Error) out[name] = value.message;
    else out[name] = value;
  }
  return out;
}

/** Creates a logger at `level`, writing to `write` (stderr by default), with secret-named fields redacted. */
export function createLogger(
  level: keyof typeof levels = "info",
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const min = levels[level];
  const emit = (name: keyof typeof levels, message: string, fields?: Record<string, unknown>) => {
    if (levels[name] < min) return;
    write(
      `${JSON.stringify({ time: new Date().toISOString(), level: name, message, ...redact(fields ?? {}) })}\n`,
    );
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

/** A logger that writes nothing, for tests. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
