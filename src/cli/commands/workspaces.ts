import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type LimitSet,
  LimitSetSchema,
  MemberStatus,
  WorkspaceStatus,
} from "../../../gen/keymesh/v1/types_pb.js";
import type { CommandContext } from "../context.js";
import { CliError, EXIT, usageError } from "../errors.js";
import { collectRaw, listAll, parseEnum, parseLimit } from "../parse.js";
import type { Register } from "../program.js";
import { memberView, workspaceView } from "../views.js";

/** A limit override from repeated `--key-limit NAME=CAPACITY/PERIOD`; `none` overrides with no limits at all. */
export function limitSet(values: readonly string[] | undefined, flag: string): LimitSet | undefined {
  if (!values?.length) return undefined;
  if (values.length === 1 && values[0] === "none") return create(LimitSetSchema, { limits: [] });
  return create(LimitSetSchema, { limits: values.map((v) => parseLimit(v, flag)) });
}

function days(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 3650)
    throw usageError(`${flag} takes 0..3650 days, not ${JSON.stringify(value)}`);
  return n;
}

interface WorkspaceFlags {
  name?: string;
  keySegment?: string;
  apiAccess?: boolean;
  plan?: string;
  maxKeyAgeDays?: string;
  keyLimit?: string[];
  workspaceLimit?: string[];
  status?: string;
  owner?: string;
  clearKeyLimits?: boolean;
  clearWorkspaceLimits?: boolean;
  limit?: string;
}

/** Deletes a workspace, turning a refusal over working keys into the two ways forward. */
async function deleteWorkspace(ctx: CommandContext, id: string, force: boolean) {
  try {
    return await ctx.admin().deleteWorkspace({ id, force });
  } catch (error) {
    if (error instanceof ConnectError && error.code === Code.FailedPrecondition && !force) {
      throw new CliError(
        `keymesh refused: ${error.rawMessage}. \`keymesh keys list --workspace ${id} --status active\` lists ` +
          "them and `keymesh keys revoke ID…` revokes them; --force deletes them with the workspace.",
      );
    }
    throw error;
  }
}

const LIMIT_HELP = "NAME=CAPACITY/PERIOD such as minute=600/60s, repeatable; none for no limits";

