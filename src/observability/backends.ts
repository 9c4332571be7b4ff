import type { Attributes, Span } from "@opentelemetry/api";
import type { KeyLookup, KeySpaceSource, RateLimiter } from "../domain/ports.js";
import type { BackendCells, LimiterBackend } from "./metrics.js";
import { endFailed, type Tracing } from "./tracing.js";

/** Whether a failure means the backend is unavailable (down, hung, timed out) rather than the call being bad. */
export type FailureClassifier = (error: unknown) => boolean;

function failed(
  cells: BackendCells,
  classify: FailureClassifier,
  started: number,
  error: unknown,
  span?: Span,
) {
  cells.duration.observe((performance.now() - started) / 1000);
  if (classify(error)) cells.failures.unavailable.value++;
  else cells.failures.error.value++;
  if (span) endFailed(span, error);
}

/** Times one backend call, counts its failure, and wraps it in a child span of the active request's span. */
function observe<T>(
  cells: BackendCells,
  classify: FailureClassifier,
  tracing: Tracing | undefined,
  span: { name: string; attributes: Attributes } | undefined,
  call: () => Promise<T>,
): Promise<T> {
  const started = performance.now();
  const active = span && tracing ? tracing.startChild(span.name, span.attributes) : undefined;
  let pending: Promise<T>;
  try {
    pending = call();
  } catch (error) {
    failed(cells, classify, started, error, active);
    throw error;
  }
  return pending.then(
    (result) => {
      cells.duration.observe((performance.now() - started) / 1000);
      active?.end();
      return result;
    },
    (error: unknown) => {
      failed(cells, classify, started, error, active);
      throw error;
    },
  );
}

// Every limiter failure leaves the decision to the rate-limit failure policy, so all count as unavailable.
const always = () => true;

/** A rate limiter that reports each call's latency and failure, with a span for Redis calls. */
export function instrumentLimiter(
  limiter: RateLimiter,
  backend: LimiterBackend,
  cells: BackendCells,
  tracing?: Tracing,
): RateLimiter {
  return {
    consume(request) {
      const span =
        backend === "redis"
          ? {
              name: "redis rate limit",
              attributes: { "db.system.name": "redis", "keymesh.buckets": request.buckets.length },
            }
          : undefined;
      return observe(cells, always, tracing, span, () => limiter.consume(request));
    },
    close: () => limiter.close(),
  };
}

const postgres = (operation: string, table: string) => ({
  name: `postgres ${operation}`,
  attributes: { "db.system.name": "postgresql", "db.operation.name": "SELECT", "db.collection.name": table },
});

/** A key lookup that reports each Postgres read's latency and failure, with a span. */
export function instrumentKeyLookup(
  lookup: KeyLookup,
  cells: BackendCells,
  classify: FailureClassifier,
  tracing?: Tracing,
): KeyLookup {
  const span = postgres("key_lookup", "keys");
  return {
    findByDigest: (digest) => observe(cells, classify, tracing, span, () => lookup.findByDigest(digest)),
  };
}

/** A key-space source that reports each Postgres read's latency and failure, with a span. */
export function instrumentKeySpaceSource(
  source: KeySpaceSource,
  cells: { load: BackendCells; list: BackendCells },
  classify: FailureClassifier,
  tracing?: Tracing,
): KeySpaceSource {
  const loadSpan = postgres("key_space_load", "key_spaces");
  const listSpan = postgres("key_space_list", "key_spaces");
  return {
    load: (idOrName) => observe(cells.load, classify, tracing, loadSpan, () => source.load(idOrName)),
    loadAll: () => observe(cells.list, classify, tracing, listSpan, () => source.loadAll()),
  };
}
