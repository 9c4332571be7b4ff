import type { Sql } from "postgres";
import type { KeyEntry } from "../domain/key-entry.js";
import type { KeyLookup, KeySpaceSource } from "../domain/ports.js";
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

/** Reads key spaces from Postgres; callers cache the results (see src/cache/cached-key-spaces.ts). */
export function createPostgresKeySpaces(sql: Sql): KeySpaceSource {
  return {
    async load(idOrName) {
      // An id wins over a name: a key space named like the system key space's id must never stand in for it.
      const [row] = await sql<KeySpaceRow[]>`
        select * from key_spaces where id = ${idOrName} or name = ${idOrName}
        order by id = ${idOrName} desc limit 1`;
      return row && toKeySpace(row);
    },
    async loadAll() {
      const rows = await sql<KeySpaceRow[]>`select * from key_spaces where not system order by created_at`;
      return rows.map(toKeySpace);
    },
  };
}
