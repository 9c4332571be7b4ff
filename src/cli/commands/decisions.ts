import { readFileSync } from "node:fs";
import { create, type JsonValue } from "@bufbuild/protobuf";
import type { HeaderValueOption } from "../../../gen/envoy/config/core/v3/base_pb.js";
import {
  CheckRequestSchema,
  type CheckResponse,
} from "../../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { CredentialSourceKind } from "../../../gen/keymesh/v1/types_pb.js";
import { type VerifyResponse, VerifyResponseSchema } from "../../../gen/keymesh/v1/verify_pb.js";
import { VerifyCode } from "../../client/index.js";
import type { CommandContext } from "../context.js";
import { EXIT, usageError } from "../errors.js";
import type { Column, View } from "../output.js";
import { collect, collectRaw } from "../parse.js";
import type { Register } from "../program.js";
import { protoJson, short } from "../views.js";

/** The key argument, or standard input for `-` (which keeps the key out of shell history and `ps`). */
function readKey(arg: unknown): string {
  if (arg === undefined) return "";
  if (arg !== "-") return String(arg);
  const key = readFileSync(0, "utf8").trim();
  if (!key) throw usageError("the key read from standard input is empty");
  return key;
}

function count(value: string | undefined, flag: string): number {
  if (value === undefined) return 0;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw usageError(`${flag} takes a whole number, not ${JSON.stringify(value)}`);
  return n;
}

const col = <T>(header: string, value: (t: T) => string): Column<T> => ({ header, value });

const verifyView: View<VerifyResponse> = {
  columns: [
    col("DECISION", (r) => (r.valid ? "allow" : "deny")),
    col("REASON", (r) => short(VerifyCode, r.code)),
    col("MESSAGE", (r) => r.message),
    col("KEY", (r) => r.identity?.keyId ?? ""),
    col("WORKSPACE", (r) => r.identity?.workspaceId ?? ""),
    col("ACTS AS", (r) => r.identity?.actingMemberId ?? ""),
    col("SCOPES", (r) => r.identity?.scopes.join(", ") ?? ""),
    col("LIMITS", (r) =>
      r.limits.map((l) => `${l.name} (${l.appliesTo}): ${l.remaining}/${l.limit} left`).join(", "),
    ),
    col("WARNINGS", (r) => r.warnings.join("; ")),
  ],
  json: (r) => protoJson(VerifyResponseSchema, r),
};

/** A Check answer as a person reads it: the decision, the HTTP status Envoy would send, and why. */
export interface CheckView {
  decision: "allow" | "deny";
  status: number;
  reason: string;
  message: string;
  approval: string;
  /** Headers Envoy adds to the upstream request (allow) or to the client response (deny). */
  headers: Record<string, string>;
  responseHeaders: Record<string, string>;
  body: string;
}

const headerMap = (list: readonly HeaderValueOption[]) =>
  Object.fromEntries(
    list.map((h) => [
      h.header?.key ?? "",
      h.header?.value || Buffer.from(h.header?.rawValue ?? []).toString(),
    ]),
  );

/** Reads a CheckResponse the way Envoy applies it. */
export function readCheck(res: CheckResponse): CheckView {
  const allowed = (res.status?.code ?? 0) === 0;
  const http = res.httpResponse;
  if (allowed) {
    const ok = http.case === "okResponse" ? http.value : undefined;
    return {
      decision: "allow",
      status: 200,
      reason: "allow",
      message: "",
      approval: "",
      headers: headerMap(ok?.headers ?? []),
      responseHeaders: headerMap(ok?.responseHeadersToAdd ?? []),
      body: "",
    };
  }
  const denied = http.case === "deniedResponse" ? http.value : undefined;
  let reason = "";
  let message = res.status?.message ?? "";
  let approval = "";
  try {
    const body = JSON.parse(denied?.body ?? "") as {
      error?: { code: string; message: string };
      approval?: { id: string };
    };
    reason = body.error?.code ?? (body.approval ? "approval_required" : "");
    message = body.error?.message ?? (body.approval ? "the request waits for a human's approval" : message);
    approval = body.approval?.id ?? "";
  } catch {
    // A body that is not keymesh's JSON: the status message stands.
  }
  return {
    decision: "deny",
    status: denied?.status?.code ?? 403,
    reason,
    message,
    approval,
    headers: headerMap(denied?.headers ?? []),
    responseHeaders: {},
    body: denied?.body ?? "",
  };
}

const headersText = (h: Record<string, string>) =>
  Object.entries(h)
    .map(([k, v]) => `${k}: ${v}`)
    .join("\n");

const checkView: View<CheckView> = {
  columns: [
    col("DECISION", (c) => c.decision),
    col("STATUS", (c) => String(c.status)),
    col("REASON", (c) => c.reason),
    col("MESSAGE", (c) => c.message),
    col("APPROVAL", (c) => c.approval),
    col("HEADERS", (c) => headersText(c.headers)),
    col("RESPONSE HEADERS", (c) => headersText(c.responseHeaders)),
  ],
  json: (c) => ({ ...c }) as unknown as JsonValue,
};

