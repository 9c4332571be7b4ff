import { memoPerEntry } from "./entry-memo.js";
import type { Identity } from "./verdict.js";

// One identity object serves every Check of an entry: it saves building it per request, and lets transports keep
// what they derive from it (encoded headers) per identity.
/** The identity an allowed request of `entry` carries: the same frozen object for as long as the entry is unchanged. */
export const identityOf = memoPerEntry((entry): Identity => {
  const { key, workspace } = entry;
  return Object.freeze({
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
  });
});
