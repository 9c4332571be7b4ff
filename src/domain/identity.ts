import type { KeyEntry } from "./key-entry.js";
import type { Identity } from "./verdict.js";

interface Built {
  key: KeyEntry["key"];
  workspace: KeyEntry["workspace"];
  identity: Identity;
}

// Cached entries are replaced, never changed in place, so one identity object serves every Check of an entry: it
// saves building it per request, and lets transports keep what they derive from it (encoded headers) per identity.
const built = new WeakMap<KeyEntry, Built>();

/** The identity an allowed request of `entry` carries: the same frozen object for as long as the entry is unchanged. */
export function identityOf(entry: KeyEntry): Identity {
  const hit = built.get(entry);
  if (hit && hit.key === entry.key && hit.workspace === entry.workspace) return hit.identity;
  const { key, workspace } = entry;
  const identity: Identity = Object.freeze({
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
  built.set(entry, { key, workspace, identity });
  return identity;
}
