import type { Writable } from "node:stream";
import type { JsonValue } from "@bufbuild/protobuf";
import Table from "cli-table3";
import YAML from "yaml";
import type { OutputFormat } from "./config.js";

/** One column of a table: its header and how to show an item in it. */
export interface Column<T> {
  header: string;
  value: (item: T) => string;
}

/** How a kind of record is shown: table columns, and its JSON form (the proto JSON mapping) for json and yaml. */
export interface View<T> {
  columns: Column<T>[];
  /** Extra rows for a single record shown in a table (detail that would make a list too wide). */
  detail?: Column<T>[];
  json: (item: T) => JsonValue;
}

/** Where command results go: data on stdout, in the chosen format; notes and progress on stderr. */
export interface Printer {
  readonly format: OutputFormat;
  /** Prints records as a table, tab-separated lines, or a JSON / YAML array. */
  list<T>(items: readonly T[], view: View<T>): void;
  /** Prints one record as a two-column table, `field<TAB>value` lines, or a JSON / YAML document. */
  one<T>(item: T, view: View<T>): void;
  /** Prints a document as JSON or YAML (tables fall back to YAML). */
  document(value: JsonValue): void;
  /** Writes text to stdout as it is. */
  raw(text: string): void;
  /** Writes a human note to stderr, never mixed into the data on stdout. */
  note(message: string): void;
  readonly stdout: Writable & { isTTY?: boolean; columns?: number };
  readonly stderr: Writable & { isTTY?: boolean };
}

// No colours (output stays clean when captured) and no rules between rows.
const NO_STYLE = { head: [], border: [], compact: true };

function table(rows: string[][], head?: string[]): string {
  const t = new Table({ head: head ?? [], style: NO_STYLE });
  t.push(...rows);
  return t.toString();
}

const plainCell = (value: string) => value.replace(/[\t\n]/g, " ");

/** Formats records and documents for `format`. */
export function createPrinter(
  format: OutputFormat,
  stdout: Printer["stdout"] = process.stdout,
  stderr: Printer["stderr"] = process.stderr,
): Printer {
  const document = (value: JsonValue) => {
    if (format === "json") stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    else stdout.write(YAML.stringify(value, { lineWidth: 0 }));
  };
  return {
    format,
    stdout,
    stderr,
    list(items, view) {
      if (format === "json" || format === "yaml") return document(items.map(view.json));
      const rows = items.map((item) => view.columns.map((c) => c.value(item)));
      if (format === "plain") {
        for (const row of rows) stdout.write(`${row.map(plainCell).join("\t")}\n`);
        return;
      }
      if (rows.length === 0) {
        stderr.write("(none)\n");
        return;
      }
      stdout.write(
        `${table(
          rows,
          view.columns.map((c) => c.header),
        )}\n`,
      );
    },
    one(item, view) {
      if (format === "json" || format === "yaml") return document(view.json(item));
      const fields = [...view.columns, ...(view.detail ?? [])].map((c) => [c.header, c.value(item)]);
      if (format === "plain") {
        for (const [name, value] of fields) stdout.write(`${plainCell(name!)}\t${plainCell(value!)}\n`);
        return;
      }
      // A person reading a table has no use for empty rows; `plain` keeps them so that lines stay in place.
      stdout.write(`${table(fields.filter(([, value]) => value !== ""))}\n`);
    },
    document(value) {
      if (format === "json") stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      else stdout.write(YAML.stringify(value, { lineWidth: 0 }));
    },
    raw(text) {
      stdout.write(text);
    },
    note(message) {
      stderr.write(`${message}\n`);
    },
  };
}
