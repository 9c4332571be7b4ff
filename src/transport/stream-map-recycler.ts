/**
 * node:http2 keeps each session's open streams in one Map for the session's life; on a busy, long-lived connection
 * the churn of that Map gets its streams promoted to the old generation and forces frequent full collections.
 * Swapping in a fresh copy every few milliseconds prevents it (bench/README.md, "Garbage collection and the
 * stream-map recycler", has the evidence).
 *
 * The Map is node's internal state, found by shape, not by a public API: when a Node version stores it
 * differently, `watch` returns false and sessions run as they would without this.
 */

/** How often each watched session's stream map is replaced: well inside one young-generation cycle under load. */
export const STREAM_MAP_RECYCLE_MS = 10;

/** Replaces the stream maps of the HTTP/2 sessions it watches, until they close. */
export interface StreamMapRecycler {
  /** Watches `session` until it closes; false when its stream map cannot be found on this Node version. */
  watch(session: object): boolean;
  /** Sessions watched now. */
  readonly watching: number;
  /** Sessions ever watched. */
  readonly watched: number;
  /** Sessions whose stream map was not found (a Node version that keeps it elsewhere). */
  readonly unsupported: number;
  /** Maps replaced so far. */
  readonly recycled: number;
  /** Stops the timer and forgets every session. */
  close(): void;
}

interface SessionState {
  streams: Map<unknown, unknown>;
}

/** Creates a recycler with one shared, unref'd timer that runs only while some session is watched. */
export function createStreamMapRecycler(intervalMs = STREAM_MAP_RECYCLE_MS): StreamMapRecycler {
  const sessions = new Map<object, SessionState>();
  let timer: NodeJS.Timeout | undefined;
  let watched = 0;
  let unsupported = 0;
  let recycled = 0;

  const recycle = (): void => {
    for (const [session, state] of sessions) {
      const streams = state.streams;
      // An idle session's map does not churn, so it grows no chain; copying it would be wasted work.
      if (streams.size === 0) continue;
      try {
        // The same class (node's SafeMap), with the same entries, in a new young table.
        state.streams = new (streams.constructor as MapConstructor)(streams);
        recycled++;
      } catch {
        sessions.delete(session);
      }
    }
  };

  const stop = (): void => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };

  return {
    watch(session) {
      const state = sessionState(session);
      if (!state) {
        unsupported++;
        return false;
      }
      watched++;
      sessions.set(session, state);
      const emitter = session as { once?(event: string, listener: () => void): unknown };
      emitter.once?.("close", () => {
        sessions.delete(session);
        if (sessions.size === 0) stop();
      });
      if (!timer) {
        timer = setInterval(recycle, intervalMs);
        // A recycler must never keep a process alive on its own.
        timer.unref();
      }
      return true;
    },
    get watching() {
      return sessions.size;
    },
    get watched() {
      return watched;
    },
    get unsupported() {
      return unsupported;
    },
    get recycled() {
      return recycled;
    },
    close() {
      stop();
      sessions.clear();
    },
  };
}

// Found once: every session of one Node version keeps its state under the same symbol.
let stateSymbol: symbol | undefined;

/** node:http2's per-session state object, when it holds the stream Map this module replaces. */
function sessionState(session: object): SessionState | undefined {
  const read = (symbol: symbol): SessionState | undefined => {
    const state = (session as Record<symbol, unknown>)[symbol] as { streams?: unknown } | undefined;
    return state && typeof state === "object" && isMap(state.streams) ? (state as SessionState) : undefined;
  };
  if (stateSymbol) return read(stateSymbol);
  for (const symbol of Object.getOwnPropertySymbols(session)) {
    if (symbol.description !== "state") continue;
    const state = read(symbol);
    if (state) {
      stateSymbol = symbol;
      return state;
    }
  }
  return undefined;
}

/** A Map by its internal tag, not `instanceof`: code run in another realm (a test runner's context) has its own Map. */
function isMap(value: unknown): value is Map<unknown, unknown> {
  return Object.prototype.toString.call(value) === "[object Map]";
}
