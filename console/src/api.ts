import { type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { KeyAdmin } from "../../gen/keymesh/v1/admin_pb.js";

/** A KeyAdmin client that sends the signed-in key on every call. */
export type Admin = Client<typeof KeyAdmin>;

/** What the signed-in key may do, the admin scope ladder of docs/admin-authorization.md. */
export type Level = "admin:read" | "admin:write" | "admin:root";

const SYSTEM_KEY_SPACE = "ks_keymesh_root";
// An approval id no server issues (theirs are random): approving it can only be refused or not found.
const PROBE_APPROVAL = "console-scope-probe";

/** A KeyAdmin client on the console's own origin: the console has no server of its own and no other power. */
export function adminClient(key: string): Admin {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${key}`);
    return next(req);
  };
  return createClient(KeyAdmin, createConnectTransport({ baseUrl: location.origin, interceptors: [auth] }));
}

const codeOf = (error: unknown) => ConnectError.from(error).code;

/**
 * Learns the signed-in key's admin scope. KeyAdmin has no "who am I" call, so the console asks calls whose refusal
 * shows the scope: listing root keys needs admin:root; approving needs admin:write and refuses a caller without it
 * before looking anything up, so a made-up id answers NOT_FOUND for a writer and PERMISSION_DENIED otherwise;
 * listing workspaces needs admin:read. Neither changes anything. UNAUTHENTICATED means the key is not a root key.
 */
export async function probeLevel(admin: Admin): Promise<Level> {
  try {
    await admin.listKeys({ keySpaceId: SYSTEM_KEY_SPACE, pageSize: 1 });
    return "admin:root";
  } catch (error) {
    if (codeOf(error) !== Code.PermissionDenied) throw error;
  }
  try {
    await admin.approveRequest({ id: PROBE_APPROVAL });
    return "admin:write";
  } catch (error) {
    const code = codeOf(error);
    if (code === Code.NotFound || code === Code.FailedPrecondition) return "admin:write";
    if (code !== Code.PermissionDenied) throw error;
  }
  await admin.listWorkspaces({ pageSize: 1 });
  return "admin:read";
}

/** Whether a key at `level` holds `need`, counting the ladder. */
export function holds(level: Level, need: Level): boolean {
  const order: Level[] = ["admin:read", "admin:write", "admin:root"];
  return order.indexOf(level) >= order.indexOf(need);
}

/** The message of a failed call, as keymesh wrote it (it names the field for a bad request). */
export function errorText(error: unknown): string {
  const e = ConnectError.from(error);
  return e.code === Code.Unknown ? e.message : `${Code[e.code]}: ${e.rawMessage}`;
}

/** Fetches every page of a list call, up to `cap` items. */
export async function allPages<T>(
  fetchPage: (pageToken: string) => Promise<{ items: T[]; next: string }>,
  cap = 1000,
): Promise<T[]> {
  const out: T[] = [];
  let token = "";
  do {
    const page = await fetchPage(token);
    out.push(...page.items);
    token = page.next;
  } while (token !== "" && out.length < cap);
  return out;
}