/** The header that carries the key for a credential source: `bearer`, `basic` (KEY is id:secret) or `header:NAME`. */
function credentialHeader(kind: string, key: string): [string, string] {
  if (kind === "bearer") return ["authorization", `Bearer ${key}`];
  if (kind === "basic") {
    if (!key.includes(":")) throw usageError("a basic credential is KEY-ID:SECRET");
    return ["authorization", `Basic ${Buffer.from(key).toString("base64")}`];
  }
  const match = /^header:([A-Za-z0-9-]+)$/.exec(kind);
  if (!match)
    throw usageError(`--credential takes bearer, basic or header:NAME, not ${JSON.stringify(kind)}`);
  return [match[1]!.toLowerCase(), key];
}

/** How the key space reads keys, when a root key is at hand to ask; bearer otherwise. */
async function defaultCredential(ctx: CommandContext, keySpace: string): Promise<string> {
  try {
    ctx.config.rootKey();
  } catch {
    return "bearer";
  }
  const { keySpace: space } = await ctx.admin().getKeySpace({ id: keySpace });
  const source = space?.credentialSources[0];
  if (source?.kind === CredentialSourceKind.BASIC) return "basic";
  if (source?.kind === CredentialSourceKind.HEADER) return `header:${source.header}`;
  return "bearer";
}

interface CheckFlags {
  keySpace: string;
  method: string;
  path: string;
  header?: string[];
  credential?: string;
  scope?: string[];
  cost?: string;
  host: string;
}

interface VerifyFlags {
  keySpace: string;
  scope?: string[];
  method?: string;
  path?: string;
  cost?: string;
}

export const registerDecisions: Register = (program, action) => {
  program
    .command("verify")
    .description("ask KeyVerify whether a key may make a call, and why not; exit 2 when denied")
    .argument("[key]", "the key (id:secret for ID/secret keys), or - to read it from standard input")
    .requiredOption("--key-space <id-or-name>", "the key space")
    .option("--scope <scope>", "scope the call needs; repeatable or comma-separated", collect)
    .option("--method <method>", "request method, matched against the key space's routes")
    .option("--path <path>", "request path, matched against the key space's routes")
    .option("--cost <n>", "rate-limit tokens to spend (default 1); verify spends them as a real call would")
    .action(
      action<VerifyFlags>(async (ctx, [key], o) => {
        const res = await ctx.verify().verify({
          key: readKey(key),
          keySpaceId: o.keySpace,
          scopes: o.scope ?? [],
          method: o.method ?? "",
          path: o.path ?? "",
          cost: count(o.cost, "--cost"),
        });
        ctx.print.one(res, verifyView);
        return res.valid ? EXIT.ok : EXIT.denied;
      }),
    );
  program
    .command("check")
    .description("send Envoy's ext_authz Check for a request, as the gateway would; exit 2 when denied")
    .argument(
      "[key]",
      "the key (id:secret with basic), or - to read it from standard input; none sends no credential",
    )
    .requiredOption("--key-space <id-or-name>", "the key space (context extension keymesh.key_space)")
    .requiredOption("--method <method>", "request method")
    .requiredOption("--path <path>", "request path, as the client sent it")
    .option("--credential <how>", "bearer, basic or header:NAME (default: the key space's first source)")
    .option("-H, --header <name:value>", "another request header; repeatable", collectRaw)
    .option("--scope <scope>", "scopes overriding the routes (keymesh.scope); repeatable", collect)
    .option("--cost <n>", "rate-limit tokens (keymesh.cost)")
    .option("--host <host>", "request authority", "api.example.com")
    .action(
      action<CheckFlags>(async (ctx, [key], o) => {
        const headers: Record<string, string> = {};
        for (const h of o.header ?? []) {
          const i = h.indexOf(":");
          if (i <= 0) throw usageError(`--header takes name:value, not ${JSON.stringify(h)}`);
          headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
        }
        const secret = readKey(key);
        if (secret) {
          const [name, value] = credentialHeader(
            o.credential ?? (await defaultCredential(ctx, o.keySpace)),
            secret,
          );
          headers[name] = value;
        }
        const contextExtensions: Record<string, string> = { "keymesh.key_space": o.keySpace };
        if (o.scope?.length) contextExtensions["keymesh.scope"] = o.scope.join(",");
        if (o.cost !== undefined) contextExtensions["keymesh.cost"] = String(count(o.cost, "--cost"));
        const request = create(CheckRequestSchema, {
          attributes: {
            request: {
              http: {
                id: "keymesh-cli",
                method: o.method.toUpperCase(),
                path: o.path,
                host: o.host,
                scheme: "https",
                protocol: "HTTP/1.1",
                headers,
              },
            },
            contextExtensions,
          },
        });
        const view = readCheck(await ctx.envoy().check(request));
        ctx.print.one(view, checkView);
        return view.decision === "allow" ? EXIT.ok : EXIT.denied;
      }),
    );
};
