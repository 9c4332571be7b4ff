/**
 * The CLI's settings: its flags merged with its environment. This is the only CLI module that reads
 * `process.env` (src/config.ts is the service's configuration and is never read here); commands get a CliConfig.
 */
import { readFileSync, statSync } from "node:fs";
import { usageError } from "./errors.js";

/** Output formats: bordered tables, tab-separated lines, or the proto JSON mapping as JSON or YAML. */
export type OutputFormat = "table" | "plain" | "json" | "yaml";

/** The global flags, as the argument parser hands them over. */
export interface GlobalFlags {
  addr?: string;
  grpcAddr?: string;
  rootKeyFile?: string;
  caFile?: string;
  insecure?: boolean;
  timeout?: string;
  output?: string;
}

/** Everything a command needs to reach keymesh and print its answer. */
export interface CliConfig {
  /** KeyAdmin and KeyVerify over Connect (the HTTP port, 8080 by default). */
  addr: URL;
  /** Envoy Check over gRPC (port 9090 by default). */
  grpcAddr: URL;
  timeoutMs: number;
  /** PEM CA certificates for https:// addresses. */
  ca: Buffer | undefined;
  insecure: boolean;
  output: OutputFormat;
  /** The root key; read only by commands that call KeyAdmin. Throws a usage error when none is configured. */
  rootKey(): string;
}

/** The variables the CLI reads. */
export interface CliEnv {
  KEYMESH_ADDR?: string;
  KEYMESH_GRPC_ADDR?: string;
  KEYMESH_ROOT_KEY?: string;
  KEYMESH_ROOT_KEY_FILE?: string;
  KEYMESH_CA_FILE?: string;
  KEYMESH_TIMEOUT_MS?: string;
}

const DEFAULT_ADDR = "http://127.0.0.1:8080";
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** Whether `url` names this machine, where plain http exposes nothing on a network. */
export const isLoopback = (url: URL) => LOOPBACK.test(url.hostname);

/** Parses `host:port` or a URL; a bare address is http:// on this machine and https:// elsewhere. */
export function parseAddress(value: string, what: string): URL {
  const text = value.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text)
    ? text
    : `${LOOPBACK.test(text.replace(/:\d+$/, "")) ? "http" : "https"}://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw usageError(
      `${what} ${JSON.stringify(value)} is not an address; use host:port or http(s)://host:port`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw usageError(`${what} must be http:// or https://, not ${url.protocol}//`);
  if (url.pathname !== "/" || url.search || url.hash)
    throw usageError(`${what} takes no path or query: ${JSON.stringify(value)}`);
  return url;
}

function readSecretFile(path: string, what: string, warn: (message: string) => void): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw usageError(
      `cannot read the ${what} file ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`,
    );
  }
  try {
    if ((statSync(path).mode & 0o077) !== 0)
      warn(`${path} is readable by other users; chmod 600 it, it holds a root key`);
  } catch {
    // The file was just read; a stat failure only costs the warning.
  }
  const key = text.trim();
  if (!key) throw usageError(`the ${what} file ${path} is empty`);
  return key;
}

function parseTimeout(value: string | undefined): number {
  if (value === undefined || value === "") return 10_000;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms <= 0)
    throw usageError(`--timeout must be a positive number of milliseconds, not ${JSON.stringify(value)}`);
  return ms;
}

function parseOutput(value: string | undefined, stdoutIsTTY: boolean): OutputFormat {
  if (value === undefined) return stdoutIsTTY ? "table" : "plain";
  if (value === "table" || value === "plain" || value === "json" || value === "yaml") return value;
  throw usageError(`--output must be table, plain, json or yaml, not ${JSON.stringify(value)}`);
}

/** Merges flags over the environment; nothing is read from disk until a command needs it. */
export function loadCliConfig(
  flags: GlobalFlags,
  options: { env?: CliEnv; stdoutIsTTY?: boolean; warn?: (message: string) => void } = {},
): CliConfig {
  const env: CliEnv = options.env ?? (process.env as CliEnv);
  const warn = options.warn ?? ((message: string) => process.stderr.write(`keymesh: warning: ${message}\n`));
  const addr = parseAddress(flags.addr ?? env.KEYMESH_ADDR ?? DEFAULT_ADDR, "--addr");
  const grpcAddr = flags.grpcAddr ?? env.KEYMESH_GRPC_ADDR;
  const derivedGrpc = new URL(addr);
  derivedGrpc.port = "9090";
  const caFile = flags.caFile ?? env.KEYMESH_CA_FILE;
  let ca: Buffer | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile);
    } catch (error) {
      throw usageError(
        `cannot read the CA file ${caFile}: ${(error as NodeJS.ErrnoException).code ?? error}`,
      );
    }
  }
  let rootKey: string | undefined;
  return {
    addr,
    grpcAddr: grpcAddr ? parseAddress(grpcAddr, "--grpc-addr") : derivedGrpc,
    timeoutMs: parseTimeout(flags.timeout ?? env.KEYMESH_TIMEOUT_MS),
    ca,
    insecure: flags.insecure ?? false,
    output: parseOutput(flags.output, options.stdoutIsTTY ?? false),
    rootKey() {
      if (rootKey !== undefined) return rootKey;
      const file = flags.rootKeyFile ?? (env.KEYMESH_ROOT_KEY ? undefined : env.KEYMESH_ROOT_KEY_FILE);
      if (file) rootKey = readSecretFile(file, "root key", warn);
      else if (env.KEYMESH_ROOT_KEY?.trim()) rootKey = env.KEYMESH_ROOT_KEY.trim();
      else
        throw usageError(
          "no root key: set KEYMESH_ROOT_KEY, or pass --root-key-file PATH (a file holding the km_root_… key " +
            "printed on keymesh's first start). It is never taken as a flag value, which would land in shell history.",
        );
      return rootKey;
    },
  };
}
