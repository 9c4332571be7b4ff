/** One sample of the Prometheus text exposition format. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A parsed scrape: samples plus the declared TYPE of each family. */
export interface Scrape {
  samples: Sample[];
  types: Map<string, string>;
  /** Samples named `name` whose labels include every pair of `labels`. */
  find(name: string, labels?: Record<string, string>): Sample[];
  /** The one sample named `name` with exactly these labels, or undefined. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

const escapes: Record<string, string> = { "\\": "\\", '"': '"', n: "\n" };

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    if (eq < 0 || text[eq + 1] !== '"') throw new Error(`bad labels in: ${line}`);
    const name = text.slice(i, eq).trim();
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) throw new Error(`bad label name "${name}" in: ${line}`);
    let value = "";
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === "\\") {
        const escaped = escapes[text[j + 1] ?? ""];
        if (escaped === undefined) throw new Error(`bad escape in: ${line}`);
        value += escaped;
        j++;
      } else value += text[j];
    }
    if (j >= text.length) throw new Error(`unterminated label value in: ${line}`);
    if (name in labels) throw new Error(`label ${name} repeated in: ${line}`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ",") i++;
  }
  return labels;
}

function parseValue(text: string, line: string): number {
  // Prometheus reads values with Go's strconv.ParseFloat, which takes NaN and Inf in any case; prom-client writes
  // "Nan" for an event-loop lag not yet sampled.
  const lower = text.toLowerCase();
  if (lower === "+inf" || lower === "inf") return Number.POSITIVE_INFINITY;
  if (lower === "-inf") return Number.NEGATIVE_INFINITY;
  if (lower === "nan") return Number.NaN;
  const value = Number(text);
  if (text === "" || Number.isNaN(value)) throw new Error(`bad value in: ${line}`);
  return value;
}

/** Parses the Prometheus text format (version 0.0.4); throws on any line it cannot read. */
export function parsePrometheus(text: string): Scrape {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    if (line.startsWith("#")) {
      const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (type) types.set(type[1]!, type[2]!);
      else if (!line.startsWith("# HELP ")) throw new Error(`bad comment: ${line}`);
      continue;
    }
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!match) throw new Error(`bad sample: ${line}`);
    samples.push({
      name: match[1]!,
      labels: match[2] ? parseLabels(match[2], line) : {},
      value: parseValue(match[3]!, line),
    });
  }
  const matches = (s: Sample, labels: Record<string, string>) =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  const find = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && matches(s, labels));
  return {
    samples,
    types,
    find,
    value(name, labels = {}) {
      const exact = find(name, labels).filter(
        (s) => Object.keys(s.labels).length === Object.keys(labels).length,
      );
      if (exact.length > 1) throw new Error(`${exact.length} samples of ${name} match`);
      return exact[0]?.value;
    },
  };
}
