import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Interceptor, type UnaryRequest } from "@connectrpc/connect";

/** How a client retries calls that failed with UNAVAILABLE. */
export interface RetryOptions {
  /** Attempts in all, the first included; 1 turns retries off. Default 3. */
  maxAttempts?: number;
  /** The first backoff, doubled per retry. Default 50 ms. */
  initialBackoffMs?: number;
  /** The cap on one backoff. Default 1000 ms. */
  maxBackoffMs?: number;
}

// Read-only calls and the verdict are safe to repeat; a mutation that failed UNAVAILABLE may have been applied,
// and repeating it could, for example, create a second key.
const READ_ONLY = /^(Get|List)[A-Z]/;

/**
 * Whether a unary call may be sent again after UNAVAILABLE: Get*, List*, KeyVerify.Verify, anything the proto
 * declares free of side effects or idempotent, and a CreateKey that carries an idempotency key (the server returns
 * the same key for a repeat).
 */
export function isRetryable(req: UnaryRequest): boolean {
  const method = req.method;
  if (method.idempotency !== MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN) return true;
  if (READ_ONLY.test(method.name)) return true;
  if (req.service.typeName === "keymesh.v1.KeyVerify" && method.name === "Verify") return true;
  if (method.name === "CreateKey") {
    const key = (req.message as { idempotencyKey?: unknown }).idempotencyKey;
    return typeof key === "string" && key !== "";
  }
  return false;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });

// The deadline headers were written for the first attempt; a retry states what is left of the deadline.
function restateDeadline(req: UnaryRequest, deadline: number | undefined): void {
  if (deadline === undefined) return;
  const left = Math.max(1, Math.floor(deadline - Date.now()));
  if (req.header.has("connect-timeout-ms")) req.header.set("connect-timeout-ms", String(left));
  if (req.header.has("grpc-timeout")) req.header.set("grpc-timeout", `${left}m`);
}

function deadlineOf(req: UnaryRequest, started: number): number | undefined {
  const connect = req.header.get("connect-timeout-ms");
  if (connect) return started + Number(connect);
  const grpc = req.header.get("grpc-timeout");
  const match = grpc ? /^(\d+)([HMSmun])$/.exec(grpc) : null;
  if (!match) return undefined;
  const unit = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 }[match[2] as "H"];
  return started + Number(match[1]) * unit;
}

/**
 * Retries idempotent unary calls that fail with UNAVAILABLE, with exponential backoff and full jitter, within the
 * call's deadline; every other failure, and every failure of a non-idempotent call, is returned at once.
 */
export function retryInterceptor(options: RetryOptions = {}): Interceptor {
  const maxAttempts = Math.max(1, options.maxAttempts ?? 3);
  const initial = Math.max(1, options.initialBackoffMs ?? 50);
  const cap = Math.max(initial, options.maxBackoffMs ?? 1000);
  return (next) => async (req) => {
    if (req.stream || maxAttempts === 1 || !isRetryable(req)) return next(req);
    const started = Date.now();
    const deadline = deadlineOf(req, started);
    for (let attempt = 1; ; attempt++) {
      try {
        return await next(req);
      } catch (error) {
        const code = ConnectError.from(error).code;
        if (code !== Code.Unavailable || attempt >= maxAttempts || req.signal.aborted) throw error;
        const backoff = Math.random() * Math.min(cap, initial * 2 ** (attempt - 1));
        // A retry that could not start before the deadline would only turn UNAVAILABLE into DEADLINE_EXCEEDED.
        if (deadline !== undefined && Date.now() + backoff >= deadline) throw error;
        try {
          await sleep(backoff, req.signal);
        } catch {
          throw error;
        }
        restateDeadline(req, deadline);
      }
    }
  };
}
