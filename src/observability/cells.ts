import type { Metric, Registry } from "prom-client";

/**
 * One label set's histogram, updated in place: a decision adds to a few numbers of an object bound to its labels
 * once, where prom-client's own `labels(...).observe()` hashes the label values into a string on every call.
 * prom-client still renders it, through `registerCellMetric`.
 */
export class HistogramCell {
  count = 0;
  sum = 0;
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  readonly counts: Float64Array;

  constructor(readonly bounds: Float64Array) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sum += value;
  }
}

/** A counter cell: a number a caller adds to. */
export interface CounterCell {
  value: number;
}

/** Creates the bucket bounds cells share, in seconds. */
export function bucketBounds(seconds: readonly number[]): Float64Array {
  return Float64Array.from([...seconds].sort((a, b) => a - b));
}

type Labels = Record<string, string>;

interface RenderedValue {
  value: number;
  labels: Labels;
  metricName?: string;
}

/** What a cell metric reports at scrape time: each label set with its cell. */
export type CellSource<C> = () => Iterable<readonly [Labels, C]>;

/** Registers a family whose series are read from cells at scrape time, rendered by prom-client like its own. */
export function registerCellMetric(
  registry: Registry,
  family:
    | { kind: "histogram"; name: string; help: string; cells: CellSource<HistogramCell> }
    | { kind: "counter"; name: string; help: string; cells: CellSource<CounterCell | HistogramCell> },
): void {
  const get = () => {
    const values: RenderedValue[] = [];
    if (family.kind === "counter") {
      for (const [labels, cell] of family.cells()) {
        values.push({ labels, value: "count" in cell ? cell.count : cell.value });
      }
    } else {
      for (const [labels, cell] of family.cells()) histogramValues(family.name, labels, cell, values);
    }
    return { name: family.name, help: family.help, type: family.kind, aggregator: "sum", values };
  };
  // prom-client renders any object with this shape (name, help, type, get); its classes add nothing it reads.
  registry.registerMetric({
    name: family.name,
    help: family.help,
    type: family.kind,
    aggregator: "sum",
    get: async () => get(),
    reset() {},
  } as unknown as Metric);
}

function histogramValues(name: string, labels: Labels, cell: HistogramCell, out: RenderedValue[]): void {
  let cumulative = 0;
  for (let i = 0; i <= cell.bounds.length; i++) {
    cumulative += cell.counts[i]!;
    const le = i < cell.bounds.length ? String(cell.bounds[i]) : "+Inf";
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative });
  }
  out.push({ metricName: `${name}_sum`, labels, value: cell.sum });
  out.push({ metricName: `${name}_count`, labels, value: cell.count });
}
