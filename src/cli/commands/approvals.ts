import { setTimeout as sleep } from "node:timers/promises";
import { type Approval, ApprovalSchema, ApprovalStatus } from "../../../gen/keymesh/v1/types_pb.js";
import type { KeyAdminClient } from "../../client/index.js";
import type { CommandContext } from "../context.js";
import { EXIT, usageError } from "../errors.js";
import { listAll, parseDuration, parseEnum } from "../parse.js";
import type { Register } from "../program.js";
import { approvalView, protoJson, short } from "../views.js";

interface ListFlags {
  workspace?: string;
  status?: string;
  watch?: boolean;
  interval?: string;
}

function fetchApprovals(
  admin: KeyAdminClient,
  workspaceId: string,
  status: ApprovalStatus,
): Promise<Approval[]> {
  return listAll(async (pageToken) => {
    const res = await admin.listApprovals({ workspaceId, status, pageSize: 500, pageToken });
    return { items: res.approvals, next: res.nextPageToken };
  });
}

/**
 * Lists approvals again every interval until interrupted. On a terminal the table is redrawn in place; otherwise
 * each approval is printed when it first appears and whenever its status changes, as a table row or a JSON line.
 */
async function watch(ctx: CommandContext, workspaceId: string, status: ApprovalStatus, intervalMs: number) {
  const admin = ctx.admin();
  const seen = new Map<string, ApprovalStatus>();
  const redraw = ctx.print.stdout.isTTY === true && ctx.print.format === "table";
  while (!ctx.signal.aborted) {
    const approvals = await fetchApprovals(admin, workspaceId, status);
    if (redraw) {
      ctx.print.raw("\x1b[H\x1b[2J");
      ctx.print.raw(
        `approvals${workspaceId ? ` of ${workspaceId}` : ""}, every ${intervalMs / 1000}s (Ctrl-C to stop)\n`,
      );
      ctx.print.list(approvals, approvalView);
    } else {
      const changed = approvals.filter((a) => seen.get(a.id) !== a.status);
      for (const a of changed) {
        if (ctx.print.format === "json") ctx.print.raw(`${JSON.stringify(protoJson(ApprovalSchema, a))}\n`);
        else if (ctx.print.format === "yaml") {
          ctx.print.raw("---\n");
          ctx.print.one(a, approvalView);
        } else ctx.print.list([a], approvalView);
      }
    }
    for (const a of approvals) seen.set(a.id, a.status);
    try {
      await sleep(intervalMs, undefined, { signal: ctx.signal });
    } catch {
      break;
    }
  }
  return EXIT.ok;
}

const STATUSES = ["PENDING", "APPROVED", "REJECTED", "USED", "EXPIRED"];

export const registerApprovals: Register = (program, action) => {
  const approvals = program.command("approvals").alias("approval").description("requests queued for a human");
  approvals
    .command("list")
    .description("list approvals, newest first")
    .option("--workspace <id>", "only this workspace's")
    .option("--status <status>", "pending, approved, rejected, used or expired")
    .option("--watch", "keep listing until Ctrl-C, showing new approvals and status changes")
    .option("--interval <duration>", "with --watch: how often to look (default 2s)", "2s")
    .action(
      action<ListFlags>(async (ctx, _args, o) => {
        const status = o.status
          ? parseEnum<ApprovalStatus>(ApprovalStatus, o.status, "--status", STATUSES)
          : ApprovalStatus.UNSPECIFIED;
        if (o.watch) {
          const seconds = parseDuration(o.interval ?? "2s", "--interval");
          if (seconds < 1) throw usageError("--interval must be at least 1s");
          return watch(ctx, o.workspace ?? "", status, seconds * 1000);
        }
        ctx.print.list(await fetchApprovals(ctx.admin(), o.workspace ?? "", status), approvalView);
        return EXIT.ok;
      }),
    );
  approvals
    .command("show")
    .description("show one approval with the queued request's headers and body")
    .argument("<id>")
    .action(
      action(async (ctx, [id]) => {
        const { approval } = await ctx.admin().getApproval({ id: id as string });
        ctx.print.one(approval!, approvalView);
        return EXIT.ok;
      }),
    );
  approvals
    .command("approve")
    .description("approve: the same key may retry the same request once, with x-keymesh-approval")
    .argument("<id>")
    .action(
      action(async (ctx, [id]) => {
        const { approval } = await ctx.admin().approveRequest({ id: id as string });
        ctx.print.one(approval!, approvalView);
        ctx.print.note(`approval ${approval!.id} is ${short(ApprovalStatus, approval!.status)}`);
        return EXIT.ok;
      }),
    );
  approvals
    .command("reject")
    .description("reject: the key's rejection webhook receives the reason and the original body")
    .argument("<id>")
    .requiredOption("--reason <text>", "why; sent to the rejection webhook")
    .action(
      action<{ reason: string }>(async (ctx, [id], o) => {
        if (!o.reason.trim()) throw usageError("--reason must say why the request was rejected");
        const { approval } = await ctx.admin().rejectRequest({ id: id as string, reason: o.reason });
        ctx.print.one(approval!, approvalView);
        return EXIT.ok;
      }),
    );
};
