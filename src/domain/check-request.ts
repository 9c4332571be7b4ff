/** What the domain needs to know about one request, whichever transport it came from. */
export interface CheckRequest {
  /** Key space id or name, from Envoy's `keymesh.key_space` context extension or the caller. */
  keySpace: string;
  /** Scopes the caller demands explicitly (context extension `keymesh.scope`); empty means use route rules. */
  scopes: string[];
  method: string;
  /** The request path, query string included. */
  path: string;
  /** Request headers, lower-case names. */
  headers: ReadonlyMap<string, string>;
  /** Rate-limit cost override; 0 means the route rule's cost or 1. */
  cost: number;
  /** A key handed over directly (KeyVerify), instead of being read from the headers the key space names. */
  presentedKey?: string;
  /** The request body when the proxy forwards it, for approvals. */
  body?: Uint8Array;
}

/** Decides one request; never throws. The verdict comes back directly when no backend had to be asked. */
export interface Authorizer {
  check(request: CheckRequest): import("./verdict.js").Verdict | Promise<import("./verdict.js").Verdict>;
  /** When set, `check` settles within this many milliseconds by itself, so a caller need not time it. */
  readonly deadlineMs?: number;
}
