import { type Context, context, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Metrics } from "./metrics.js";
import type { AdminCallObserver } from "./ports.js";
import { requestFields } from "./request-fields.js";
import type { Tracing } from "./tracing.js";

// Codes that mean keymesh failed rather than the caller: only these mark the span as an error.
const SERVER_FAULTS = new Set(["internal", "unavailable", "unknown", "data_loss", "deadline_exceeded"]);

/** Creates the KeyAdmin observer: a counter by method and code, a duration histogram and a span per call. */
export function createAdminObserver(metrics: Metrics, tracing: Tracing | undefined): AdminCallObserver {
  return {
    start(method, headers) {
      const started = performance.now();
      let span: Span | undefined;
      let active: Context | undefined;
      if (tracing) {
        const parent = tracing.extract(headers);
        span = tracing.tracer.startSpan(
          `keymesh.v1.KeyAdmin/${method}`,
          {
            kind: SpanKind.SERVER,
            attributes: {
              "rpc.system": "connect_rpc",
              "rpc.service": "keymesh.v1.KeyAdmin",
              "rpc.method": method,
            },
          },
          parent,
        );
        active = trace.setSpan(parent, span);
      }
      return {
        run: (call) => (active ? context.with(active, call) : call()),
        finish(code) {
          metrics.adminCalls.inc({ method, code });
          metrics.adminDuration.observe({ method }, (performance.now() - started) / 1000);
          if (span) {
            span.setAttribute("rpc.response.status_code", code);
            if (SERVER_FAULTS.has(code)) span.setStatus({ code: SpanStatusCode.ERROR });
            span.end();
          }
        },
        logFields: requestFields(headers, span?.spanContext().traceId),
      };
    },
  };
}
