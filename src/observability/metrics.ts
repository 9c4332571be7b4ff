import { Counter, Histogram, Registry } from "prom-client";
import { bucketBounds, type CounterCell, HistogramCell, registerCellMetric } from "./cells.js";
import { DecisionTable } from "./decision-table.js";
import type { KeySpaceLabels } from "./key-space-labels.js";
import { OUTCOMES, TRANSPORTS, type Transport } from "./outcomes.js";
import { processRegistry } from "./process-metrics.js";
import { registerStateMetrics, type StateSources } from "./state-metrics.js";

/** Decision latency buckets, seconds: cached answers take tens of microseconds, the deadline is 150 ms. */
export const DECISION_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 1,
];
/** Backend call buckets, seconds: a Redis round trip is sub-millisecond, a Postgres timeout is seconds. */
export const BACKEND_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** KeyAdmin call buckets, seconds. */
const ADMIN_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Which rate limiter answered: Redis (shared) or the in-memory one. */
export type LimiterBackend = "redis" | "memory";
/** The Postgres calls keymesh times: the check path's reads, the readiness probe and the outbox backlog. */
export type DatabaseOperation =
  | "key_lookup"
  | "key_space_load"
  | "key_space_list"
  | "probe"
  | "outbox_backlog";

/** A backend's call latency and its failures by kind (`unavailable`: down, hung or timed out; `error`: other). */
export interface BackendCells {
  duration: HistogramCell;
  failures: { unavailable: CounterCell; error: CounterCell };
}

/** Every metric of one keymesh server, rendered for Prometheus at /metrics. */
export interface Metrics {
  readonly labels: KeySpaceLabels;
  /** The decisions of one transport, which its DecisionObserver records into. */
  table(transport: Transport): DecisionTable;
  limiter(backend: LimiterBackend): BackendCells;
  database(operation: DatabaseOperation): BackendCells;
  readonly adminCalls: Counter<"method" | "code">;
  readonly adminDuration: Histogram<"method">;
  /** Adds the sources of the figures read at scrape time (cache, database, outbox, stream maps). */
  readonly state: StateSources;
  /** The exposition text of the process's and this server's metrics. */
  render(): Promise<string>;
  readonly contentType: string;
}

function backendCells(bounds: Float64Array): BackendCells {
  return {
    duration: new HistogramCell(bounds),
    failures: { unavailable: { value: 0 }, error: { value: 0 } },
  };
}

/** Creates the registry of one server; `labels` bounds the key_space label. */
export function createMetrics(options: { labels: KeySpaceLabels }): Metrics {
  const { labels } = options;
  const registry = new Registry();
  const decisionBounds = bucketBounds(DECISION_BUCKETS);
  const backendBounds = bucketBounds(BACKEND_BUCKETS);
  const tables = new Map(TRANSPORTS.map((t) => [t, new DecisionTable(decisionBounds)]));
  const decisionCells = function* () {
    for (const [transport, table] of tables) {
      for (const [label, outcome, cell] of table.cells()) {
        const { decision, reason } = OUTCOMES[outcome]!;
        yield [{ transport, decision, reason, key_space: labels.values[label]! }, cell] as const;
      }
    }
  };
  registerCellMetric(registry, {
    kind: "counter",
    name: "keymesh_decisions_total",
    help: "Decisions by transport (envoy_grpc, http_authz, verify_grpc, verify_connect), decision (allow, deny, error), reason (none for allows, the deny reason, unavailable for errors) and key space (its id; unknown, unnamed or other).",
    cells: decisionCells,
  });
  registerCellMetric(registry, {
    kind: "histogram",
    name: "keymesh_decision_duration_seconds",
    help: "Time from a request's arrival in keymesh to its answer, with the labels of keymesh_decisions_total.",
    cells: decisionCells,
  });
  // The family dashboards and the bench read since before the labelled one: Envoy Checks only, by decision.
  registerCellMetric(registry, {
    kind: "counter",
    name: "keymesh_check_decisions_total",
    help: "Envoy Check calls over gRPC, by the verdict reached; error means no decision (deadline, backend or internal failure), answered per the failure mode.",
    cells: function* () {
      const sums = { allow: { value: 0 }, deny: { value: 0 }, error: { value: 0 } };
      for (const [, outcome, cell] of tables.get("envoy_grpc")!.cells())
        sums[OUTCOMES[outcome]!.decision].value += cell.count;
      for (const [decision, sum] of Object.entries(sums)) yield [{ decision }, sum] as const;
    },
  });

  const limiters = new Map<LimiterBackend, BackendCells>();
  const databases = new Map<DatabaseOperation, BackendCells>();
  const cellFor = <K extends string>(map: Map<K, BackendCells>, key: K) => {
    let cells = map.get(key);
    if (!cells) {
      cells = backendCells(backendBounds);
      map.set(key, cells);
    }
    return cells;
  };
  registerCellMetric(registry, {
    kind: "histogram",
    name: "keymesh_rate_limiter_duration_seconds",
    help: "Rate-limiter calls (one per limited Check; Redis batches a loop turn's calls into one script), by backend.",
    cells: () => [...limiters].map(([backend, c]) => [{ backend }, c.duration] as const),
  });
  registerCellMetric(registry, {
    kind: "counter",
    name: "keymesh_rate_limiter_failures_total",
    help: "Checks whose rate limiter call failed or timed out (then handled by the rate-limit failure policy).",
    cells: function* () {
      let failed = 0;
      for (const c of limiters.values()) failed += c.failures.unavailable.value + c.failures.error.value;
      yield [{}, { value: failed }] as const;
    },
  });
  registerCellMetric(registry, {
    kind: "histogram",
    name: "keymesh_db_query_duration_seconds",
    help: "Postgres calls by operation: key_lookup and key_space_load/list on the check path, probe, outbox_backlog.",
    cells: () => [...databases].map(([operation, c]) => [{ operation }, c.duration] as const),
  });
  registerCellMetric(registry, {
    kind: "counter",
    name: "keymesh_db_failures_total",
    help: "Failed Postgres calls by operation and kind: unavailable (unreachable, hung, timed out, shutting down) or error.",
    cells: function* () {
      for (const [operation, c] of databases) {
        yield [{ operation, kind: "unavailable" }, c.failures.unavailable] as const;
        yield [{ operation, kind: "error" }, c.failures.error] as const;
      }
    },
  });

  const adminCalls = new Counter({
    name: "keymesh_admin_calls_total",
    help: "KeyAdmin calls by method and status code (ok or the gRPC code name).",
    labelNames: ["method", "code"] as const,
    registers: [registry],
  });
  const adminDuration = new Histogram({
    name: "keymesh_admin_call_duration_seconds",
    help: "KeyAdmin call duration by method, authentication included.",
    labelNames: ["method"] as const,
    buckets: ADMIN_BUCKETS,
    registers: [registry],
  });

  const state = registerStateMetrics(registry, labels);
  const processes = processRegistry();
  return {
    labels,
    table: (transport) => tables.get(transport)!,
    limiter: (backend) => cellFor(limiters, backend),
    database: (operation) => cellFor(databases, operation),
    adminCalls,
    adminDuration,
    state,
    render: async () => `${await processes.metrics()}\n${await registry.metrics()}`,
    contentType: registry.contentType,
  };
}
