import {
  type Attributes,
  type Context,
  context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { TracingConfig } from "../config.js";
import type { HeaderReader } from "./ports.js";

/** Spans for keymesh: what the decision paths, backends and KeyAdmin calls open them through. */
export interface Tracing {
  readonly tracer: Tracer;
  /** The trace context a request's `traceparent` (and `tracestate`) headers carry, or the root context. */
  extract(headers: HeaderReader): Context;
  /** Opens a client span under the active span; undefined when no span is active (a call outside any request). */
  startChild(name: string, attributes: Attributes): Span | undefined;
  /** Exports every span ended so far. */
  flush(): Promise<void>;
  /** Exports what is left and stops. */
  shutdown(): Promise<void>;
}

const headerGetter: TextMapGetter<HeaderReader> = {
  get: (carrier, key) => carrier.get(key) ?? undefined,
  keys: () => [],
};

let contextManagerRegistered = false;

/**
 * Starts tracing as configured, or returns undefined when it is off (the default): nothing of the SDK is then
 * loaded, and decision paths test one boolean. `exporter` replaces the configured one (tests pass an in-memory
 * exporter) and is fed span by span rather than in batches.
 */
export async function createTracing(
  config: TracingConfig,
  options: { exporter?: SpanExporter } = {},
): Promise<Tracing | undefined> {
  if (config.exporter === "none" && !options.exporter) return undefined;
  const [base, core, resources, asyncHooks] = await Promise.all([
    import("@opentelemetry/sdk-trace-base"),
    import("@opentelemetry/core"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/context-async-hooks"),
  ]);
  // Backend calls find their parent span through the active context, which must follow promises and callbacks.
  // One manager serves the process; registering fails harmlessly if the embedding program has one already.
  if (!contextManagerRegistered) {
    context.setGlobalContextManager(new asyncHooks.AsyncLocalStorageContextManager().enable());
    contextManagerRegistered = true;
  }
  let exporter: SpanExporter;
  if (options.exporter) exporter = options.exporter;
  else if (config.exporter === "console") exporter = new base.ConsoleSpanExporter();
  else {
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-proto");
    exporter = new OTLPTraceExporter({
      url: config.endpoint,
      headers: config.headers,
      timeoutMillis: config.timeoutMs,
    });
  }
  const ratio = new base.TraceIdRatioBasedSampler(config.samplerRatio);
  const samplers = {
    always_on: () => new base.AlwaysOnSampler(),
    always_off: () => new base.AlwaysOffSampler(),
    traceidratio: () => ratio,
    parentbased_always_on: () => new base.ParentBasedSampler({ root: new base.AlwaysOnSampler() }),
    parentbased_always_off: () => new base.ParentBasedSampler({ root: new base.AlwaysOffSampler() }),
    parentbased_traceidratio: () => new base.ParentBasedSampler({ root: ratio }),
  };
  const provider = new base.BasicTracerProvider({
    sampler: samplers[config.sampler](),
    resource: resources.resourceFromAttributes({
      ...config.resourceAttributes,
      "service.name": config.serviceName,
    }),
    spanProcessors: [
      options.exporter
        ? new base.SimpleSpanProcessor(exporter)
        : new base.BatchSpanProcessor(exporter, { maxQueueSize: 4096 }),
    ],
  });
  const tracer = provider.getTracer("keymesh");
  const propagator = new core.W3CTraceContextPropagator();
  return {
    tracer,
    extract: (headers) => propagator.extract(ROOT_CONTEXT, headers, headerGetter),
    startChild(name, attributes) {
      const active = context.active();
      if (!trace.getSpan(active)) return undefined;
      return tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, active);
    },
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

/** Ends `span` as failed with the error's kind (never its message, which may name hosts or queries). */
export function endFailed(span: Span, error: unknown): void {
  const kind = error instanceof Error ? error.name : typeof error;
  const code = (error as { code?: unknown } | null)?.code;
  span.setAttribute("error.type", typeof code === "string" ? code : kind);
  span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}
