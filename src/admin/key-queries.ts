import type { Sql } from "postgres";
import type { AdminActor } from "../domain/admin-actor.js";
import type { Key, KeyStatus } from "../domain/types.js";
import { type KeyRow, toKey } from "../store/rows.js";
import { authorize, authorizeCall, ROOT_KEY_SPACE_ID, ROOT_WORKSPACE_ID } from "./admin-policy.js";
import { notFound } from "./errors.js";
import { decodePageToken, pageSize, paginate } from "./pagination.js";

/** Reads keys: one by id, or a filtered, paginated list; secrets are never part of either. */
export function createKeyQueries(sql: Sql) {
  return {
    /** Reads one key. */
    async get(actor: AdminActor, id: string): Promise<Key> {
      authorizeCall(actor, "GetKey");
      const [row] = await sql<KeyRow[]>`select * from keys where id = ${id}`;
      if (!row) throw notFound("key", id);
      authorize(actor, "GetKey", row.key_space_id === ROOT_KEY_SPACE_ID ? "system" : "customer");
      return toKey(row);
    },

    /**
     * Lists keys, oldest first, filtered by workspace, key space, owner and status. Root keys are listed only when
     * the filter names the system key space or workspace, which needs admin:root.
     */
    async list(
      actor: AdminActor,
      filter: {
        workspaceId: string;
        keySpaceId: string;
        ownerMemberId: string;
        status: KeyStatus | "";
        pageSize: number;
        pageToken: string;
      },
    ): Promise<{ keys: Key[]; nextPageToken: string }> {
      const system = filter.keySpaceId === ROOT_KEY_SPACE_ID || filter.workspaceId === ROOT_WORKSPACE_ID;
      authorize(actor, "ListKeys", system ? "system" : "customer");
      const limit = pageSize(filter.pageSize);
      const cursor = decodePageToken(filter.pageToken);
      const rows = await sql<KeyRow[]>`
        select * from keys
        where (${filter.workspaceId} = '' or workspace_id = ${filter.workspaceId})
          and (${filter.keySpaceId} = '' or key_space_id = ${filter.keySpaceId})
          and (${filter.ownerMemberId} = '' or owner_member_id = ${filter.ownerMemberId})
          and (${filter.status} = ''
               or (${filter.status} = 'revoked' and revoked_at is not null)
               or (${filter.status} = 'expired' and revoked_at is null and expires_at <= now())
               or (${filter.status} = 'active' and revoked_at is null and (expires_at is null or expires_at > now())))
          and (${system} or key_space_id <> ${ROOT_KEY_SPACE_ID})
          and (${cursor === null} or (created_at, id) > (${cursor?.at ?? null}::timestamptz, ${cursor?.id ?? null}))
        order by created_at, id limit ${limit + 1}`;
      const { page, nextPageToken } = paginate(rows, limit);
      return { keys: page.map((r) => toKey(r)), nextPageToken };
    },
  };
}
