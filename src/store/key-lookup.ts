import type { Sql } from "postgres";
import type { KeyEntry, KeyLookup, KeySpaceDirectory } from "../domain/key-entry.js";
import type { KeySpace } from "../domain/types.js";
import {
  type KeyRow,
  type KeySpaceRow,
  type MemberRow,
  toKey,
  toKeySpace,
  toMember,
  toWorkspace,
  type WorkspaceRow,
} from "./rows.js";

type JoinedRow = KeyRow & { ws: WorkspaceRow; owner: MemberRow | null };

/** Loads a key with its workspace and owner in one query. */
export function createPostgresKeyLookup(sql: Sql): KeyLookup {
  return {
    async findByDigest(digest) {
      const [row] = await sql<JoinedRow[]>`
        select k.*, to_jsonb(w) as ws, to_jsonb(m) as owner
        from keys k
        join workspaces w on w.id = k.workspace_id
        left join members m on m.id = k.owner_member_id
        where k.digest = ${digest}`;
      if (!row) return undefined;
      const ws = { ...row.ws, created_at: new Date(row.ws.created_at) };
      const owner = row.owner ? { ...row.owner, created_at: new Date(row.owner.created_at) } : null;
      const entry: KeyEntry = {
        key: toKey(row),
        digest: row.digest,
        workspace: toWorkspace(ws),
        owner: owner && toMember(owner),
      };
      return entry;
    },
  };
}

/** Reads key spaces from Postgres; callers cache the results. */
export function createPostgresKeySpaces(sql: Sql): {
  load(idOrName: string): Promise<KeySpace | undefined>;
  loadAll(): Promise<KeySpace[]>;
} {
  return {
    async load(idOrName) {
      const [row] = await sql<
        KeySpaceRow[]
      >`select * from key_spaces where id = ${idOrName} or name = ${idOrName}`;
      return row && toKeySpace(row);
    },
    async loadAll() {
      const rows = await sql<KeySpaceRow[]>`select * from key_spaces where not system order by created_at`;
      return rows.map(toKeySpace);
    },
  };
}

/** Caches key spaces in process; `invalidate` drops them after a change notification. */
export function createCachedKeySpaces(
  source: ReturnType<typeof createPostgresKeySpaces>,
  ttlMs: number,
): KeySpaceDirectory & { invalidate(): void } {
  let byName = new Map<string, { space: KeySpace | undefined; at: number }>();
  let all: { spaces: KeySpace[]; at: number } | undefined;
  return {
    get(idOrName) {
      const hit = byName.get(idOrName);
      if (hit && Date.now() - hit.at < ttlMs) return hit.space;
      return source.load(idOrName).then((space) => {
        byName.set(idOrName, { space, at: Date.now() });
        return space;
      });
    },
    async all() {
      if (all && Date.now() - all.at < ttlMs) return all.spaces;
      all = { spaces: await source.loadAll(), at: Date.now() };
      return all.spaces;
    },
    invalidate() {
      byName = new Map();
      all = undefined;
    },
  };
}
