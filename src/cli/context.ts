import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Authorization } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import {
  createKeyAdminClient,
  createKeyVerifyClient,
  type KeyAdminClient,
  type KeyVerifyClient,
} from "../client/index.js";
import { type CliConfig, isLoopback } from "./config.js";
import { type CallTarget, usageError } from "./errors.js";
import type { Printer } from "./output.js";

/** What every command works with: its configuration, its printer and lazily built clients. */
export interface CommandContext {
  config: CliConfig;
  print: Printer;
  admin(): KeyAdminClient;
  verify(): KeyVerifyClient;
  /** Envoy's ext_authz service on the gRPC port, called the way Envoy calls it. */
  envoy(): Client<typeof Authorization>;
  /** Stops long-running commands (watch, bulk work) when aborted by SIGINT. */
  signal: AbortSignal;
  /** The address the last client was made for, named in messages about failed calls. */
  target: CallTarget;
}

const base = (url: URL) => url.origin;

// A root key or API key sent over plain http crosses the network readable by anyone on the path.
function refusePlaintext(url: URL, config: CliConfig, flag: string): void {
  if (url.protocol === "http:" && !isLoopback(url) && !config.insecure) {
    throw usageError(
      `refusing to send keys in clear text to ${url.origin}: use https:// in ${flag} (with --ca-file for a ` +
        "private CA), or pass --insecure if the network path is trusted",
    );
  }
}

/** Builds the context for one command run. */
export function createContext(config: CliConfig, print: Printer, signal: AbortSignal): CommandContext {
  let admin: KeyAdminClient | undefined;
  let verify: KeyVerifyClient | undefined;
  let envoy: Client<typeof Authorization> | undefined;
  // One short-lived process: HTTP/1.1 keeps no session open that would hold the process after the command.
  const common = {
    baseUrl: base(config.addr),
    httpVersion: "1.1" as const,
    timeoutMs: config.timeoutMs,
    ca: config.ca,
  };
  const target: CallTarget = { address: config.addr.origin, timeoutMs: config.timeoutMs };
  return {
    config,
    print,
    signal,
    target,
    admin() {
      target.address = config.addr.origin;
      refusePlaintext(config.addr, config, "--addr");
      admin ??= createKeyAdminClient({ ...common, rootKey: config.rootKey() });
      return admin;
    },
    verify() {
      target.address = config.addr.origin;
      refusePlaintext(config.addr, config, "--addr");
      verify ??= createKeyVerifyClient(common);
      return verify;
    },
    envoy() {
      target.address = config.grpcAddr.origin;
      refusePlaintext(config.grpcAddr, config, "--grpc-addr");
      envoy ??= createClient(
        Authorization,
        createGrpcTransport({
          baseUrl: base(config.grpcAddr),
          defaultTimeoutMs: config.timeoutMs,
          ...(config.ca ? { nodeOptions: { ca: config.ca } } : {}),
        }),
      );
      return envoy;
    },
  };
}
