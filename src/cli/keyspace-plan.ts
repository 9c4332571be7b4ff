import { clone, create, type JsonObject, type JsonValue, toJson } from "@bufbuild/protobuf";
import {
  type CreateKeySpaceRequest,
  RouteRulesSchema,
  StringListSchema,
  type UpdateKeySpaceRequest,
  UpdateKeySpaceRequestSchema,
} from "../../gen/keymesh/v1/admin_pb.js";
import {
  CredentialSourceKind,
  type KeySpace,
  KeySpaceSchema,
  LimitSetSchema,
  QuotasSchema,
  ScopeModelSchema,
  UnmatchedRoutes,
} from "../../gen/keymesh/v1/types_pb.js";
import type { KeySpaceDeclaration } from "./keyspace-file.js";

/** The settings a declaration states, by proto field name, in the order they are shown. */
export const SETTINGS = [
  "format",
  "credential_sources",
  "scope_model",
  "routes",
  "unmatched_routes",
  "case_insensitive_routes",
  "default_scopes",
  "default_key_limits",
  "default_workspace_limits",
  "quotas",
  "rotation_grace_seconds",
  "max_key_age_days",
  "key_age_warning_days",
  "creator_roles",
  "forward_credential",
] as const;

export type Setting = (typeof SETTINGS)[number];

/** Settings UpdateKeySpace cannot change: keys already issued carry the format, and the warning window with it. */
export const FIXED_AT_CREATION: ReadonlySet<Setting> = new Set(["format", "key_age_warning_days"]);

/** One setting that differs between keymesh and the file, as proto JSON. */
export interface SettingChange {
  setting: Setting;
  before: JsonValue;
  after: JsonValue;
}

/** What `apply` does with one declaration. */
export type KeySpacePlan =
  | { action: "create"; name: string; source: string; request: CreateKeySpaceRequest; desired: KeySpace }
  | {
      action: "update" | "unchanged";
      name: string;
      source: string;
      id: string;
      desired: KeySpace;
      current: KeySpace;
      changes: SettingChange[];
    };

/** The key space a declaration asks for, with the defaults and normal forms keymesh stores. */
export function desiredKeySpace(request: CreateKeySpaceRequest): KeySpace {
  const { $typeName: _type, $unknown: _unknown, ...settings } = request;
  return normalise(create(KeySpaceSchema, settings));
}

/** Fills what keymesh fills in, so that an unstated default never shows as a change. */
export function normalise(space: KeySpace): KeySpace {
  const copy = clone(KeySpaceSchema, space);
  copy.scopeModel ??= create(ScopeModelSchema);
  copy.quotas ??= create(QuotasSchema);
  copy.credentialSources = copy.credentialSources.map((c) => ({
    ...c,
    header: c.kind === CredentialSourceKind.HEADER ? c.header.toLowerCase() : "",
  }));
  copy.routes = copy.routes.map((r) => ({ ...r, method: r.method || "*" }));
  if (copy.unmatchedRoutes === UnmatchedRoutes.UNSPECIFIED) copy.unmatchedRoutes = UnmatchedRoutes.DENY;
  return copy;
}

/** JSON text with object keys sorted, so that map order never shows as a change. */
function canonical(value: JsonValue): string {
  return JSON.stringify(value, (_, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as JsonObject).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** Every setting as proto JSON with defaults written out. */
export function settingsJson(space: KeySpace): Record<Setting, JsonValue> {
  const json = toJson(KeySpaceSchema, normalise(space), {
    alwaysEmitImplicit: true,
    useProtoFieldName: true,
  }) as JsonObject;
  return Object.fromEntries(SETTINGS.map((s) => [s, json[s] ?? null])) as Record<Setting, JsonValue>;
}

/** The settings that differ, in display order. */
export function compareSettings(current: KeySpace, desired: KeySpace): SettingChange[] {
  const before = settingsJson(current);
  const after = settingsJson(desired);
  return SETTINGS.filter((s) => canonical(before[s]) !== canonical(after[s])).map((setting) => ({
    setting,
    before: before[setting],
    after: after[setting],
  }));
}

/** Plans one declaration against the key space of that name, if keymesh has one. */
export function planKeySpace(declaration: KeySpaceDeclaration, current: KeySpace | undefined): KeySpacePlan {
  const { request, source } = declaration;
  const desired = desiredKeySpace(request);
  if (!current) return { action: "create", name: request.name, source, request, desired };
  const changes = compareSettings(current, desired);
  return {
    action: changes.length ? "update" : "unchanged",
    name: request.name,
    source,
    id: current.id,
    desired,
    current,
    changes,
  };
}

/** The UpdateKeySpace call that makes only the changed settings match; fixed settings are the caller's to refuse. */
export function updateRequest(
  id: string,
  desired: KeySpace,
  changes: readonly SettingChange[],
): UpdateKeySpaceRequest {
  const req = create(UpdateKeySpaceRequestSchema, { id });
  for (const { setting } of changes) {
    switch (setting) {
      case "credential_sources":
        req.credentialSources = desired.credentialSources;
        break;
      case "scope_model":
        req.scopeModel = desired.scopeModel;
        break;
      case "routes":
        req.routes = create(RouteRulesSchema, { rules: desired.routes });
        break;
      case "unmatched_routes":
        req.unmatchedRoutes = desired.unmatchedRoutes;
        break;
      case "case_insensitive_routes":
        req.caseInsensitiveRoutes = desired.caseInsensitiveRoutes;
        break;
      case "default_scopes":
        req.defaultScopes = create(StringListSchema, { values: desired.defaultScopes });
        break;
      case "default_key_limits":
        req.defaultKeyLimits = create(LimitSetSchema, { limits: desired.defaultKeyLimits });
        break;
      case "default_workspace_limits":
        req.defaultWorkspaceLimits = create(LimitSetSchema, { limits: desired.defaultWorkspaceLimits });
        break;
      case "quotas":
        req.quotas = desired.quotas;
        break;
      case "rotation_grace_seconds":
        req.rotationGraceSeconds = desired.rotationGraceSeconds;
        break;
      case "max_key_age_days":
        req.maxKeyAgeDays = desired.maxKeyAgeDays;
        break;
      case "creator_roles":
        req.creatorRoles = create(StringListSchema, { values: desired.creatorRoles });
        break;
      case "forward_credential":
        req.forwardCredential = desired.forwardCredential;
        break;
      case "format":
      case "key_age_warning_days":
        break;
    }
  }
  return req;
}
