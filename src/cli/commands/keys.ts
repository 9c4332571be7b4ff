import { create, type JsonObject } from "@bufbuild/protobuf";
import { StringListSchema } from "../../../gen/keymesh/v1/admin_pb.js";
import { type Key, KeyStatus, OwnerType } from "../../../gen/keymesh/v1/types_pb.js";
import type { CommandContext } from "../context.js";
import { EXIT, usageError } from "../errors.js";
import { collect, collectRaw, listAll, parseEnum, parseInstant, parseMetadata, timestamp } from "../parse.js";
import type { Register } from "../program.js";
import { keyView } from "../views.js";
import { registerBulkKeyCommands } from "./keys-bulk.js";
import { printSecret } from "./print-secret.js";
import { keySpaceId } from "./resolve.js";
import { limitSet } from "./workspaces.js";

/**
 * Prints a new secret: alone on stdout (so `keymesh keys create … > file` or `| vault kv put …` captures just it)
 * with the key's details on stderr; with -o json|yaml, the key and the secret together on stdout.
 */
interface KeyFlags {
  keySpace?: string;
  workspace?: string;
  name?: string;
  owner?: string;
  member?: string;
  scope?: string[];
  scopes?: string;
  expires?: string;
  expiry?: boolean;
  metadata?: string[];
  limit?: string[];
  clearLimits?: boolean;
  webhook?: string;
  idempotencyKey?: string;
  status?: string;
  max?: string;
  yes?: boolean;
}

const metadata = (pairs: string[] | undefined) =>
  pairs?.length ? (parseMetadata(pairs, "--metadata") as JsonObject) : undefined;

/** Runs one call per id, reporting each; the exit code is that of the first failure, if any. */
async function each(
  ctx: CommandContext,
  ids: string[],
  call: (id: string) => Promise<Key | undefined>,
  verb: string,
) {
  const done: Key[] = [];
  for (const id of ids) {
    const key = await call(id);
    if (key) done.push(key);
    else ctx.print.note(`${verb} ${id}`);
  }
  if (done.length) ctx.print.list(done, keyView);
  return EXIT.ok;
}

