import type { Sql } from "postgres";
import type { Logger } from "../log.js";
import { CHANGES_CHANNEL, type Change } from "../store/db.js";
import type { KeyCache } from "./key-cache.js";

/** Drops from the caches whatever `change` makes stale. */
export function applyChange(
  targets: { keys: KeyCache; keySpaces: { invalidate(): void } },
  change: Change,
): void {
  if (change.type === "key_space") targets.keySpaces.invalidate();
  targets.keys.invalidate(change);
}

/** Listens for change notifications and drops what they make stale; returns a stop function. */
export async function listenForChanges(
  sql: Sql,
  targets: { keys: KeyCache; keySpaces: { invalidate(): void } },
  logger: Logger,
): Promise<{ stop(): Promise<void> }> {
  const apply = (change: Change) => applyChange(targets, change);
  const subscription = await sql.listen(
    CHANGES_CHANNEL,
    (payload) => {
      try {
        apply(JSON.parse(payload) as Change);
      } catch {
        // An unreadable notification could be anything: drop everything rather than serve stale keys.
        targets.keys.clear();
        targets.keySpaces.invalidate();
      }
    },
    () => {
      // Runs on the first LISTEN and after every reconnect: what changed while disconnected is unknown.
      targets.keys.clear();
      targets.keySpaces.invalidate();
      logger.debug("listening for changes");
    },
  );
  return { stop: () => subscription.unlisten() };
}
