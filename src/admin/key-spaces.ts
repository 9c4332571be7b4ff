import type { Sql } from "postgres";
import type { AdminActor } from "../domain/admin-actor.js";
import { newId } from "../domain/ids.js";
import { isNormalPath } from "../domain/path-normalize.js";
import { unknownScope } from "../domain/scopes.js";
import type { KeySpace } from "../domain/types.js";
import { type KeySpaceRow, toKeySpace } from "../store/rows.js";
import { authorize, authorizeCall } from "./admin-policy.js";
import { type Announce, createTransact, recordChange } from "./audit.js";
import { AdminError, invalid, notFound } from "./errors.js";
import { decodePageToken, pageSize, paginate } from "./pagination.js";
import { definedFields } from "./patch.js";

/** The settings of a key space that an operator chooses. */
export type KeySpaceSettings = Omit<KeySpace, "id" | "createdAt">;

export { ROOT_KEY_SPACE_ID } from "./admin-policy.js";

function check(settings: KeySpaceSettings): void {
  const { format, credentialSources, scopeModel } = settings;
  if (format.style === "id_secret" && !credentialSources.some((s) => s.kind === "basic")) {
    throw invalid("credential_sources", "ID/secret keys need a BASIC source");
  }
  if (format.style === "id_secret" && !format.idPrefix)
    throw invalid("format.id_prefix", "is required for ID/secret keys");
  if (format.secretBytes !== 0 && format.secretBytes < 16) {
    throw invalid("format.secret_bytes", "must be at least 16 (128 bits)");
  }
  for (const source of credentialSources) {
    if (source.kind === "header" && !source.header)
      throw invalid("credential_sources", "a HEADER source needs a header");
  }
  for (const ladder of scopeModel.ladders) {
    for (const [level, target] of Object.entries(ladder.approvalOf)) {
      if (!ladder.levels.includes(level) || !ladder.levels.includes(target)) {
        throw invalid(
          "scope_model.ladders",
          `approval level ${level} -> ${target} must name levels of ${ladder.name}`,
        );
      }
    }
  }
  for (const route of settings.routes) {
    // Requests are matched in normal form, so a rule in any other form would silently never match.
    if (!isNormalPath(route.path)) {
      throw invalid(
        "routes",
        `path ${JSON.stringify(route.path)} must be normalised: no query, dot segments, repeated slashes, ` +
          "encoded unreserved characters, lower-case escapes, encoded slash, backslash or NUL",
      );
    }
    const bad = unknownScope(scopeModel, route.scopes);
    if (bad !== undefined) throw invalid("routes", `scope ${JSON.stringify(bad)} is not in the scope model`);
  }
  const badDefault = unknownScope(scopeModel, settings.defaultScopes);
  if (badDefault !== undefined)
    throw invalid("default_scopes", `scope ${JSON.stringify(badDefault)} is not in the scope model`);
}

/** Creates, updates and reads key spaces; every change is audited and announced. */
export function createKeySpaceService(sql: Sql, announce: Announce = () => {}) {
  const transact = createTransact(sql, announce);
  async function load(id: string): Promise<KeySpaceRow> {
    // An id wins over a name, so a key space named like another's id (the system one's) never stands in for it.
    const [row] = await sql<KeySpaceRow[]>`
      select * from key_spaces where id = ${id} or name = ${id} order by id = ${id} desc limit 1`;
    if (!row) throw notFound("key space", id);
    return row;
  }

  return {
    /** Creates a key space with the given settings. */
    async create(actor: AdminActor, settings: KeySpaceSettings): Promise<KeySpace> {
      authorize(actor, "CreateKeySpace", "customer");
      check(settings);
      const { name, unmatchedRoutes, caseInsensitiveRoutes, ...rest } = settings;
      return transact(async (tx) => {
        const [existing] = await tx`select 1 from key_spaces where name = ${name}`;
        if (existing)
          throw new AdminError("already_exists", `a key space named ${JSON.stringify(name)} exists`);
        const [row] = await tx<KeySpaceRow[]>`
          insert into key_spaces (id, name, settings, unmatched_routes, case_insensitive_routes)
          values (${newId("ks")}, ${name}, ${tx.json(rest as never)}, ${unmatchedRoutes}, ${caseInsensitiveRoutes})
          returning *`;
        const space = toKeySpace(row!);
        await recordChange(
          tx,
          {
            actor: actor.keyId,
            action: "key_space.create",
            targetType: "key_space",
            targetId: space.id,
            after: space,
          },
          { type: "key_space", id: space.id },
        );
        return space;
      });
    },

    /** Applies `patch` to a key space; the system key space cannot be changed (see ADMIN_POLICY). */
    async update(actor: AdminActor, id: string, patch: Partial<KeySpaceSettings>): Promise<KeySpace> {
      authorizeCall(actor, "UpdateKeySpace");
      return transact(async (tx) => {
        const [row] = await tx<KeySpaceRow[]>`select * from key_spaces where id = ${id} for update`;
        if (!row) throw notFound("key space", id);
        authorize(actor, "UpdateKeySpace", row.system ? "system" : "customer");
        const before = toKeySpace(row);
        const next: KeySpaceSettings = { ...before, ...definedFields(patch) };
        check(next);
        const { name, unmatchedRoutes, caseInsensitiveRoutes, ...rest } = next;
        const { id: _id, createdAt: _c, ...settings } = rest as KeySpace;
        const [updated] = await tx<KeySpaceRow[]>`
          update key_spaces set name = ${name}, settings = ${tx.json(settings as never)},
            unmatched_routes = ${unmatchedRoutes}, case_insensitive_routes = ${caseInsensitiveRoutes},
            updated_at = now()
          where id = ${id} returning *`;
        const after = toKeySpace(updated!);
        await recordChange(
          tx,
          {
            actor: actor.keyId,
            action: "key_space.update",
            targetType: "key_space",
            targetId: id,
            before,
            after,
          },
          { type: "key_space", id },
        );
        return after;
      });
    },

    /** Reads a key space by id or name. */
    async get(actor: AdminActor, id: string): Promise<KeySpace> {
      authorizeCall(actor, "GetKeySpace");
      const row = await load(id);
      authorize(actor, "GetKeySpace", row.system ? "system" : "customer");
      return toKeySpace(row);
    },

    /** Lists key spaces, oldest first. */
    async list(
      actor: AdminActor,
      size: number,
      token: string,
    ): Promise<{ keySpaces: KeySpace[]; nextPageToken: string }> {
      authorize(actor, "ListKeySpaces", "customer");
      const limit = pageSize(size);
      const cursor = decodePageToken(token);
      const rows = await sql<KeySpaceRow[]>`
        select * from key_spaces
        where ${cursor === null} or (created_at, id) > (${cursor?.at ?? null}::timestamptz, ${cursor?.id ?? null})
        order by created_at, id limit ${limit + 1}`;
      const { page, nextPageToken } = paginate(rows, limit);
      return { keySpaces: page.map(toKeySpace), nextPageToken };
    },
  };
}

/** The key space service's API. */
export type KeySpaceService = ReturnType<typeof createKeySpaceService>;
