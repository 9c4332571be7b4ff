import { readFileSync } from "node:fs";

/* Readers of one setting each, for config.ts and the settings modules beside it. They read the environment they are given, never process.env. */

/** A setting that failed validation, named so the operator can fix it. */
export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    problem: string,
  ) {
    super(`invalid configuration: ${setting} ${problem}`);
    this.name = "ConfigError";
  }
}

/** The environment a configuration is read from. */
export type Env = Record<string, string | undefined>;

export function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max)
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

export function oneOf<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!(values as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${values.join(", ")}, got "${raw}"`);
  }
  return raw as T;
}

/** A secret's value and the setting it came from (NAME, or NAME_FILE), for error messages. */
export interface Secret {
  value: string | undefined;
  setting: string;
}

/**
 * A secret setting from NAME or from the file NAME_FILE names, as orchestrators mount secrets; the file's trailing
 * line breaks are dropped, since most ways of writing one add a newline. Setting both is an error, not a precedence
 * rule: an operator moving a secret into a file should not be left guessing which value is in force.
 */
export function secret(env: Env, name: string): Secret {
  const fileSetting = `${name}_FILE`;
  const direct = env[name] || undefined;
  const path = env[fileSetting] || undefined;
  if (direct !== undefined && path !== undefined) {
    throw new ConfigError(fileSetting, `and ${name} are both set; set only one of them`);
  }
  if (path === undefined) return { value: direct, setting: name };
  let content: string;
  try {
    content = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "an error";
    throw new ConfigError(fileSetting, `names a file that cannot be read (${code}): ${path}`);
  }
  const value = content.replace(/[\r\n]+$/, "");
  if (value === "") throw new ConfigError(fileSetting, `names an empty file: ${path}`);
  return { value, setting: fileSetting };
}

/** A setting read as is, for the validators that also take secrets. */
export function plain(env: Env, name: string): Secret {
  return { value: env[name] || undefined, setting: name };
}

export function url({ value: raw, setting: name }: Secret, protocols: string[]): string | undefined {
  if (raw === undefined || raw === "") return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    // The value may hold a password, so it is not echoed.
    throw new ConfigError(name, "is not a valid URL");
  }
  if (!protocols.includes(parsed.protocol)) {
    // Not even the scheme is echoed: a mis-mounted secret ("pass:word") would parse as one.
    throw new ConfigError(name, `must use ${protocols.join(" or ")}`);
  }
  return raw;
}

export function fraction(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!/^\s*[\d.eE+-]+\s*$/.test(raw) || !Number.isFinite(value) || value < 0 || value > 1)
    throw new ConfigError(name, `must be a number from 0 to 1, got "${raw}"`);
  return value;
}

/** A W3C Baggage-style list `key=value,key=value`, as OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES use. */
export function keyValues(env: Env, name: string, secret: boolean): Record<string, string> {
  const raw = env[name];
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const item of raw.split(",")) {
    if (item.trim() === "") continue;
    const eq = item.indexOf("=");
    const key = eq > 0 ? item.slice(0, eq).trim() : "";
    // Header values may be credentials, so a bad entry is described, not echoed.
    if (!key) throw new ConfigError(name, secret ? "must be a list of key=value" : `has no key in "${item}"`);
    try {
      out[key] = decodeURIComponent(item.slice(eq + 1).trim());
    } catch {
      throw new ConfigError(name, `has a badly escaped value for ${key}`);
    }
  }
  return out;
}

export function header(env: Env, name: string, fallback: string): string {
  const value = (env[name] || fallback).toLowerCase();
  if (!/^[a-z0-9-]{1,64}$/.test(value))
    throw new ConfigError(name, "must be a header name (letters, digits, dashes)");
  return value;
}
