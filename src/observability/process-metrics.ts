import { performance } from "node:perf_hooks";
import { Counter, collectDefaultMetrics, Registry } from "prom-client";

let shared: Registry | undefined;

/**
 * The process's own figures, once per process however many servers it runs (tests run several): prom-client's
 * defaults (CPU, memory, heap spaces, handles, event-loop lag, GC pauses) plus event-loop busy and idle time, whose
 * rate is the loop's utilisation over any window a query picks.
 */
export function processRegistry(): Registry {
  if (shared) return shared;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const seconds = (ms: number) => ms / 1000;
  new Counter({
    name: "nodejs_eventloop_active_seconds_total",
    help: "Time the event loop spent running callbacks; its rate is the loop's utilisation (1 means saturated).",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(seconds(performance.eventLoopUtilization().active));
    },
  });
  new Counter({
    name: "nodejs_eventloop_idle_seconds_total",
    help: "Time the event loop spent waiting for I/O.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(seconds(performance.eventLoopUtilization().idle));
    },
  });
  shared = registry;
  return registry;
}
