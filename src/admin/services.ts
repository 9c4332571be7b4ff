import type { Sql } from "postgres";
import type { AdminActor } from "../domain/admin-actor.js";
import type { Digester } from "../domain/digest.js";
import { authorize, internalActor, ROOT_KEY_SPACE_ID, ROOT_WORKSPACE_ID } from "./admin-policy.js";
import { type Announce, listAuditEvents } from "./audit.js";
import { AdminError } from "./errors.js";
import { createKeySpaceService } from "./key-spaces.js";
import { createKeyService, type IssuedKey } from "./keys.js";
import { createSealer } from "./sealer.js";
import { createWorkspaceService } from "./workspaces.js";

/** Creates every admin service over one `sql` pool. */
export function createAdminServices(options: {
  sql: Sql;
  digest: Digester;
  pepper: string;
  /** The secret that signs webhooks, handed to receivers through GetWebhookSigningSecret. */
  signingSecret: string;
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
    actor: AdminActor,
    name: string,
    scopes: string[],
    onlyIfFirst = false,
  ): Promise<IssuedKey> {
    // Only admin:root may call this, and only with admin scopes it holds (ADMIN_POLICY, authorizeGrant).
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
      { rootKey: true, onlyIfFirst },
    );
  }

  return {
    sql,
    keySpaces: createKeySpaceService(sql, announce),
    workspaces: createWorkspaceService(sql, announce),
    keys,
    createRootKey,
    /** Lists audit events; see listAuditEvents. */
    listAuditEvents: (actor: AdminActor, options: Parameters<typeof listAuditEvents>[2]) =>
      listAuditEvents(sql, actor, options),
    /** The webhook signing secret, for admin:root callers only. */
    webhookSigningSecret(actor: AdminActor): string {
      authorize(actor, "GetWebhookSigningSecret", "system");
      return options.signingSecret;
    },
    /** Creates the first root key, once; returns undefined when one exists already. */
    async bootstrap(): Promise<IssuedKey | undefined> {
      try {
        return await createRootKey(internalActor("bootstrap"), "bootstrap root key", ["admin:root"], true);
      } catch (error) {
        if (error instanceof AdminError && error.code === "already_exists") return undefined;
        throw error;
      }
    },
  };
}

/** The admin services' API. */
export type AdminServices = ReturnType<typeof createAdminServices>;
