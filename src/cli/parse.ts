import { create } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Limit, LimitSchema } from "../../gen/keymesh/v1/types_pb.js";
import { usageError } from "./errors.js";

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Seconds from `90`, `90s`, `15m`, `24h`, `7d` or `2w`. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+)([smhdw]?)$/.exec(text.trim());
  if (!match)
    throw usageError(
      `${flag} takes a duration such as 3600, 90s, 15m, 24h or 7d, not ${JSON.stringify(text)}`,
    );
  return Number(match[1]) * UNITS[match[2] || "s"]!;
}

/** A limit from `NAME=CAPACITY/PERIOD`, such as `minute=120/60s` or `day=50000/1d`. */
export function parseLimit(text: string, flag: string): Limit {
  const match = /^([a-z0-9_-]{1,32})=(\d+)\/(\w+)$/.exec(text.trim());
  if (!match)
    throw usageError(
      `${flag} takes NAME=CAPACITY/PERIOD, such as minute=120/60s or day=50000/1d, not ${JSON.stringify(text)}`,
    );
  return create(LimitSchema, {
    name: match[1]!,
    capacity: BigInt(match[2]!),
    periodSeconds: BigInt(parseDuration(match[3]!, flag)),
  });
}

/**
 * A point in time from an ISO date or timestamp, or a duration counted from now: into the future for expiries
 * (`30d`), into the past for filters (`since 1h`).
 */
export function parseInstant(
  text: string,
  flag: string,
  direction: "future" | "past",
  now = Date.now(),
): Date {
  const value = text.trim();
  if (/^\d+[smhdw]?$/.test(value)) {
    const ms = parseDuration(value, flag) * 1000;
    return new Date(direction === "future" ? now + ms : now - ms);
  }
  const date = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(date.getTime()))
    throw usageError(
      `${flag} takes a date (2030-01-31, 2030-01-31T12:00:00Z) or a duration (30d), not ${JSON.stringify(text)}`,
    );
  return date;
}

/** A proto timestamp for an instant. */
export const timestamp = (date: Date): Timestamp => timestampFromDate(date);

/** Metadata from repeated `KEY=VALUE`; a value that reads as JSON (a number, true, an object) keeps its type. */
export function parseMetadata(pairs: readonly string[], flag: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw usageError(`${flag} takes KEY=VALUE, not ${JSON.stringify(pair)}`);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // Plain text stays a string.
    }
    out[pair.slice(0, eq)] = value;
  }
  return out;
}

/** Collects a repeatable option; values may also be comma-separated. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [
    ...(previous ?? []),
    ...value
      .split(",")
      .map((v) => v.trim())
      .filter(Boolean),
  ];
}

/** Collects a repeatable option as given (for values that may contain commas). */
export function collectRaw(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** An enum value from its short name (`active` for KEY_STATUS_ACTIVE), listing the choices when it is unknown. */
export function parseEnum<E extends number>(
  names: Record<string, string | number>,
  text: string,
  flag: string,
  allowed?: readonly string[],
): E {
  const key = text.trim().toUpperCase().replace(/-/g, "_");
  const value = names[key];
  const choices = (
    allowed ?? Object.keys(names).filter((k) => Number.isNaN(Number(k)) && k !== "UNSPECIFIED")
  ).map((k) => k.toLowerCase().replace(/_/g, "-"));
  if (typeof value !== "number" || key === "UNSPECIFIED" || (allowed && !allowed.includes(key)))
    throw usageError(`${flag} must be one of ${choices.join(", ")}, not ${JSON.stringify(text)}`);
  return value as E;
}

/** Reads every page of a list call. */
export async function listAll<T>(
  page: (token: string) => Promise<{ items: T[]; next: string }>,
  limit = Number.POSITIVE_INFINITY,
): Promise<T[]> {
  const out: T[] = [];
  let token = "";
  do {
    const { items, next } = await page(token);
    out.push(...items);
    token = next;
  } while (token && out.length < limit);
  return out.slice(0, limit);
}
