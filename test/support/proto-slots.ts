import { type DescField, getOption, hasOption, ScalarType } from "@bufbuild/protobuf";
import type { ReflectMessage } from "@bufbuild/protobuf/reflect";
import { StructSchema } from "@bufbuild/protobuf/wkt";
import { field as validateRules } from "../../gen/buf/validate/validate_pb.js";

/** A place in a message that holds a string, named as violations name it, with a way to replace the string. */
export interface Slot {
  path: string;
  /** For a map key or metadata key: the path once the key is replaced, which names the new key. */
  keyPath?: (key: string) => string;
  /** Whether the field's own buf.validate rules bound its length (so the default cap does not apply). */
  ownMaxLen: boolean;
  set(value: string): void;
}

function hasOwnMaxLen(f: DescField, part: "field" | "items" | "keys" | "values"): boolean {
  if (!hasOption(f, validateRules)) return false;
  const rules = getOption(f, validateRules);
  const own =
    part === "field"
      ? rules
      : rules.type.case === "repeated" && part === "items"
        ? rules.type.value.items
        : rules.type.case === "map"
          ? rules.type.value[part === "keys" ? "keys" : "values"]
          : undefined;
  return own?.type.case === "string" && own.type.value.maxLen !== undefined && own.type.value.maxLen > 0n;
}

function jsonSlots(value: unknown, path: string, out: Slot[], replace: (v: string) => void): void {
  if (typeof value === "string") out.push({ path, ownMaxLen: true, set: replace });
  else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) jsonSlots(value[i], `${path}[${i}]`, out, (v) => (value[i] = v));
  } else if (value !== null && typeof value === "object") {
    const object = value as Record<string, unknown>;
    for (const key of Object.keys(object)) {
      out.push(keySlot(object, key, path));
      jsonSlots(object[key], `${path}[${JSON.stringify(key)}]`, out, (v) => (object[key] = v));
    }
  }
}

/** Renames `key` in `object`; the entry keeps its place in iteration order, so no other entry comes first. */
function keySlot(object: Record<string, unknown>, key: string, at: string): Slot {
  return {
    path: `${at}[${JSON.stringify(key)}]`,
    keyPath: (k) => `${at}[${JSON.stringify(k)}]`,
    ownMaxLen: true,
    set: (k) => {
      const entries = Object.entries(object).map(([name, v]) => [name === key ? k : name, v] as const);
      for (const name of Object.keys(object)) delete object[name];
      for (const [name, v] of entries) object[name] = v;
    },
  };
}

/**
 * Every string of a message: scalars, list items, map values, and the strings of Struct fields. Setters write the
 * message's own properties, past reflection's checks, as a decoder bug or a future code path might.
 */
export function slots(r: ReflectMessage, path = ""): Slot[] {
  const out: Slot[] = [];
  const own = r.message as unknown as Record<string, unknown>;
  for (const f of r.fields) {
    if (!r.isSet(f)) continue;
    const at = path ? `${path}.${f.name}` : f.name;
    if (f.fieldKind === "scalar" && f.scalar === ScalarType.STRING) {
      out.push({ path: at, ownMaxLen: hasOwnMaxLen(f, "field"), set: (v) => (own[f.localName] = v) });
    } else if (f.fieldKind === "list") {
      const list = r.get(f);
      const items = own[f.localName] as unknown[];
      for (let i = 0; i < list.size; i++) {
        const item = list.get(i);
        if (f.listKind === "message") out.push(...slots(item as ReflectMessage, `${at}[${i}]`));
        else if (typeof item === "string") {
          out.push({ path: `${at}[${i}]`, ownMaxLen: hasOwnMaxLen(f, "items"), set: (v) => (items[i] = v) });
        }
      }
    } else if (f.fieldKind === "map") {
      const map = r.get(f);
      const entries = own[f.localName] as Record<string, unknown>;
      for (const [key, value] of map) {
        const p = `${at}[${JSON.stringify(String(key))}]`;
        if (f.mapKey === ScalarType.STRING) out.push(keySlot(entries, String(key), at));
        if (f.mapKind === "message") out.push(...slots(value as ReflectMessage, p));
        else if (typeof value === "string") {
          out.push({ path: p, ownMaxLen: hasOwnMaxLen(f, "values"), set: (v) => (entries[String(key)] = v) });
        }
      }
    } else if (f.fieldKind === "message") {
      if (f.message.typeName === StructSchema.typeName) {
        const json = (r.message as unknown as Record<string, unknown>)[f.localName];
        jsonSlots(json, at, out, () => {});
      } else out.push(...slots(r.get(f), at));
    }
  }
  return out;
}
