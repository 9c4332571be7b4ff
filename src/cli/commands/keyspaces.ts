import { readFileSync } from "node:fs";
import type { JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { KeySpace } from "../../../gen/keymesh/v1/types_pb.js";
import type { KeyAdminClient } from "../../client/index.js";
import type { CommandContext } from "../context.js";
import { CliError, EXIT, usageError } from "../errors.js";
import { checkUniqueNames, type KeySpaceDeclaration, parseKeySpaceFile } from "../keyspace-file.js";
import { FIXED_AT_CREATION, type KeySpacePlan, planKeySpace, updateRequest } from "../keyspace-plan.js";
import { declarationOf, friendlySetting, planText, toYaml } from "../keyspace-render.js";
import type { View } from "../output.js";
import { collectRaw, listAll } from "../parse.js";
import type { Register } from "../program.js";
import { keySpaceView } from "../views.js";

/** The system key space holds root keys; it is not declared in files. */
const SYSTEM_KEY_SPACE = "ks_keymesh_root";

function readDeclarations(files: readonly string[] | undefined): KeySpaceDeclaration[] {
  if (!files?.length) throw usageError("name the key space file with -f FILE (or -f - for standard input)");
  const declarations = files.flatMap((file) => {
    let text: string;
    try {
      text = readFileSync(file === "-" ? 0 : file, "utf8");
    } catch (error) {
      throw usageError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
    return parseKeySpaceFile(text, file === "-" ? "<stdin>" : file);
  });
  checkUniqueNames(declarations);
  return declarations;
}

/** The key space of exactly this name, if any (GetKeySpace also matches ids). */
async function byName(admin: KeyAdminClient, name: string): Promise<KeySpace | undefined> {
  try {
    const { keySpace } = await admin.getKeySpace({ id: name });
    return keySpace?.name === name ? keySpace : undefined;
  } catch (error) {
    if (ConnectError.from(error).code === Code.NotFound) return undefined;
    throw error;
  }
}

async function plan(ctx: CommandContext, files: readonly string[] | undefined): Promise<KeySpacePlan[]> {
  const declarations = readDeclarations(files);
  const admin = ctx.admin();
  const plans: KeySpacePlan[] = [];
  for (const d of declarations) plans.push(planKeySpace(d, await byName(admin, d.request.name)));
  return plans;
}

function fixedChanges(plans: readonly KeySpacePlan[]): string[] {
  return plans.flatMap((p) =>
    p.action === "update"
      ? p.changes
          .filter((c) => FIXED_AT_CREATION.has(c.setting))
          .map(
            (c) =>
              `key space ${JSON.stringify(p.name)} (${p.source}): ${c.setting} cannot change after creation ` +
              `(keymesh has ${JSON.stringify(friendlySetting(c.setting, c.before))}, the file asks for ` +
              `${JSON.stringify(friendlySetting(c.setting, c.after))})`,
          )
      : [],
  );
}

const FIXED_HINT =
  "Keys already issued carry these settings. Restore them in the file, or declare a key space with a new name " +
  "and move clients to it.";

function planJson(p: KeySpacePlan): JsonValue {
  if (p.action === "create")
    return { name: p.name, source: p.source, action: "create", settings: declarationOf(p.desired) };
  return {
    name: p.name,
    source: p.source,
    action: p.action,
    id: p.id,
    changes: p.changes.map((c) => ({
      setting: c.setting,
      before: friendlySetting(c.setting, c.before),
      after: friendlySetting(c.setting, c.after),
      fixed: FIXED_AT_CREATION.has(c.setting),
    })),
  };
}

interface Applied {
  action: "created" | "updated" | "unchanged";
  name: string;
  id: string;
  changed: string[];
}

const appliedView: View<Applied> = {
  columns: [
    { header: "RESULT", value: (a) => a.action },
    { header: "NAME", value: (a) => a.name },
    { header: "ID", value: (a) => a.id },
    { header: "CHANGED", value: (a) => a.changed.join(", ") },
  ],
  json: (a) => ({ ...a }),
};

async function apply(ctx: CommandContext, opts: { file?: string[] }): Promise<number> {
  const plans = await plan(ctx, opts.file);
  const fixed = fixedChanges(plans);
  if (fixed.length)
    throw new CliError(`${fixed.join("\n")}\n${FIXED_HINT} Nothing was applied.`, EXIT.invalidInput);
  const admin = ctx.admin();
  const results: Applied[] = [];
  for (const p of plans) {
    if (p.action === "create") {
      const { keySpace } = await admin.createKeySpace(p.request);
      results.push({ action: "created", name: p.name, id: keySpace?.id ?? "", changed: [] });
    } else if (p.action === "update") {
      await admin.updateKeySpace(updateRequest(p.id, p.desired, p.changes));
      results.push({ action: "updated", name: p.name, id: p.id, changed: p.changes.map((c) => c.setting) });
    } else results.push({ action: "unchanged", name: p.name, id: p.id, changed: [] });
  }
  ctx.print.list(results, appliedView);
  return EXIT.ok;
}

async function diff(ctx: CommandContext, opts: { file?: string[]; exitCode?: boolean }): Promise<number> {
  const plans = await plan(ctx, opts.file);
  if (ctx.print.format === "json" || ctx.print.format === "yaml") ctx.print.document(plans.map(planJson));
  else for (const p of plans) ctx.print.raw(planText(p));
  const changed = plans.filter((p) => p.action !== "unchanged").length;
  const fixed = fixedChanges(plans);
  if (fixed.length) {
    ctx.print.note(`${fixed.join("\n")}\n${FIXED_HINT} apply would refuse this file.`);
    return EXIT.invalidInput;
  }
  ctx.print.note(
    changed
      ? `${changed} of ${plans.length} key spaces would change; run keymesh keyspaces apply to change them.`
      : `no changes: ${plans.length === 1 ? "the key space matches" : `all ${plans.length} key spaces match`}.`,
  );
  return changed && opts.exitCode ? EXIT.failure : EXIT.ok;
}

async function exportSpaces(ctx: CommandContext, names: string[]): Promise<number> {
  const admin = ctx.admin();
  const spaces = names.length
    ? await Promise.all(names.map(async (n) => (await admin.getKeySpace({ id: n })).keySpace!))
    : (
        await listAll(async (pageToken) => {
          const res = await admin.listKeySpaces({ pageSize: 500, pageToken });
          return { items: res.keySpaces, next: res.nextPageToken };
        })
      ).filter((s) => s.id !== SYSTEM_KEY_SPACE);
  const declarations = spaces.map(declarationOf);
  if (ctx.print.format === "json") ctx.print.document(declarations);
  else ctx.print.raw(declarations.map(toYaml).join("---\n"));
  return EXIT.ok;
}

export const registerKeySpaces: Register = (program, action) => {
  const group = program
    .command("keyspaces")
    .alias("keyspace")
    .description("key spaces, declared in YAML files");
  group
    .command("apply")
    .description("create or update key spaces to match the file(s); changes only what differs")
    .option(
      "-f, --file <path>",
      "key space file (YAML or JSON; - for standard input); repeatable",
      collectRaw,
    )
    .action(action<{ file?: string[] }>((ctx, _args, opts) => apply(ctx, opts)));
  group
    .command("diff")
    .description("show what apply would change; prints nothing when keymesh matches the file(s)")
    .option(
      "-f, --file <path>",
      "key space file (YAML or JSON; - for standard input); repeatable",
      collectRaw,
    )
    .option("--exit-code", "exit 1 when there are changes")
    .action(action<{ file?: string[]; exitCode?: boolean }>((ctx, _args, opts) => diff(ctx, opts)));
  group
    .command("list")
    .description("list key spaces")
    .action(
      action(async (ctx) => {
        const admin = ctx.admin();
        const spaces = await listAll(async (pageToken) => {
          const res = await admin.listKeySpaces({ pageSize: 500, pageToken });
          return { items: res.keySpaces, next: res.nextPageToken };
        });
        ctx.print.list(spaces, keySpaceView);
        return EXIT.ok;
      }),
    );
  group
    .command("get")
    .description("show one key space (-o yaml for every setting)")
    .argument("<id-or-name>")
    .action(
      action(async (ctx, [id]) => {
        const { keySpace } = await ctx.admin().getKeySpace({ id: id as string });
        ctx.print.one(keySpace!, keySpaceView);
        return EXIT.ok;
      }),
    );
  group
    .command("export")
    .description("print key spaces as a file for apply (all but the system one, or those named)")
    .argument("[id-or-name...]")
    .action(action(async (ctx, [names]) => exportSpaces(ctx, (names as string[] | undefined) ?? [])));
};
