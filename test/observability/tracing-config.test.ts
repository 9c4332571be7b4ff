/** Tracing settings from the standard OTEL_* variables (no Postgres or Redis). */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createTracing } from "../../src/observability/tracing.js";

describe("tracing configuration", () => {
  it("is off unless an exporter is named, and then loads no tracing at all", async () => {
    const config = loadConfig({});
    expect(config.tracing.exporter).toBe("none");
    expect(await createTracing(config.tracing)).toBeUndefined();
    expect(loadConfig({ OTEL_TRACES_EXPORTER: "otlp", OTEL_SDK_DISABLED: "true" }).tracing.exporter).toBe(
      "none",
    );
  });

  it("reads the exporter endpoint, headers, sampler and service name the specification's way", () => {
    const { tracing } = loadConfig({
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/",
      OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20abc,x-tenant=acme",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.01",
      OTEL_RESOURCE_ATTRIBUTES: "service.name=ignored,deployment.environment=prod",
      OTEL_SERVICE_NAME: "keymesh-eu",
    });
    expect(tracing).toMatchObject({
      exporter: "otlp",
      endpoint: "http://collector:4318/v1/traces",
      headers: { authorization: "Bearer abc", "x-tenant": "acme" },
      sampler: "parentbased_traceidratio",
      samplerRatio: 0.01,
      serviceName: "keymesh-eu",
      resourceAttributes: { "deployment.environment": "prod" },
    });
    const direct = loadConfig({
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://ignored:4318",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://traces.example/v1/spans",
      OTEL_RESOURCE_ATTRIBUTES: "service.name=from-resource",
    }).tracing;
    expect(direct.endpoint).toBe("https://traces.example/v1/spans");
    expect(direct.serviceName).toBe("from-resource");
    expect(direct.sampler).toBe("parentbased_always_on");
  });

  it("refuses a bad setting by name, without echoing header values", () => {
    expect(() => loadConfig({ OTEL_TRACES_SAMPLER: "sometimes" })).toThrow(/OTEL_TRACES_SAMPLER/);
    expect(() => loadConfig({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "2" })).toThrow(
      /OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1/,
    );
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toThrow(/http\/protobuf/);
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT/,
    );
    try {
      loadConfig({ OTEL_EXPORTER_OTLP_HEADERS: "hunter2-secret" });
      expect.unreachable();
    } catch (error) {
      expect(String(error)).toContain("OTEL_EXPORTER_OTLP_HEADERS");
      expect(String(error)).not.toContain("hunter2");
    }
    expect(() => loadConfig({ KEYMESH_DECISION_LOG_SAMPLE: "half" })).toThrow(/KEYMESH_DECISION_LOG_SAMPLE/);
    expect(() => loadConfig({ KEYMESH_METRICS_KEY_SPACES: "0" })).toThrow(/KEYMESH_METRICS_KEY_SPACES/);
  });
});
