import { memoPerEntry } from "./entry-memo.js";
import { type Identity, type IdentityFields, identityFingerprint } from "./verdict.js";

/**
 * The identity an allowed request of `entry` carries: one frozen object, with its fingerprint, for as long as the
 * entry is unchanged, so neither is rebuilt per Check.
 */
export const identityOf = memoPerEntry((entry): Identity => {
  const { key, workspace } = entry;
  const fields: IdentityFields = {
    keyId: key.id,
    keySpaceId: key.keySpaceId,
    workspaceId: workspace.id,
    ownerType: key.ownerType,
    ownerMemberId: key.ownerMemberId,
    actingMemberId:
      key.ownerType === "organization" ? workspace.ownerMemberId || key.ownerMemberId : key.ownerMemberId,
    scopes: Object.freeze([...key.scopes]) as string[],
    name: key.name,
    metadata: key.metadata,
  };
  return Object.freeze({ ...fields, fingerprint: identityFingerprint(fields) });
});