export const registerWorkspaces: Register = (program, action) => {
  const ws = program.command("workspaces").alias("workspace").description("customer workspaces");
  ws.command("create")
    .description("create a workspace")
    .argument("<name>")
    .option("--key-segment <segment>", "brand identifier put into keys of spaces with workspace_segment")
    .option("--api-access", "the plan includes API access (without it, keys get 403)")
    .option("--plan <plan>", "plan name")
    .option("--max-key-age-days <days>", "enforced rotation: keys older than this are refused")
    .option("--key-limit <limit>", `per-key limits overriding the key space's (${LIMIT_HELP})`, collectRaw)
    .option(
      "--workspace-limit <limit>",
      `shared limits overriding the key space's (${LIMIT_HELP})`,
      collectRaw,
    )
    .action(
      action<WorkspaceFlags>(async (ctx, [name], o) => {
        const { workspace } = await ctx.admin().createWorkspace({
          name: name as string,
          keySegment: o.keySegment ?? "",
          apiAccess: o.apiAccess ?? false,
          plan: o.plan ?? "",
          maxKeyAgeDays: days(o.maxKeyAgeDays, "--max-key-age-days") ?? 0,
          keyLimits: limitSet(o.keyLimit, "--key-limit"),
          workspaceLimits: limitSet(o.workspaceLimit, "--workspace-limit"),
        });
        ctx.print.one(workspace!, workspaceView);
        return EXIT.ok;
      }),
    );
  ws.command("list")
    .description("list workspaces, oldest first")
    .option("--limit <n>", "show at most n")
    .action(
      action<WorkspaceFlags>(async (ctx, _args, o) => {
        const admin = ctx.admin();
        const items = await listAll(
          async (pageToken) => {
            const res = await admin.listWorkspaces({ pageSize: 500, pageToken });
            return { items: res.workspaces, next: res.nextPageToken };
          },
          o.limit ? Number(o.limit) : undefined,
        );
        ctx.print.list(items, workspaceView);
        return EXIT.ok;
      }),
    );
  ws.command("get")
    .description("show a workspace")
    .argument("<id>")
    .action(
      action(async (ctx, [id]) => {
        const { workspace } = await ctx.admin().getWorkspace({ id: id as string });
        ctx.print.one(workspace!, workspaceView);
        return EXIT.ok;
      }),
    );
  ws.command("update")
    .description("change a workspace; unnamed settings are kept")
    .argument("<id>")
    .option("--name <name>", "new name")
    .option("--status <status>", "active, or disabled (its keys stop working)")
    .option("--api-access", "grant API access")
    .option("--no-api-access", "withdraw API access")
    .option("--plan <plan>", "plan name")
    .option("--max-key-age-days <days>", "enforced rotation; 0 inherits the key space's")
    .option("--owner <member-id>", "the account owner, whom organization keys act as")
    .option("--key-limit <limit>", `per-key limits (${LIMIT_HELP})`, collectRaw)
    .option("--clear-key-limits", "drop the per-key override; the key space's defaults apply again")
    .option("--workspace-limit <limit>", `shared limits (${LIMIT_HELP})`, collectRaw)
    .option("--clear-workspace-limits", "drop the shared override")
    .action(
      action<WorkspaceFlags>(async (ctx, [id], o) => {
        const { workspace } = await ctx.admin().updateWorkspace({
          id: id as string,
          name: o.name,
          status: o.status
            ? parseEnum<WorkspaceStatus>(WorkspaceStatus, o.status, "--status")
            : WorkspaceStatus.UNSPECIFIED,
          apiAccess: o.apiAccess,
          plan: o.plan,
          maxKeyAgeDays: days(o.maxKeyAgeDays, "--max-key-age-days"),
          ownerMemberId: o.owner,
          keyLimits: limitSet(o.keyLimit, "--key-limit"),
          workspaceLimits: limitSet(o.workspaceLimit, "--workspace-limit"),
          clearKeyLimits: o.clearKeyLimits ?? false,
          clearWorkspaceLimits: o.clearWorkspaceLimits ?? false,
        });
        ctx.print.one(workspace!, workspaceView);
        return EXIT.ok;
      }),
    );

  ws.command("delete")
    .description("delete a workspace with its members, keys and approvals; the audit log keeps their history")
    .argument("<id>")
    .option("--yes", "confirm: deleting cannot be undone")
    .option("--force", "also while keys still work: revoke and delete them with the workspace")
    .action(
      action<{ yes?: boolean; force?: boolean }>(async (ctx, [id], o) => {
        if (!o.yes)
          throw usageError(
            "deleting a workspace cannot be undone; add --yes to confirm (or stop its keys with " +
              `\`keymesh workspaces update ${id} --status disabled\` instead)`,
          );
        const res = await deleteWorkspace(ctx, id as string, o.force ?? false);
        const summary = {
          id: id as string,
          deletedKeys: res.deletedKeys,
          revokedKeys: res.revokedKeys,
          deletedMembers: res.deletedMembers,
          deletedApprovals: res.deletedApprovals,
        };
        if (ctx.print.format === "json" || ctx.print.format === "yaml") ctx.print.document(summary);
        ctx.print.note(
          `deleted workspace ${id}: ${res.deletedKeys} key(s), ${res.revokedKeys} of them active until now, ` +
            `${res.deletedMembers} member(s), ${res.deletedApprovals} approval(s)`,
        );
        return EXIT.ok;
      }),
    );

  const members = program.command("members").alias("member").description("members of a workspace");
  members
    .command("add")
    .alias("create")
    .description("add a member to a workspace")
    .requiredOption("--workspace <id>", "the workspace")
    .requiredOption("--name <name>", "the member's name")
    .requiredOption("--role <role>", "role, as the key space's creator_roles name them")
    .option("--account-owner", "make the member the workspace's account owner")
    .action(
      action<{ workspace: string; name: string; role: string; accountOwner?: boolean }>(
        async (ctx, _args, o) => {
          const { member } = await ctx.admin().addMember({
            workspaceId: o.workspace,
            name: o.name,
            role: o.role,
            accountOwner: o.accountOwner ?? false,
          });
          ctx.print.one(member!, memberView);
          return EXIT.ok;
        },
      ),
    );
  members
    .command("list")
    .description("list a workspace's members")
    .requiredOption("--workspace <id>", "the workspace")
    .action(
      action<{ workspace: string }>(async (ctx, _args, o) => {
        const res = await ctx.admin().listMembers({ workspaceId: o.workspace });
        ctx.print.list(res.members, memberView);
        return EXIT.ok;
      }),
    );
  members
    .command("get")
    .description("show a member")
    .argument("<id>")
    .action(
      action(async (ctx, [id]) => {
        const { member } = await ctx.admin().getMember({ id: id as string });
        ctx.print.one(member!, memberView);
        return EXIT.ok;
      }),
    );
  members
    .command("update")
    .description("change a member's role, or close (stops their user keys) or reopen their account")
    .argument("<id>")
    .option("--role <role>", "new role")
    .option("--status <status>", "active or closed")
    .action(
      action<{ role?: string; status?: string }>(async (ctx, [id], o) => {
        const { member } = await ctx.admin().updateMember({
          id: id as string,
          role: o.role,
          status: o.status
            ? parseEnum<MemberStatus>(MemberStatus, o.status, "--status")
            : MemberStatus.UNSPECIFIED,
        });
        ctx.print.one(member!, memberView);
        return EXIT.ok;
      }),
    );
};
