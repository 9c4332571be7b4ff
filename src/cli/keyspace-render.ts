import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import YAML from "yaml";
import type { KeySpace } from "../../gen/keymesh/v1/types_pb.js";
import {
  FIXED_AT_CREATION,
  type KeySpacePlan,
  SETTINGS,
  type Setting,
  settingsJson,
} from "./keyspace-plan.js";

const isObject = (v: JsonValue): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);
const INT64 = new Set(["capacity", "period_seconds", "rotation_grace_seconds"]);

/** Drops empty, zero and false values inside a value, as a person would leave them out of a file. */
function prune(value: JsonValue): JsonValue | undefined {
  if (Array.isArray(value))
    return value.length ? value.map((v) => prune(v) ?? (isObject(v) ? {} : v)) : undefined;
  if (isObject(value)) {
    const entries = Object.entries(value)
      .map(([k, v]) => [k, INT64.has(k) && typeof v === "string" ? Number(v) : v] as const)
      .map(([k, v]) => [k, prune(v)] as const)
      .filter((entry): entry is readonly [string, JsonValue] => entry[1] !== undefined);
    return entries.length ? (Object.fromEntries(entries) as JsonObject) : undefined;
  }
  if (value === "" || value === 0 || value === false || value === "0" || value === null) return undefined;
  return value;
}

const shortEnum = (value: JsonValue, prefix: string) =>
  typeof value === "string" && value.startsWith(prefix) ? value.slice(prefix.length).toLowerCase() : value;

/** A setting in the file's own spelling: short enum names, numbers for counts, defaults inside it left out. */
export function friendlySetting(setting: Setting, value: JsonValue): JsonValue {
  switch (setting) {
    case "format": {
      const format = isObject(value)
        ? { ...value, style: shortEnum(value.style ?? "", "KEY_STYLE_") }
        : value;
      return prune(format) ?? {};
    }
    case "credential_sources":
      return (Array.isArray(value) ? value : []).map((source) => {
        const s = isObject(source) ? source : {};
        const kind = shortEnum(s.kind ?? "", "CREDENTIAL_SOURCE_KIND_");
        return kind === "header" ? { header: s.header ?? "" } : kind;
      });
    case "unmatched_routes":
      return shortEnum(value, "UNMATCHED_ROUTES_");
    case "rotation_grace_seconds":
      return Number(value);
    default:
      if (Array.isArray(value) || isObject(value)) return prune(value) ?? (Array.isArray(value) ? [] : {});
      return value;
  }
}

/** A key space as a declaration: name plus every setting that is not keymesh's default. */
export function declarationOf(space: KeySpace): JsonObject {
  const json = settingsJson(space);
  const out: JsonObject = { name: space.name };
  for (const setting of SETTINGS) {
    const value = friendlySetting(setting, json[setting]);
    const dropped = prune(value) === undefined || (setting === "unmatched_routes" && value === "deny");
    if (setting === "format" || !dropped) out[setting] = value;
  }
  return out;
}

/** YAML as a person writes it: lists of plain values on one line (`scopes: [read, write]`). */
export function toYaml(value: unknown): string {
  const doc = new YAML.Document(value);
  YAML.visit(doc, {
    Seq(_, node) {
      if (node.items.every((item) => YAML.isScalar(item))) node.flow = true;
    },
  });
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

const yamlLines = (setting: string, value: JsonValue) =>
  toYaml({ [setting]: value })
    .trimEnd()
    .split("\n");

/** A line diff (longest common subsequence): `- ` lines removed, `+ ` lines added, `  ` kept. */
export function lineDiff(before: string[], after: string[]): string[] {
  const n = before.length;
  const m = after.length;
  const lcs = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i]![j] =
        before[i] === after[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && before[i] === after[j]) {
      out.push(`  ${before[i++]}`);
      j++;
    } else if (i < n && (j >= m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) out.push(`- ${before[i++]}`);
    else out.push(`+ ${after[j++]}`);
  }
  return out;
}

/** What `diff` prints for one plan: nothing when unchanged, the whole declaration for a create. */
export function planText(plan: KeySpacePlan): string {
  if (plan.action === "unchanged") return "";
  if (plan.action === "create") {
    const body = toYaml(declarationOf(plan.desired)).trimEnd().split("\n");
    return [
      `+ key space ${plan.name} will be created (${plan.source})`,
      ...body.map((l) => `+   ${l}`),
      "",
    ].join("\n");
  }
  const lines = [`~ key space ${plan.name} (${plan.id}) will be updated (${plan.source})`];
  for (const change of plan.changes) {
    const before = yamlLines(change.setting, friendlySetting(change.setting, change.before));
    const after = yamlLines(change.setting, friendlySetting(change.setting, change.after));
    if (FIXED_AT_CREATION.has(change.setting))
      lines.push(`  ! ${change.setting} cannot change after the key space is created`);
    lines.push(...lineDiff(before, after).map((l) => `  ${l}`));
  }
  return `${lines.join("\n")}\n`;
}
