/**
 * keymesh/client: typed clients for services that verify keys and for tools that administer keymesh. Built on the
 * generated Connect code for proto/keymesh/v1; other languages generate their own clients from those protos.
 */
import { type Client, createClient } from "@connectrpc/connect";
import { KeyAdmin } from "../../gen/keymesh/v1/admin_pb.js";
import { KeyVerify } from "../../gen/keymesh/v1/verify_pb.js";
import { type RootKeySource, rootKeyInterceptor } from "./root-key.js";
import { createKeymeshTransport, type TransportOptions } from "./transport.js";

export { Code, ConnectError } from "@connectrpc/connect";
export * from "../../gen/keymesh/v1/admin_pb.js";
export * from "../../gen/keymesh/v1/types_pb.js";
export * from "../../gen/keymesh/v1/verify_pb.js";
export { isRetryable, type RetryOptions, retryInterceptor } from "./retry.js";
export { type RootKeySource, rootKeyInterceptor } from "./root-key.js";
export type { TransportOptions } from "./transport.js";

/** A KeyVerify client: `verify({ key, keySpaceId, scopes })` answers with a verdict, never an error for a bad key. */
export type KeyVerifyClient = Client<typeof KeyVerify>;
/** A KeyAdmin client authenticated by a root key. */
export type KeyAdminClient = Client<typeof KeyAdmin>;

/** Options of a KeyVerify client; calls default to a 1 s deadline, since they sit on a request path. */
export type KeyVerifyClientOptions = TransportOptions;

/** Options of a KeyAdmin client; calls default to a 10 s deadline. */
export interface KeyAdminClientOptions extends TransportOptions {
  /** The root key (`km_root_…`) or a function returning it; sent as `authorization: Bearer …`. */
  rootKey: RootKeySource;
}

/** Creates a KeyVerify client. Verify calls that fail with UNAVAILABLE are retried within the deadline. */
export function createKeyVerifyClient(options: KeyVerifyClientOptions): KeyVerifyClient {
  return createClient(KeyVerify, createKeymeshTransport(options, { timeoutMs: 1000 }));
}

/** Creates a KeyAdmin client. Only reads (Get, List) and CreateKey with an idempotency key are retried. */
export function createKeyAdminClient(options: KeyAdminClientOptions): KeyAdminClient {
  return createClient(
    KeyAdmin,
    createKeymeshTransport(options, { timeoutMs: 10_000 }, [rootKeyInterceptor(options.rootKey)]),
  );
}