export const registerKeys: Register = (program, action) => {
  const keys = program.command("keys").alias("key").description("API keys");
  keys
    .command("create")
    .description("create a key; prints its secret once, alone on stdout")
    .requiredOption("--key-space <id-or-name>", "the key space")
    .requiredOption("--workspace <id>", "the workspace")
    .requiredOption("--name <name>", "a name for people")
    .option("--owner <type>", "organization (acts as the account owner) or user", "organization")
    .option("--member <id>", "the member who owns a user key, or who creates an organization key")
    .option("--scope <scope>", "scope the key holds; repeatable or comma-separated", collect)
    .option("--expires <when>", "expiry: a date (2030-01-31) or a duration from now (90d)")
    .option("--metadata <key=value>", "metadata passed to upstreams; repeatable", collectRaw)
    .option(
      "--limit <limit>",
      "limits overriding inherited ones (NAME=CAPACITY/PERIOD; none); repeatable",
      collectRaw,
    )
    .option("--webhook <url>", "rejection webhook for approval-level requests")
    .option(
      "--idempotency-key <key>",
      "a retry with the same key returns the same key instead of a second one",
    )
    .action(
      action<KeyFlags>(async (ctx, _args, o) => {
        const ownerType = parseEnum<OwnerType>(OwnerType, o.owner ?? "organization", "--owner");
        if (ownerType === OwnerType.USER && !o.member)
          throw usageError("a user key needs --member, its owner");
        const { key, secret } = await ctx.admin().createKey({
          keySpaceId: await keySpaceId(ctx, o.keySpace!),
          workspaceId: o.workspace!,
          ownerType,
          memberId: o.member ?? "",
          name: o.name!,
          scopes: o.scope ?? [],
          metadata: metadata(o.metadata),
          expiresAt: o.expires ? timestamp(parseInstant(o.expires, "--expires", "future")) : undefined,
          limits: limitSet(o.limit, "--limit"),
          rejectionWebhookUrl: o.webhook ?? "",
          idempotencyKey: o.idempotencyKey ?? "",
        });
        printSecret(ctx, key!, secret, "created key");
        return EXIT.ok;
      }),
    );
  keys
    .command("list")
    .description("list keys, oldest first")
    .option("--workspace <id>", "only this workspace's keys")
    .option("--key-space <id>", "only this key space's keys")
    .option("--member <id>", "only keys this member owns")
    .option("--status <status>", "active, revoked or expired")
    .option("--max <n>", "show at most n")
    .action(
      action<KeyFlags>(async (ctx, _args, o) => {
        const admin = ctx.admin();
        const status = o.status
          ? parseEnum<KeyStatus>(KeyStatus, o.status, "--status")
          : KeyStatus.UNSPECIFIED;
        const items = await listAll(
          async (pageToken) => {
            const res = await admin.listKeys({
              workspaceId: o.workspace ?? "",
              keySpaceId: o.keySpace ? await keySpaceId(ctx, o.keySpace) : "",
              ownerMemberId: o.member ?? "",
              status,
              pageSize: 500,
              pageToken,
            });
            return { items: res.keys, next: res.nextPageToken };
          },
          o.max ? Number(o.max) : undefined,
        );
        ctx.print.list(items, keyView);
        return EXIT.ok;
      }),
    );
  keys
    .command("get")
    .description("show a key (never its secret)")
    .argument("<id>")
    .action(
      action(async (ctx, [id]) => {
        const { key } = await ctx.admin().getKey({ id: id as string });
        ctx.print.one(key!, keyView);
        return EXIT.ok;
      }),
    );
  keys
    .command("update")
    .description("change a key; unnamed settings are kept")
    .argument("<id>")
    .option("--name <name>", "new name")
    .option("--scopes <list>", 'replace the key\'s scopes with this comma-separated list ("" for none)')
    .option("--expires <when>", "new expiry: a date or a duration from now")
    .option("--no-expiry", "make the key never expire")
    .option("--metadata <key=value>", "replace the metadata; repeatable", collectRaw)
    .option(
      "--limit <limit>",
      "limits overriding inherited ones (NAME=CAPACITY/PERIOD; none); repeatable",
      collectRaw,
    )
    .option("--clear-limits", "drop the key's override; inherited limits apply again")
    .option("--webhook <url>", 'rejection webhook ("" to remove)')
    .action(
      action<KeyFlags>(async (ctx, [id], o) => {
        if (o.limit?.length && o.clearLimits)
          throw usageError("--limit and --clear-limits contradict each other");
        const { key } = await ctx.admin().updateKey({
          id: id as string,
          name: o.name,
          scopes:
            o.scopes === undefined ? undefined : create(StringListSchema, { values: collect(o.scopes, []) }),
          metadata: metadata(o.metadata),
          limits: limitSet(o.limit, "--limit"),
          clearLimits: o.clearLimits ?? false,
          rejectionWebhookUrl: o.webhook,
          expiresAt: o.expires ? timestamp(parseInstant(o.expires, "--expires", "future")) : undefined,
          clearExpiry: o.expiry === false,
        });
        ctx.print.one(key!, keyView);
        return EXIT.ok;
      }),
    );
  keys
    .command("revoke")
    .description("revoke keys: they are refused at once, and can be activated again")
    .argument("<id...>")
    .action(
      action(async (ctx, [ids]) =>
        each(ctx, ids as string[], async (id) => (await ctx.admin().revokeKey({ id })).key, "revoked"),
      ),
    );
  keys
    .command("activate")
    .description("activate revoked keys again")
    .argument("<id...>")
    .action(
      action(async (ctx, [ids]) =>
        each(ctx, ids as string[], async (id) => (await ctx.admin().activateKey({ id })).key, "activated"),
      ),
    );
  keys
    .command("delete")
    .description("delete keys for good (revoke keeps them, and their history)")
    .argument("<id...>")
    .option("--yes", "confirm: deleting cannot be undone")
    .action(
      action<KeyFlags>(async (ctx, [ids], o) => {
        if (!o.yes)
          throw usageError("deleting a key cannot be undone; add --yes to confirm (or revoke it instead)");
        return each(
          ctx,
          ids as string[],
          async (id) => {
            await ctx.admin().deleteKey({ id });
            return undefined;
          },
          "deleted",
        );
      }),
    );
  registerBulkKeyCommands(keys, action);
};
