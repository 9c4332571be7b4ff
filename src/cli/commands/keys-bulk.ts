import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fromJson, type JsonObject, type JsonValue, toJson } from "@bufbuild/protobuf";
import type { Command } from "commander";
import YAML from "yaml";
import { type CreateKeyRequest, CreateKeyRequestSchema } from "../../../gen/keymesh/v1/admin_pb.js";
import { type Key, KeySchema, KeyStatus } from "../../../gen/keymesh/v1/types_pb.js";
import type { CommandContext } from "../context.js";
import { CliError, EXIT, explain, usageError } from "../errors.js";
import { listAll, parseDuration } from "../parse.js";
import type { Register } from "../program.js";
import { createProgress, runPool } from "../progress.js";
import { protoJson } from "../views.js";
import { printSecret } from "./print-secret.js";
import { keySpaceId } from "./resolve.js";

type Action = Parameters<Register>[1];

/** Writes one issued secret as it arrives, so that an interrupted run loses none: a line, or a JSON line. */
function emit(ctx: CommandContext, key: Key, secret: string, extra: Record<string, string>): void {
  if (ctx.print.format === "json") {
    ctx.print.raw(`${JSON.stringify({ ...extra, key: protoJson(KeySchema, key), secret })}\n`);
  } else if (ctx.print.format === "yaml") {
    ctx.print.raw(`---\n${YAML.stringify({ ...extra, key: protoJson(KeySchema, key), secret })}`);
  } else ctx.print.raw(`${[...Object.values(extra), key.id, key.name, secret].join("\t")}\n`);
}

async function bulk<T>(
  ctx: CommandContext,
  label: string,
  items: readonly T[],
  work: (item: T) => Promise<void>,
  describe: (item: T) => string,
): Promise<number> {
  const progress = createProgress(ctx.print, label, items.length);
  const failures: string[] = [];
  await runPool(items, 4, ctx.signal, async (item) => {
    try {
      await work(item);
      progress.tick();
    } catch (error) {
      failures.push(`${describe(item)}: ${explain(error, ctx.target).message}`);
      progress.tick(true);
    }
  });
  progress.stop();
  for (const failure of failures) ctx.print.note(`keymesh: ${failure}`);
  if (ctx.signal.aborted)
    throw new CliError("interrupted; the keys listed on stdout were done", EXIT.failure);
  return failures.length ? EXIT.failure : EXIT.ok;
}

async function rotateAll(ctx: CommandContext, o: RotateFlags, grace: bigint | undefined): Promise<number> {
  const admin = ctx.admin();
  const space = o.keySpace ? await keySpaceId(ctx, o.keySpace) : "";
  // Keys still in a rotation grace already have a successor; rotating them again would fork the chain.
  const keys = (
    await listAll(async (pageToken) => {
      const res = await admin.listKeys({
        workspaceId: o.workspace!,
        keySpaceId: space,
        status: KeyStatus.ACTIVE,
        pageSize: 500,
        pageToken,
      });
      return { items: res.keys, next: res.nextPageToken };
    })
  ).filter((k) => !k.rotatedToId);
  if (keys.length === 0) {
    ctx.print.note(`no active keys to rotate in ${o.workspace}`);
    return EXIT.ok;
  }
  return bulk(
    ctx,
    "rotating",
    keys,
    async (key) => {
      const res = await admin.rotateKey({ id: key.id, graceSeconds: grace });
      emit(ctx, res.key!, res.secret, { previous: key.id });
    },
    (key) => `rotating ${key.id}`,
  );
}

interface RotateFlags {
  grace?: string;
  workspace?: string;
  keySpace?: string;
  all?: boolean;
}

