import { Gauge, type Registry } from "prom-client";
import { type CounterCell, registerCellMetric } from "./cells.js";
import type { KeySpaceLabels } from "./key-space-labels.js";

/** The key cache's counts since start and its sizes. */
export interface CacheStats {
  hits: number;
  negativeHits: number;
  misses: number;
  entries: number;
  negativeEntries: number;
}

/** The webhook outbox rows still to deliver and the age of the oldest. */
export interface OutboxBacklog {
  pending: number;
  oldestAgeSeconds: number;
}

/** A stream-map recycler's counts (see src/transport/stream-map-recycler.ts). */
export interface RecyclerStats {
  readonly watching: number;
  readonly watched: number;
  readonly unsupported: number;
  readonly recycled: number;
}

/** What a webhook delivery attempt came to. */
export type DeliveryOutcome = "delivered" | "retry" | "given_up";

/** Where the figures read at scrape time come from; each is optional until the server wires it. */
export interface StateSources {
  cache?: () => CacheStats;
  databaseUp?: () => boolean;
  /** Reads the outbox backlog; undefined when it could not be read in time (the last figures stay). */
  outbox?: () => Promise<OutboxBacklog | undefined>;
  /** Delivery attempts by outcome, counted by the outbox worker. */
  readonly deliveries: Record<DeliveryOutcome, CounterCell>;
  /** The recyclers of the gRPC and HTTP listeners. */
  readonly streamMaps: Map<"grpc" | "http", RecyclerStats>;
}

/** Registers the families read from `StateSources` at scrape time and returns the (empty) sources to fill in. */
export function registerStateMetrics(registry: Registry, labels: KeySpaceLabels): StateSources {
  const sources: StateSources = {
    deliveries: { delivered: { value: 0 }, retry: { value: 0 }, given_up: { value: 0 } },
    streamMaps: new Map(),
  };
  registerCellMetric(registry, {
    kind: "counter",
    name: "keymesh_key_cache_lookups_total",
    help: "Key cache reads by result: hit (key known), negative_hit (known not to exist), miss (Postgres asked).",
    cells: function* () {
      const stats = sources.cache?.();
      if (!stats) return;
      yield [{ result: "hit" }, { value: stats.hits }] as const;
      yield [{ result: "negative_hit" }, { value: stats.negativeHits }] as const;
      yield [{ result: "miss" }, { value: stats.misses }] as const;
    },
  });
  new Gauge({
    name: "keymesh_cached_keys",
    help: "Keys in the in-process cache.",
    registers: [registry],
    collect() {
      this.set(sources.cache?.().entries ?? 0);
    },
  });
  new Gauge({
    name: "keymesh_key_cache_negative_entries",
    help: "Digests remembered as unknown (the negative cache).",
    registers: [registry],
    collect() {
      this.set(sources.cache?.().negativeEntries ?? 0);
    },
  });
  new Gauge({
    name: "keymesh_database_up",
    help: "Whether the last database probe succeeded.",
    registers: [registry],
    collect() {
      this.set(sources.databaseUp ? (sources.databaseUp() ? 1 : 0) : 0);
    },
  });

  // Both outbox gauges are collected concurrently in one scrape; they share one read of the outbox.
  let backlog: OutboxBacklog = { pending: 0, oldestAgeSeconds: 0 };
  let reading: Promise<void> | undefined;
  const readBacklog = () => {
    reading ??= (async () => {
      backlog = (await sources.outbox?.().catch(() => undefined)) ?? backlog;
    })().finally(() => {
      reading = undefined;
    });
    return reading;
  };
  new Gauge({
    name: "keymesh_webhook_outbox_pending",
    help: "Webhook deliveries waiting in the outbox (shared by every instance over one database).",
    registers: [registry],
    async collect() {
      await readBacklog();
      this.set(backlog.pending);
    },
  });
  new Gauge({
    name: "keymesh_webhook_outbox_oldest_pending_age_seconds",
    help: "Age of the oldest webhook delivery still waiting in the outbox (0 when empty).",
    registers: [registry],
    async collect() {
      await readBacklog();
      this.set(backlog.oldestAgeSeconds);
    },
  });
  registerCellMetric(registry, {
    kind: "counter",
    name: "keymesh_webhook_deliveries_total",
    help: "Webhook delivery attempts by this instance, by outcome: delivered, retry (failed, will retry), given_up.",
    cells: () => Object.entries(sources.deliveries).map(([outcome, cell]) => [{ outcome }, cell] as const),
  });

  const recycler = (name: string, help: string, read: (r: RecyclerStats) => number) =>
    registerCellMetric(registry, {
      kind: "counter",
      name,
      help,
      cells: () =>
        [...sources.streamMaps].map(([listener, r]) => [{ listener }, { value: read(r) }] as const),
    });
  recycler(
    "keymesh_stream_map_sessions_watched_total",
    "HTTP/2 sessions whose stream map is recycled, by listener (grpc, http).",
    (r) => r.watched,
  );
  recycler(
    "keymesh_stream_map_sessions_unsupported_total",
    "HTTP/2 sessions whose stream map was not found: this Node version keeps it elsewhere, and the recycler is off.",
    (r) => r.unsupported,
  );
  recycler(
    "keymesh_stream_map_recycled_total",
    "Stream maps replaced by the recycler, by listener.",
    (r) => r.recycled,
  );
  new Gauge({
    name: "keymesh_stream_map_sessions_watching",
    help: "HTTP/2 sessions watched by the recycler now, by listener.",
    labelNames: ["listener"] as const,
    registers: [registry],
    collect() {
      for (const [listener, r] of sources.streamMaps) this.set({ listener }, r.watching);
    },
  });

  new Gauge({
    name: "keymesh_key_space_info",
    help: "1 for each key space with its own key_space label, naming it: join on key_space for readable names.",
    labelNames: ["key_space", "name"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const { id, name } of labels.named()) this.set({ key_space: id, name }, 1);
    },
  });
  return sources;
}
