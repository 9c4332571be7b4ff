import postgres, { type Sql } from "postgres";

/** Opens the one connection pool keymesh uses; jsonb and timestamps come back as JS values. */
export function createSql(url: string, options: { max?: number; onnotice?: (n: unknown) => void } = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    // Bounded waits: a hung database must surface as an error, never as a stuck request.
    connect_timeout: 5,
    idle_timeout: 60,
    onnotice: options.onnotice ?? (() => {}),
    connection: { application_name: "keymesh" },
  });
}

/** Notifications of changes that caches on every instance must drop. */
export const CHANGES_CHANNEL = "keymesh_changes";

/** What changed: a key, a workspace, a member or a key space. */
export interface Change {
  type: "key" | "workspace" | "member" | "key_space";
  id: string;
}
