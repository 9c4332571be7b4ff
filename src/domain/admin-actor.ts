/** The root key that authenticated a KeyAdmin call: its id for the audit log, its scopes for every rule. */
export interface AdminActor {
  readonly keyId: string;
  readonly scopes: readonly string[];
}
