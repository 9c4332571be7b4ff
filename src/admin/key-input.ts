import type { Limit, OwnerType } from "../domain/types.js";

/** What a caller asks for when creating a key. */
export interface NewKey {
  keySpaceId: string;
  workspaceId: string;
  ownerType: OwnerType;
  memberId: string;
  name: string;
  scopes: string[];
  metadata: Record<string, unknown>;
  expiresAt: Date | null;
  limits: Limit[] | null;
  rejectionWebhookUrl: string;
  idempotencyKey: string;
}

/** Changes to a key; absent fields are kept. `expiresAt: null` makes it never expire. */
export interface KeyPatch {
  name?: string;
  scopes?: string[];
  metadata?: Record<string, unknown>;
  limits?: Limit[] | null;
  rejectionWebhookUrl?: string;
  expiresAt?: Date | null;
}
