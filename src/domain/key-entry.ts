import type { Key, Member, Workspace } from "./types.js";

/** Everything a check needs to know about one stored key, loaded in one lookup. */
export interface KeyEntry {
  key: Key;
  digest: Buffer;
  workspace: Workspace;
  /** The owning member, for user keys; null for organization keys without one. */
  owner: Member | null;
}
