import { AsyncLocalStorage } from "node:async_hooks";

/** When an admin call must be over: its changes commit by `commitBy` or never, and it is answered when `signal` fires. */
export interface CallDeadline {
  /** Epoch milliseconds after which the database refuses to commit the call's changes. */
  readonly commitBy: number;
  /** Aborts when the call must be answered, a little after `commitBy`, or when the caller goes away. */
  readonly signal: AbortSignal;
  /** Stops the timer; call it when the call is over. */
  dispose(): void;
}

// Time between the commit deadline and the answer, for a commit decided just in time to report back, and between the
// answer and the end of the budget, for the answer to reach a client whose own timeout set the budget.
const MAX_SLACK_MS = 50;

/** A deadline `budgetMs` from now, ended early by `callerSignal` (a client that disconnected). */
export function createCallDeadline(budgetMs: number, callerSignal?: AbortSignal): CallDeadline {
  const now = Date.now();
  const slack = Math.min(MAX_SLACK_MS, budgetMs / 10);
  const answerAt = now + budgetMs - slack;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), Math.max(0, answerAt - now));
  timer.unref();
  const onCallerGone = () => controller.abort();
  callerSignal?.addEventListener("abort", onCallerGone, { once: true });
  if (callerSignal?.aborted) controller.abort();
  return {
    commitBy: answerAt - slack,
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      callerSignal?.removeEventListener("abort", onCallerGone);
    },
  };
}

const current = new AsyncLocalStorage<CallDeadline>();

/**
 * Runs `fn` under `deadline`: every admin transaction it starts is bound by it. Carried implicitly so that the
 * services' signatures stay about the domain; the transport sets it once per call.
 */
export function runWithDeadline<T>(deadline: CallDeadline, fn: () => Promise<T>): Promise<T> {
  return current.run(deadline, fn);
}

/** The deadline of the admin call being served, if any. */
export function currentDeadline(): CallDeadline | undefined {
  return current.getStore();
}

/** True once the call may no longer commit. */
export function deadlinePassed(deadline: CallDeadline): boolean {
  return deadline.signal.aborted || Date.now() >= deadline.commitBy;
}
