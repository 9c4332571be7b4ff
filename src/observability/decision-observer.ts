import { type Context, context, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Verdict } from "../domain/verdict.js";
import type { Logger } from "../log.js";
import type { DecisionTable } from "./decision-table.js";
import { type KeySpaceLabels, UNKNOWN_LABEL } from "./key-space-labels.js";
import { MALFORMED_INDEX, OUTCOMES, outcomeIndex, type Transport } from "./outcomes.js";
import type { DecisionObserver, DecisionSpan, ObservedRequest } from "./ports.js";
import { requestFields, routeOf } from "./request-fields.js";
import type { Tracing } from "./tracing.js";

/** The span name of each decision path: the RPC it serves, or the HTTP endpoint. */
const SPAN_NAMES: Readonly<Record<Transport, string>> = {
  envoy_grpc: "envoy.service.auth.v3.Authorization/Check",
  http_authz: "keymesh /authz",
  verify_grpc: "keymesh.v1.KeyVerify/Verify",
  verify_connect: "keymesh.v1.KeyVerify/Verify",
};

class ActiveSpan implements DecisionSpan {
  constructor(
    readonly span: Span,
    private readonly context: Context,
  ) {}

  run<T>(decide: () => T): T {
    // Under every sampler keymesh offers, the children of a span not sampled are not sampled either (they share its
    // trace id and parent), so an unsampled decision skips making its span the active one.
    return this.span.isRecording() ? context.with(this.context, decide) : decide();
  }

  get traceId(): string {
    return this.span.spanContext().traceId;
  }
}

/** What one transport's observer records into. */
export interface DecisionObserverOptions {
  transport: Transport;
  table: DecisionTable;
  labels: KeySpaceLabels;
  tracing?: Tracing | undefined;
  logger?: Logger | undefined;
  /** Share of decisions written to the decision log (0 for none). */
  decisionLogRate?: number;
}

/**
 * Creates the observer of one decision path. Per decision it reads the clock once, finds its cell with a Map read
 * or two, and adds to a few numbers; spans and the decision log each cost one test when off.
 */
export function createDecisionObserver(options: DecisionObserverOptions): DecisionObserver {
  const { transport, table, labels, tracing, logger } = options;
  const logRate = logger ? (options.decisionLogRate ?? 0) : 0;
  const spanName = SPAN_NAMES[transport];

  const endSpan = (span: DecisionSpan, outcome: number, keySpace: string, verdict: Verdict | undefined) => {
    const s = (span as ActiveSpan).span;
    if (s.isRecording()) {
      const { decision, reason } = OUTCOMES[outcome]!;
      s.setAttribute("keymesh.decision", decision);
      s.setAttribute("keymesh.reason", reason);
      s.setAttribute("keymesh.key_space", keySpace);
      if (verdict?.kind === "allow") s.setAttribute("keymesh.key_id", verdict.identity.keyId);
      if (decision === "error") s.setStatus({ code: SpanStatusCode.ERROR });
    }
    s.end();
  };

  const logDecision = (verdict: Verdict, request: ObservedRequest, seconds: number, span?: DecisionSpan) => {
    const { decision, reason } = OUTCOMES[outcomeIndex(verdict)]!;
    const fields: Record<string, unknown> = {
      transport,
      decision,
      reason,
      keySpace: verdict.kind === "allow" ? verdict.identity.keySpaceId : labels.resolve(request.keySpace),
      route: routeOf(request.method, request.path),
      durationMs: Math.round(seconds * 1e6) / 1e3,
      ...requestFields(request.headers, span?.traceId),
    };
    if (verdict.kind === "allow") fields.keyId = verdict.identity.keyId;
    logger!.info("decision", fields);
  };

  return {
    tracing: tracing !== undefined,
    startSpan(request) {
      const parent = tracing!.extract(request.headers);
      const span = tracing!.tracer.startSpan(
        spanName,
        { kind: SpanKind.SERVER, attributes: { "keymesh.transport": transport } },
        parent,
      );
      return new ActiveSpan(span, trace.setSpan(parent, span));
    },
    decided(verdict, request, startedAt, span) {
      try {
        const seconds = (performance.now() - startedAt) / 1000;
        const outcome = outcomeIndex(verdict);
        const allowed = verdict.kind === "allow";
        // An allowed key's key space exists, so its id needs no lookup; other requests name theirs as they like.
        const label = allowed
          ? labels.indexOfId(verdict.identity.keySpaceId)
          : labels.indexOf(request.keySpace);
        table.cell(label, outcome).observe(seconds);
        if (span !== undefined)
          endSpan(
            span,
            outcome,
            allowed ? verdict.identity.keySpaceId : labels.resolve(request.keySpace),
            verdict,
          );
        if (logRate > 0 && Math.random() < logRate) logDecision(verdict, request, seconds, span);
      } catch {
        // Observing a decision must never change or delay the answer.
      }
    },
    unreadable(startedAt, span) {
      table.cell(UNKNOWN_LABEL, MALFORMED_INDEX).observe((performance.now() - startedAt) / 1000);
      if (span !== undefined) endSpan(span, MALFORMED_INDEX, labels.values[UNKNOWN_LABEL]!, undefined);
    },
    logFields: (request, span) => requestFields(request?.headers, span?.traceId),
  };
}
