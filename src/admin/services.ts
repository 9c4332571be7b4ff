import type { Sql } from "postgres";
import type { Digester } from "../domain/digest.js";
import type { Announce } from "./audit.js";
import { AdminError } from "./errors.js";
import { createKeySpaceService, ROOT_KEY_SPACE_ID } from "./key-spaces.js";
import { createKeyService, type IssuedKey } from "./keys.js";
import { createSealer } from "./sealer.js";
import { createWorkspaceService } from "./workspaces.js";

const ROOT_WORKSPACE_ID = "ws_keymesh";

/** Creates every admin service over one `sql` pool. */
export function createAdminServices(options: {
  sql: Sql;
  digest: Digester;
  pepper: string;
  announce?: Announce;
}) {
  const { sql, announce } = options;
  const keys = createKeyService({
    sql,
    digest: options.digest,
    sealer: createSealer(options.pepper),
    announce,
  });

  async function createRootKey(
    actor: string,
    name: string,
    scopes: string[],
    onlyIfFirst = false,
  ): Promise<IssuedKey> {
    // The root key space's own scope model (admin:read < admin:write < admin:root) rejects any other scope.
    return keys.create(
      actor,
      {
        keySpaceId: ROOT_KEY_SPACE_ID,
        workspaceId: ROOT_WORKSPACE_ID,
        ownerType: "organization",
        memberId: "",
        name,
        scopes,
        metadata: {},
        expiresAt: null,
        limits: null,
        rejectionWebhookUrl: "",
        idempotencyKey: "",
      },
      { allowSystem: true, onlyIfFirst },
    );
  }

  return {
    sql,
    keySpaces: createKeySpaceService(sql, announce),
    workspaces: createWorkspaceService(sql, announce),
    keys,
    createRootKey,
    /** Creates the first root key, once; returns undefined when one exists already. */
    async bootstrap(): Promise<IssuedKey | undefined> {
      try {
        return await createRootKey("bootstrap", "bootstrap root key", ["admin:root"], true);
      } catch (error) {
        if (error instanceof AdminError && error.code === "already_exists") return undefined;
        throw error;
      }
    },
  };
}

/** The admin services' API. */
export type AdminServices = ReturnType<typeof createAdminServices>;
