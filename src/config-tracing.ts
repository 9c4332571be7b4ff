import { ConfigError, type Env, fraction, int, keyValues, oneOf, plain, url } from "./config-values.js";

/* The OpenTelemetry settings, read from the standard OTEL_* variables (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/). */

/** Trace export settings (OTEL_* variables); `exporter: "none"` turns tracing off. */
export interface TracingConfig {
  exporter: "none" | "otlp" | "console";
  /** The OTLP/HTTP (protobuf) URL spans are sent to. */
  endpoint: string;
  /** Headers for the exporter's requests (may carry a collector's credentials: never logged). */
  headers: Record<string, string>;
  timeoutMs: number;
  sampler: TraceSampler;
  /** The sampling ratio of the ratio samplers. */
  samplerRatio: number;
  serviceName: string;
  resourceAttributes: Record<string, string>;
}

/** The OTEL_TRACES_SAMPLER values keymesh supports (all of the specification's built-in ones). */
export const TRACE_SAMPLERS = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;
export type TraceSampler = (typeof TRACE_SAMPLERS)[number];

export function tracingConfig(env: Env): TracingConfig {
  const disabled = (env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true";
  const exporter = oneOf(env, "OTEL_TRACES_EXPORTER", ["none", "otlp", "console"], "none");
  for (const name of ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"]) {
    const protocol = env[name];
    if (protocol && protocol !== "http/protobuf")
      throw new ConfigError(
        name,
        `must be http/protobuf (the only protocol keymesh exports), got "${protocol}"`,
      );
  }
  const tracesUrl = url(plain(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), ["http:", "https:"]);
  const baseUrl = url(plain(env, "OTEL_EXPORTER_OTLP_ENDPOINT"), ["http:", "https:"]);
  const sampler = oneOf(env, "OTEL_TRACES_SAMPLER", TRACE_SAMPLERS, "parentbased_always_on");
  const resourceAttributes = keyValues(env, "OTEL_RESOURCE_ATTRIBUTES", false);
  return {
    exporter: disabled ? "none" : exporter,
    endpoint:
      tracesUrl ?? (baseUrl ? `${baseUrl.replace(/\/+$/, "")}/v1/traces` : "http://localhost:4318/v1/traces"),
    headers: {
      ...keyValues(env, "OTEL_EXPORTER_OTLP_HEADERS", true),
      ...keyValues(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", true),
    },
    timeoutMs: int(
      env,
      "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
      int(env, "OTEL_EXPORTER_OTLP_TIMEOUT", 10_000, 1, 600_000),
      1,
      600_000,
    ),
    sampler,
    // Only the ratio samplers read the argument; the specification's default ratio is 1.
    samplerRatio: sampler.endsWith("traceidratio") ? fraction(env, "OTEL_TRACES_SAMPLER_ARG", 1) : 1,
    // OTEL_SERVICE_NAME wins over a service.name among the resource attributes, as the specification says.
    serviceName: env.OTEL_SERVICE_NAME || resourceAttributes["service.name"] || "keymesh",
    resourceAttributes,
  };
}
