import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type postgres from "postgres";
import { CredentialSourceKind, KeyStyle, OwnerType, WorkspaceStatus } from "../../gen/keymesh/v1/types_pb.js";
import type { TestServer } from "../support/server.js";
import type { TargetKind } from "./admin-expectations.js";

export const ROOT_KEY_SPACE = "ks_keymesh_root";
export const ROOT_WORKSPACE = "ws_keymesh";

/** One call to make: its request, and a reading of its target's stored state to prove a refused call changed nothing. */
export interface Fixture {
  request: Record<string, unknown>;
  state: () => Promise<unknown>;
}

/** How to build a fresh target of each kind for each KeyAdmin method. */
export type Fixtures = Record<string, Partial<Record<TargetKind, () => Promise<Fixture>>>>;

/** The outcome of a call: "ok" or its error code. */
export async function codeOf(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

const unique = (what: string) => `${what}-${randomBytes(4).toString("hex")}`;

/**
 * Builds, with the server's bootstrap admin:root key, a customer key space, workspace and member, and returns a
 * fixture per method and target kind. Targets that the API cannot create (a member or an approval in the system
 * workspace) are written to the database directly, to prove the rule holds for them too.
 */
export async function createFixtures(t: TestServer, sql: postgres.Sql): Promise<Fixtures> {
  const { keySpace } = await t.admin.createKeySpace({
    name: unique("acme-api"),
    format: { prefix: "acme_", style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    scopeModel: { scopes: ["read", "write"] },
  });
  const ks = keySpace!.id;
  const ws = (await t.admin.createWorkspace({ name: unique("acme") })).workspace!.id;
  const member = (await t.admin.addMember({ workspaceId: ws, name: "dev", role: "Developer" })).member!.id;
  const systemMember = `mem_${randomBytes(6).toString("hex")}`;
  await sql`insert into members (id, workspace_id, name, role) values (${systemMember}, ${ROOT_WORKSPACE}, 'op', 'Admin')`;

  const row = (table: string, id: string) => () => sql`select * from ${sql(table)} where id = ${id}`;
  const rootKeys = () =>
    sql`select id, scopes, revoked_at from keys where key_space_id = ${ROOT_KEY_SPACE} order by id`;
  const customerKey = async () =>
    (
      await t.admin.createKey({
        keySpaceId: ks,
        workspaceId: ws,
        ownerType: OwnerType.ORGANIZATION,
        name: unique("ci"),
        scopes: ["read"],
      })
    ).key!.id;
  const rootKey = async () =>
    (await t.admin.createRootKey({ name: unique("operator"), scopes: ["admin:read"] })).key!.id;
  const onKey =
    (make: () => Promise<string>, request: (id: string) => Record<string, unknown>) => async () => {
      const id = await make();
      return { request: request(id), state: row("keys", id) };
    };
  const revoked = (make: () => Promise<string>) => async () => {
    const id = await make();
    await t.admin.revokeKey({ id });
    return id;
  };
  const approval = (system: boolean) => async () => {
    const id = `apr_${randomBytes(6).toString("hex")}`;
    const key = system ? await rootKey() : await customerKey();
    await sql`
      insert into approvals (id, key_id, workspace_id, key_space_id, method, path, body_digest, required_scope, expires_at)
      values (${id}, ${key}, ${system ? ROOT_WORKSPACE : ws}, ${system ? ROOT_KEY_SPACE : ks}, 'POST', '/x',
              ${Buffer.alloc(32)}, 'write', now() + interval '1 hour')`;
    return id;
  };
  const fixed = (request: Record<string, unknown>, state: () => Promise<unknown>) => async () => ({
    request,
    state,
  });
  const nothing = async () => null;

  return {
    CreateKeySpace: {
      customer: async () => ({
        request: {
          name: unique("space"),
          format: { prefix: "sp_", style: KeyStyle.SINGLE },
          credentialSources: [{ kind: CredentialSourceKind.BEARER }],
        },
        state: () => sql`select count(*) from key_spaces`,
      }),
    },
    UpdateKeySpace: {
      customer: fixed({ id: ks, forwardCredential: false }, row("key_spaces", ks)),
      // Opening the system key space's vocabulary would let root keys carry any scope.
      system: fixed(
        { id: ROOT_KEY_SPACE, scopeModel: { scopes: ["admin:god"] }, routes: { rules: [] } },
        row("key_spaces", ROOT_KEY_SPACE),
      ),
    },
    GetKeySpace: { customer: fixed({ id: ks }, nothing), system: fixed({ id: ROOT_KEY_SPACE }, nothing) },
    ListKeySpaces: { customer: fixed({}, nothing) },
    CreateWorkspace: {
      customer: async () => ({
        request: { name: unique("ws") },
        state: () => sql`select count(*) from workspaces`,
      }),
    },
    UpdateWorkspace: {
      customer: fixed({ id: ws, plan: "pro" }, row("workspaces", ws)),
      // Disabling the system workspace would stop every root key.
      system: fixed(
        { id: ROOT_WORKSPACE, status: WorkspaceStatus.DISABLED },
        row("workspaces", ROOT_WORKSPACE),
      ),
    },
    GetWorkspace: { customer: fixed({ id: ws }, nothing), system: fixed({ id: ROOT_WORKSPACE }, nothing) },
    ListWorkspaces: { customer: fixed({}, nothing) },
    DeleteWorkspace: {
      // A workspace with a member and a working key, deleted with force: a refusal must leave all three.
      customer: async () => {
        const id = (await t.admin.createWorkspace({ name: unique("doomed") })).workspace!.id;
        await t.admin.addMember({ workspaceId: id, name: "dev", role: "Developer" });
        await t.admin.createKey({
          keySpaceId: ks,
          workspaceId: id,
          ownerType: OwnerType.ORGANIZATION,
          name: "live",
          scopes: ["read"],
        });
        return {
          request: { id, force: true },
          state: () =>
            sql`select (select count(*) from workspaces where id = ${id}) as ws,
                       (select count(*) from members where workspace_id = ${id}) as members,
                       (select json_agg(k order by k.id) from keys k where workspace_id = ${id}) as keys`,
        };
      },
      // Deleting the system workspace would take every root key with it.
      system: fixed({ id: ROOT_WORKSPACE, force: true }, async () => [
        await row("workspaces", ROOT_WORKSPACE)(),
        await rootKeys(),
      ]),
    },
    AddMember: {
      customer: fixed({ workspaceId: ws, name: "new", role: "Viewer" }, nothing),
      system: fixed(
        { workspaceId: ROOT_WORKSPACE, name: "intruder", role: "Admin", accountOwner: true },
        () => sql`select count(*) from members where workspace_id = ${ROOT_WORKSPACE}`,
      ),
    },
    UpdateMember: {
      customer: fixed({ id: member, role: "Developer" }, row("members", member)),
      system: fixed({ id: systemMember, role: "Owner" }, row("members", systemMember)),
    },
    GetMember: {
      customer: fixed({ id: member }, nothing),
      system: fixed({ id: systemMember }, nothing),
    },
    ListMembers: {
      customer: fixed({ workspaceId: ws }, nothing),
      system: fixed({ workspaceId: ROOT_WORKSPACE }, nothing),
    },
    CreateKey: {
      customer: fixed(
        { keySpaceId: ks, workspaceId: ws, ownerType: OwnerType.ORGANIZATION, name: "k", scopes: ["write"] },
        nothing,
      ),
      system: fixed(
        {
          keySpaceId: ROOT_KEY_SPACE,
          workspaceId: ROOT_WORKSPACE,
          ownerType: OwnerType.ORGANIZATION,
          name: "backdoor",
          scopes: ["admin:root"],
        },
        rootKeys,
      ),
    },
    GetKey: { customer: onKey(customerKey, (id) => ({ id })), system: onKey(rootKey, (id) => ({ id })) },
    ListKeys: {
      customer: fixed({ workspaceId: ws }, nothing),
      system: fixed({ keySpaceId: ROOT_KEY_SPACE }, nothing),
    },
    UpdateKey: {
      customer: onKey(customerKey, (id) => ({ id, scopes: { values: ["write"] } })),
      system: onKey(rootKey, (id) => ({ id, name: "renamed", scopes: { values: ["admin:read"] } })),
    },
    RotateKey: { customer: onKey(customerKey, (id) => ({ id })), system: onKey(rootKey, (id) => ({ id })) },
    RevokeKey: { customer: onKey(customerKey, (id) => ({ id })), system: onKey(rootKey, (id) => ({ id })) },
    ActivateKey: {
      customer: onKey(revoked(customerKey), (id) => ({ id })),
      system: onKey(revoked(rootKey), (id) => ({ id })),
    },
    DeleteKey: { customer: onKey(customerKey, (id) => ({ id })), system: onKey(rootKey, (id) => ({ id })) },
    ListApprovals: {
      customer: fixed({ workspaceId: ws }, nothing),
      system: fixed({ workspaceId: ROOT_WORKSPACE }, nothing),
    },
    GetApproval: {
      customer: async () => ({ request: { id: await approval(false)() }, state: nothing }),
      system: async () => ({ request: { id: await approval(true)() }, state: nothing }),
    },
    ApproveRequest: {
      customer: async () => {
        const id = await approval(false)();
        return { request: { id }, state: row("approvals", id) };
      },
      system: async () => {
        const id = await approval(true)();
        return { request: { id }, state: row("approvals", id) };
      },
    },
    RejectRequest: {
      customer: async () => {
        const id = await approval(false)();
        return { request: { id, reason: "no" }, state: row("approvals", id) };
      },
      system: async () => {
        const id = await approval(true)();
        return { request: { id, reason: "no" }, state: row("approvals", id) };
      },
    },
    GetWebhookSigningSecret: { system: fixed({}, nothing) },
    CreateRootKey: { system: fixed({ name: "another", scopes: ["admin:read"] }, rootKeys) },
    ListAuditEvents: {
      customer: onKey(customerKey, (id) => ({ targetId: id })),
      system: onKey(rootKey, (id) => ({ targetId: id })),
    },
  };
}

/** A client method by its RPC name, called with a plain request. */
export function callByName(
  client: object,
  localName: string,
  request: Record<string, unknown>,
): Promise<unknown> {
  const method = (client as Record<string, (r: unknown) => Promise<unknown>>)[localName];
  if (!method) throw new Error(`the client has no method ${localName}`);
  return method.call(client, request);
}

/** The code a refused call must get. */
export const DENIED = Code.PermissionDenied;
