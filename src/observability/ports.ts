import type { Verdict } from "../domain/verdict.js";

/** Reads one request header by lower-case name (a Map, the Check's wire headers). */
export interface HeaderReader {
  get(name: string): string | null | undefined;
}

/** What observers read of a request: which key space it named, its route, and its headers. */
export interface ObservedRequest {
  keySpace: string;
  method: string;
  path: string;
  headers: HeaderReader;
}

/** The span of one decision, opened only while tracing is on. */
export interface DecisionSpan {
  /** Runs `decide` with this span as the active one, so backend calls made inside become its children. */
  run<T>(decide: () => T): T;
  readonly traceId: string;
}

/**
 * What a decision path reports through, one per transport: counters and latency, the decision's span and the
 * sampled decision log. The transports see only this interface; metrics and tracing libraries stay behind it.
 */
export interface DecisionObserver {
  /** Whether spans are recorded; when false a decision path opens none and pays one boolean test. */
  readonly tracing: boolean;
  /** Opens the span of a decision, a child of the request's `traceparent` when it carries one. */
  startSpan(request: ObservedRequest): DecisionSpan;
  /**
   * Records a decision begun at `startedAt` (performance.now()): the decision counter and latency histogram, the
   * end of its span, and a line of the decision log when sampled. Never throws.
   */
  decided(verdict: Verdict, request: ObservedRequest, startedAt: number, span?: DecisionSpan): void;
  /** Records a request refused because it could not be read: a `malformed` denial of an `unknown` key space. */
  unreadable(startedAt: number, span?: DecisionSpan): void;
  /** The request id (`x-request-id`, else a new one) and trace id, for a log line about this request. */
  logFields(request: ObservedRequest | undefined, span?: DecisionSpan): Record<string, string>;
}

/** One KeyAdmin call being observed. */
export interface AdminCall {
  /** Runs the call with its span active, so the queries it makes become the span's children. */
  run<T>(call: () => T): T;
  /** Records the call's end by its status: `ok`, or the gRPC code name such as `permission_denied`. */
  finish(code: string): void;
  /** The request id and trace id, for log lines about this call. */
  readonly logFields: Record<string, string>;
}

/** Observes KeyAdmin calls: a counter by method and code, a latency histogram, and a span per call. */
export interface AdminCallObserver {
  start(method: string, headers: HeaderReader): AdminCall;
}
