import { type Code, ConnectError } from "@connectrpc/connect";
import { asHttp, createEnvoyClient, type EnvoyCheckInput, type HttpView } from "../support/envoy-client.js";
import type { TestServer } from "../support/server.js";

/** Calls Envoy Check for one key space the way a vendor's gateway would, and reads the answer as HTTP. */
export function gateway(t: TestServer, keySpace: string) {
  const envoy = createEnvoyClient(t.grpcAddress);
  return {
    async request(
      method: string,
      path: string,
      headers: Record<string, string> = {},
      extra: Partial<EnvoyCheckInput> = {},
    ): Promise<HttpView> {
      return asHttp(
        await envoy.check({
          method,
          path,
          headers,
          contextExtensions: { "keymesh.key_space": keySpace },
          ...extra,
        }),
      );
    },
    close: () => envoy.close(),
  };
}

/** The RPC code a call fails with, or "ok". */
export async function codeOf(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

/** The JSON error body of a denial. */
export function errorOf(view: HttpView): { code: string; message: string } {
  return (JSON.parse(view.body) as { error: { code: string; message: string } }).error;
}

/** Basic credentials for an id:secret pair. */
export function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;
}

/** JSON text of anything, protobuf messages with 64-bit integers included. */
export function stringify(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

/** Runs `count` calls with at most `concurrency` in flight, as a busy client would; returns results in order. */
export async function burst<T>(
  count: number,
  concurrency: number,
  call: (i: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await call(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}
