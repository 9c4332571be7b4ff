import type { Sql } from "postgres";
import { newId } from "../domain/ids.js";
import type { ApprovalGate } from "../domain/ports.js";

/** The Postgres approval gate; approvals lapse after `ttlSeconds`. */
export function createPostgresApprovalGate(sql: Sql, ttlSeconds: number): ApprovalGate {
  return {
    async open(r) {
      const id = newId("apr");
      await sql`
        insert into approvals (id, key_id, workspace_id, key_space_id, method, path, body_digest, body, headers,
                               required_scope, expires_at)
        values (${id}, ${r.keyId}, ${r.workspaceId}, ${r.keySpaceId}, ${r.method}, ${r.path}, ${r.bodyDigest},
                ${r.body ? Buffer.from(r.body) : null}, ${sql.json(r.headers)}, ${r.requiredScope},
                now() + make_interval(secs => ${ttlSeconds}))`;
      return id;
    },
    async redeem(id, m) {
      // One UPDATE both checks and uses the approval, so a retry can pass only once even when raced.
      const rows = await sql`
        update approvals set status = 'used', used_at = now()
        where id = ${id} and status = 'approved' and expires_at > now() and key_id = ${m.keyId}
          and method = ${m.method} and path = ${m.path} and body_digest = ${m.bodyDigest}
        returning id`;
      return rows.length === 1;
    },
  };
}
