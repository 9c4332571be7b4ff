import type { CommandContext } from "../context.js";

const ids = new WeakMap<CommandContext, Map<string, Promise<string>>>();

/** The id of a key space named by id or name: CreateKey and ListKeys take ids only. */
export function keySpaceId(ctx: CommandContext, idOrName: string): Promise<string> {
  let cache = ids.get(ctx);
  if (!cache) {
    cache = new Map();
    ids.set(ctx, cache);
  }
  let id = cache.get(idOrName);
  if (!id) {
    id = ctx
      .admin()
      .getKeySpace({ id: idOrName })
      .then((res) => res.keySpace!.id);
    cache.set(idOrName, id);
  }
  return id;
}