interface ImportEntry {
  request: CreateKeyRequest;
  label: string;
}

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** Reads an import file: a list of CreateKey requests, or `{defaults: {…}, keys: [ … ]}`. */
export function parseImportFile(text: string, file: string): ImportEntry[] {
  let doc: unknown;
  try {
    doc = YAML.parse(text, { uniqueKeys: true });
  } catch (error) {
    throw new CliError(`${file}: ${(error as Error).message}`, EXIT.invalidInput);
  }
  const defaults = isObject(doc) && isObject(doc.defaults) ? doc.defaults : {};
  const list = Array.isArray(doc) ? doc : isObject(doc) && Array.isArray(doc.keys) ? doc.keys : undefined;
  if (!list)
    throw new CliError(
      `${file}: expected a list of keys, or keys: [ … ] with optional defaults`,
      EXIT.invalidInput,
    );
  const seen = new Map<string, string>();
  return list.map((item: unknown, i) => {
    const label = `${file} key ${i + 1}${isObject(item) && typeof item.name === "string" ? ` (${item.name})` : ""}`;
    if (!isObject(item)) throw new CliError(`${label}: expected a mapping`, EXIT.invalidInput);
    const merged: JsonObject = { ...defaults, ...item };
    for (const k of ["owner_type", "ownerType"]) {
      const v = merged[k];
      if (typeof v === "string" && !v.startsWith("OWNER_TYPE_")) merged[k] = `OWNER_TYPE_${v.toUpperCase()}`;
    }
    let request: CreateKeyRequest;
    try {
      request = fromJson(CreateKeyRequestSchema, merged as JsonValue);
    } catch (error) {
      throw new CliError(
        `${label}: ${(error as Error).message.replace(/^cannot decode [^:]+: /, "")}`,
        EXIT.invalidInput,
      );
    }
    // The same entry imported again returns the same key, not a second one: the server deduplicates by this key.
    request.idempotencyKey ||= `import-${createHash("sha256")
      .update(JSON.stringify(toJson(CreateKeyRequestSchema, request)))
      .digest("hex")
      .slice(0, 40)}`;
    const first = seen.get(request.idempotencyKey);
    if (first)
      throw new CliError(
        `${label} repeats ${first}; give one an idempotency_key to import both`,
        EXIT.invalidInput,
      );
    seen.set(request.idempotencyKey, label);
    return { request, label };
  });
}

export const registerBulkKeyCommands = (keys: Command, action: Action) => {
  keys
    .command("rotate")
    .description("replace a key (or every active key of a workspace) with a new secret; prints new secrets")
    .argument("[id]", "the key to rotate")
    .option("--grace <duration>", "how long the old key keeps working (90s, 24h; default: the key space's)")
    .option("--workspace <id>", "with --all: the workspace")
    .option("--key-space <id-or-name>", "with --all: only this key space's keys")
    .option("--all", "rotate every active key of --workspace, with a progress bar")
    .action(
      action<RotateFlags>(async (ctx, [id], o) => {
        const grace = o.grace === undefined ? undefined : BigInt(parseDuration(o.grace, "--grace"));
        if (o.all) {
          if (id) throw usageError("give a key id, or --all with --workspace, not both");
          if (!o.workspace) throw usageError("--all needs --workspace: the workspace whose keys to rotate");
          return rotateAll(ctx, o, grace);
        }
        if (!id) throw usageError("name the key to rotate, or use --workspace W --all");
        const res = await ctx.admin().rotateKey({ id: id as string, graceSeconds: grace });
        const until = res.previous?.expiresAt
          ? ` works until ${new Date(Number(res.previous.expiresAt.seconds) * 1000).toISOString()}`
          : " stopped working";
        printSecret(ctx, res.key!, res.secret, `rotated: the old key${until}; the new key is`);
        return EXIT.ok;
      }),
    );
  keys
    .command("import")
    .description("create the keys listed in a file, with a progress bar; a re-run returns the same keys")
    .requiredOption("-f, --file <path>", "YAML or JSON: a list of CreateKey requests, or {defaults, keys}")
    .action(
      action<{ file: string }>(async (ctx, _args, o) => {
        let text: string;
        try {
          text = readFileSync(o.file === "-" ? 0 : o.file, "utf8");
        } catch (error) {
          throw usageError(`cannot read ${o.file}: ${(error as NodeJS.ErrnoException).code ?? error}`);
        }
        const entries = parseImportFile(text, o.file);
        const admin = ctx.admin();
        for (const entry of entries)
          entry.request.keySpaceId = await keySpaceId(ctx, entry.request.keySpaceId);
        return bulk(
          ctx,
          "importing",
          entries,
          async ({ request }) => {
            const res = await admin.createKey(request);
            emit(ctx, res.key!, res.secret, {});
          },
          (entry) => entry.label,
        );
      }),
    );
};
