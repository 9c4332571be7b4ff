import { SingleBar } from "cli-progress";
import type { Printer } from "./output.js";

/** Progress of bulk work: a bar on a terminal's stderr, a closing count elsewhere. */
export interface Progress {
  tick(failed?: boolean): void;
  stop(): void;
}

/** Shows `label [████░░] 3/10` on stderr while `total` steps run. */
export function createProgress(print: Printer, label: string, total: number): Progress {
  let done = 0;
  let failed = 0;
  const summary = () => `${label}: ${done - failed} of ${total} done${failed ? `, ${failed} failed` : ""}`;
  if (!print.stderr.isTTY) {
    return {
      tick(f) {
        done++;
        if (f) failed++;
      },
      stop: () => print.note(summary()),
    };
  }
  const bar = new SingleBar({
    format: `${label} [{bar}] {value}/{total} {failed}`,
    stream: print.stderr as NodeJS.WriteStream,
    hideCursor: true,
    clearOnComplete: false,
    barsize: 30,
    barCompleteChar: "█",
    barIncompleteChar: "░",
  });
  bar.start(total, 0, { failed: "" });
  return {
    tick(f) {
      done++;
      if (f) failed++;
      bar.update(done, { failed: failed ? `(${failed} failed)` : "" });
    },
    stop() {
      bar.stop();
    },
  };
}

/** Runs `work` over `items`, `concurrency` at a time, in order of start; stops starting new ones when aborted. */
export async function runPool<T>(
  items: readonly T[],
  concurrency: number,
  signal: AbortSignal,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !signal.aborted) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
