import type { Key } from "../../../gen/keymesh/v1/types_pb.js";
import { KeySchema } from "../../../gen/keymesh/v1/types_pb.js";
import type { CommandContext } from "../context.js";
import { protoJson } from "../views.js";

/** Prints a new key's secret alone on stdout (or the key and secret as a document), and where it came from on stderr. */
export function printSecret(ctx: CommandContext, key: Key, secret: string, note: string): void {
  if (ctx.print.format === "json" || ctx.print.format === "yaml") {
    ctx.print.document({ key: protoJson(KeySchema, key), secret });
    return;
  }
  ctx.print.raw(`${secret}\n`);
  ctx.print.note(`${note} ${key.id} (${key.display}); its secret, on stdout, is not shown again.`);
}
