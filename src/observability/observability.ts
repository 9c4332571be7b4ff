import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { createAdminObserver } from "./admin-observer.js";
import { createDecisionObserver } from "./decision-observer.js";
import { createKeySpaceLabels, type NamedKeySpace } from "./key-space-labels.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { TRANSPORTS, type Transport } from "./outcomes.js";
import type { AdminCallObserver, DecisionObserver } from "./ports.js";
import type { Tracing } from "./tracing.js";

/** Metrics, tracing and the decision log of one server, handed to the layers through small interfaces. */
export interface Observability {
  readonly metrics: Metrics;
  /** Undefined while tracing is off (the default). */
  readonly tracing: Tracing | undefined;
  /** The observer of one decision path. */
  decisions(transport: Transport): DecisionObserver;
  readonly admin: AdminCallObserver;
  /**
   * Tells the key-space label where key spaces are at hand, without waiting (the core's key-space cache). Until
   * then every named key space is labelled `unknown`.
   */
  lookupKeySpacesWith(lookup: (idOrName: string) => NamedKeySpace | undefined): void;
  /** Exports the spans still buffered. */
  close(): Promise<void>;
}

/** The settings observability reads. */
export type ObservabilityConfig = Pick<
  Config,
  "metricsKeySpaceLabels" | "decisionLogSampleRate" | "defaultKeySpace"
>;

/** Creates the observability of one server; `tracing` comes from createTracing (undefined when off). */
export function createObservability(options: {
  config: ObservabilityConfig;
  logger?: Logger;
  tracing?: Tracing | undefined;
}): Observability {
  const { config, tracing } = options;
  let lookup: (idOrName: string) => NamedKeySpace | undefined = () => undefined;
  const labels = createKeySpaceLabels({
    max: config.metricsKeySpaceLabels,
    defaultKeySpace: config.defaultKeySpace,
    lookup: (idOrName) => lookup(idOrName),
  });
  const metrics = createMetrics({ labels });
  const observers = new Map<Transport, DecisionObserver>(
    TRANSPORTS.map((transport) => [
      transport,
      createDecisionObserver({
        transport,
        table: metrics.table(transport),
        labels,
        tracing,
        logger: options.logger,
        decisionLogRate: config.decisionLogSampleRate,
      }),
    ]),
  );
  return {
    metrics,
    tracing,
    decisions: (transport) => observers.get(transport)!,
    admin: createAdminObserver(metrics, tracing),
    lookupKeySpacesWith(next) {
      lookup = next;
    },
    close: async () => {
      await tracing?.shutdown();
    },
  };
}
