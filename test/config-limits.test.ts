/** The request limit and timeout settings (src/config.ts); no Postgres or Redis. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";

const SETTINGS = {
  KEYMESH_HTTP_READ_MAX_BYTES: {
    field: "httpReadMaxBytes",
    byDefault: 1_048_576,
    min: 1024,
    max: 67_108_864,
  },
  KEYMESH_HTTP_MAX_HEADER_BYTES: {
    field: "httpMaxHeaderBytes",
    byDefault: 16_384,
    min: 1024,
    max: 1_048_576,
  },
  KEYMESH_HTTP_HEADERS_TIMEOUT_MS: {
    field: "httpHeadersTimeoutMs",
    byDefault: 10_000,
    min: 100,
    max: 300_000,
  },
  KEYMESH_HTTP_REQUEST_TIMEOUT_MS: {
    field: "httpRequestTimeoutMs",
    byDefault: 30_000,
    min: 100,
    max: 3_600_000,
  },
  KEYMESH_HTTP_IDLE_TIMEOUT_MS: { field: "httpIdleTimeoutMs", byDefault: 65_000, min: 100, max: 3_600_000 },
  KEYMESH_AUTHZ_MAX_BODY_BYTES: { field: "authzMaxBodyBytes", byDefault: 65_536, min: 0, max: 16_777_216 },
  KEYMESH_GRPC_MAX_RECEIVE_BYTES: {
    field: "grpcMaxReceiveBytes",
    byDefault: 4_194_304,
    min: 65_536,
    max: 67_108_864,
  },
  KEYMESH_GRPC_MAX_METADATA_BYTES: {
    field: "grpcMaxMetadataBytes",
    byDefault: 16_384,
    min: 1024,
    max: 1_048_576,
  },
  KEYMESH_GRPC_IDLE_TIMEOUT_MS: {
    field: "grpcIdleTimeoutMs",
    byDefault: 300_000,
    min: 1000,
    max: 86_400_000,
  },
  KEYMESH_GRPC_KEEPALIVE_TIME_MS: {
    field: "grpcKeepaliveTimeMs",
    byDefault: 60_000,
    min: 1000,
    max: 86_400_000,
  },
  KEYMESH_GRPC_KEEPALIVE_TIMEOUT_MS: {
    field: "grpcKeepaliveTimeoutMs",
    byDefault: 20_000,
    min: 100,
    max: 600_000,
  },
  KEYMESH_GRPC_MAX_CONCURRENT_STREAMS: {
    field: "grpcMaxConcurrentStreams",
    byDefault: 1000,
    min: 1,
    max: 1_000_000,
  },
} as const;
type Setting = keyof typeof SETTINGS;
const NAMES = Object.keys(SETTINGS) as Setting[];

// The two HTTP timeouts depend on each other; the property sets the other one so that only the tested bound applies.
function envWith(name: Setting, value: string): Record<string, string> {
  if (name === "KEYMESH_HTTP_HEADERS_TIMEOUT_MS")
    return { [name]: value, KEYMESH_HTTP_REQUEST_TIMEOUT_MS: "3600000" };
  if (name === "KEYMESH_HTTP_REQUEST_TIMEOUT_MS")
    return { [name]: value, KEYMESH_HTTP_HEADERS_TIMEOUT_MS: "100" };
  return { [name]: value };
}

describe("request limit settings (no Postgres, no Redis)", () => {
  it("has a documented default for every limit", () => {
    const config = loadConfig({});
    for (const name of NAMES) expect(config[SETTINGS[name].field]).toBe(SETTINGS[name].byDefault);
  });

  it("accepts every value in a limit's range and refuses every other, naming the setting (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...NAMES),
        fc.oneof(fc.integer({ min: 0, max: 2 ** 40 }).map(String), fc.string({ minLength: 1 })),
        (name, raw) => {
          const { field, min, max } = SETTINGS[name];
          const valid = /^\d+$/.test(raw) && Number(raw) >= min && Number(raw) <= max;
          if (valid) expect(loadConfig(envWith(name, raw))[field]).toBe(Number(raw));
          else {
            expect(() => loadConfig(envWith(name, raw))).toThrow(ConfigError);
            expect(() => loadConfig(envWith(name, raw))).toThrow(name);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("refuses a request timeout shorter than the headers timeout", () => {
    expect(() =>
      loadConfig({ KEYMESH_HTTP_HEADERS_TIMEOUT_MS: "5000", KEYMESH_HTTP_REQUEST_TIMEOUT_MS: "4999" }),
    ).toThrow(/KEYMESH_HTTP_REQUEST_TIMEOUT_MS must be at least KEYMESH_HTTP_HEADERS_TIMEOUT_MS/);
    expect(
      loadConfig({ KEYMESH_HTTP_HEADERS_TIMEOUT_MS: "5000", KEYMESH_HTTP_REQUEST_TIMEOUT_MS: "5000" })
        .httpRequestTimeoutMs,
    ).toBe(5000);
  });
});
