import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { AuditEvent } from "../../../gen/keymesh/v1/types_pb.js";
import { EXIT, usageError } from "../errors.js";
import { parseInstant } from "../parse.js";
import type { Register } from "../program.js";
import { auditView } from "../views.js";

interface AuditFlags {
  target?: string;
  action?: string;
  actor?: string;
  since?: string;
  until?: string;
  limit: string;
}

export const registerAudit: Register = (program, action) => {
  program
    .command("audit")
    .description("the audit log, newest first: who changed what")
    .option("--target <id>", "only events about this key, workspace, member or key space")
    .option("--action <action>", "only this action, or actions starting with it (key.revoke, key.)")
    .option("--actor <key-id>", "only changes made with this root key")
    .option("--since <when>", "only events after this: a date, or a duration ago (1h, 7d)")
    .option("--until <when>", "only events before this: a date, or a duration ago")
    .option("--limit <n>", "show at most n events", "50")
    .action(
      action<AuditFlags>(async (ctx, _args, o) => {
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1)
          throw usageError(`--limit takes a positive number, not ${o.limit}`);
        const since = o.since ? parseInstant(o.since, "--since", "past").getTime() : undefined;
        const until = o.until ? parseInstant(o.until, "--until", "past").getTime() : undefined;
        const matches = (e: AuditEvent) => {
          const at = e.at ? timestampDate(e.at).getTime() : 0;
          if (until !== undefined && at >= until) return false;
          if (o.actor && e.actor !== o.actor) return false;
          if (
            o.action &&
            !(e.action === o.action || (o.action.endsWith(".") && e.action.startsWith(o.action)))
          )
            return false;
          return true;
        };
        // The server filters by target only; the rest is filtered here, page by page, newest first.
        const admin = ctx.admin();
        const events: AuditEvent[] = [];
        let pageToken = "";
        paging: do {
          const res = await admin.listAuditEvents({ targetId: o.target ?? "", pageSize: 500, pageToken });
          for (const e of res.events) {
            if (since !== undefined && e.at && timestampDate(e.at).getTime() < since) break paging;
            if (matches(e)) events.push(e);
            if (events.length >= limit) break paging;
          }
          pageToken = res.nextPageToken;
        } while (pageToken);
        ctx.print.list(events, auditView);
        return EXIT.ok;
      }),
    );
};
