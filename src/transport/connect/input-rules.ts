import { type DescField, getOption, hasOption, isFieldSet, ScalarType } from "@bufbuild/protobuf";
import { type ReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import { StructSchema, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  type FieldRules,
  MapRulesSchema,
  RepeatedRulesSchema,
  StringRulesSchema,
  field as validateRules,
} from "../../../gen/buf/validate/validate_pb.js";

/**
 * The limits every request field is held to unless its buf.validate rules in the proto set their own: the proto's
 * `max_len`, `max_items` or `max_pairs` then applies instead (tighter for names and routes, looser for a few long
 * fields such as a webhook URL). New fields are covered the day they are added.
 */
export const INPUT_LIMITS = Object.freeze({
  /** Characters (code points) in a string. */
  maxStringChars: 1024,
  /** Items in a repeated field. */
  maxListItems: 256,
  /** Entries in a map field. */
  maxMapPairs: 256,
  /** A google.protobuf.Struct (key metadata) as compact JSON, in UTF-8 bytes. */
  maxStructBytes: 16 * 1024,
  /** Objects and arrays nested in a Struct, itself included. */
  maxStructDepth: 8,
  /** Messages nested in a request; no admin request is recursive apart from Struct, which has its own limit. */
  maxMessageDepth: 32,
});

export type InputLimits = typeof INPUT_LIMITS;

/** A field that breaks an input rule, named by its path in the request (`routes.rules[2].path`). */
export interface InputViolation {
  field: string;
  message: string;
  rule: string;
}

// The range google.protobuf.Timestamp allows (0001-01-01 to 9999-12-31); JSON parsing checks it, binary does not.
const MIN_SECONDS = -62_135_596_800n;
const MAX_SECONDS = 253_402_300_799n;

/** Finds the first field of `message` that breaks an input rule, walking every set field by reflection. */
export function findInputViolation(
  message: ReflectMessage,
  limits: InputLimits = INPUT_LIMITS,
): InputViolation | undefined {
  return walkMessage(message, "", 1, limits);
}

function walkMessage(
  r: ReflectMessage,
  path: string,
  depth: number,
  limits: InputLimits,
): InputViolation | undefined {
  if (depth > limits.maxMessageDepth) return violation(path, "is nested too deeply", "message.depth");
  for (const f of r.fields) {
    if (!r.isSet(f)) continue;
    const at = path ? `${path}.${f.name}` : f.name;
    const found = walkField(r, f, at, depth, limits);
    if (found) return found;
  }
  return undefined;
}

function walkField(
  r: ReflectMessage,
  f: DescField,
  at: string,
  depth: number,
  limits: InputLimits,
): InputViolation | undefined {
  const rules = rulesOf(f);
  switch (f.fieldKind) {
    case "scalar":
      return f.scalar === ScalarType.STRING
        ? checkText(r.get(f) as string, at, stringCap(rules, limits))
        : undefined;
    case "enum":
      return undefined;
    case "message":
      return walkNested(r, f, at, depth, limits);
    case "list": {
      const list = r.get(f);
      const repeated = rules?.type.case === "repeated" ? rules.type.value : undefined;
      if (
        !(repeated && isFieldSet(repeated, RepeatedRulesSchema.field.maxItems)) &&
        list.size > limits.maxListItems
      ) {
        return violation(at, `must have at most ${limits.maxListItems} items`, "repeated.max_items");
      }
      let i = 0;
      for (const item of list) {
        const p = `${at}[${i++}]`;
        const found =
          f.listKind === "message"
            ? walkMessage(item as ReflectMessage, p, depth + 1, limits)
            : f.listKind === "scalar" && typeof item === "string"
              ? checkText(item, p, stringCap(repeated?.items, limits))
              : undefined;
        if (found) return found;
      }
      return undefined;
    }
    case "map": {
      const map = r.get(f);
      const rulesOfMap = rules?.type.case === "map" ? rules.type.value : undefined;
      if (
        !(rulesOfMap && isFieldSet(rulesOfMap, MapRulesSchema.field.maxPairs)) &&
        map.size > limits.maxMapPairs
      ) {
        return violation(at, `must have at most ${limits.maxMapPairs} entries`, "map.max_pairs");
      }
      for (const [key, value] of map) {
        const p = `${at}[${JSON.stringify(String(key))}]`;
        const found =
          (typeof key === "string"
            ? checkText(key, p, stringCap(rulesOfMap?.keys, limits), "key ")
            : undefined) ??
          (f.mapKind === "message"
            ? walkMessage(value as ReflectMessage, p, depth + 1, limits)
            : f.mapKind === "scalar" && typeof value === "string"
              ? checkText(value, p, stringCap(rulesOfMap?.values, limits))
              : undefined);
        if (found) return found;
      }
      return undefined;
    }
  }
}

function walkNested(
  r: ReflectMessage,
  f: DescField & { fieldKind: "message" },
  at: string,
  depth: number,
  limits: InputLimits,
): InputViolation | undefined {
  if (f.message.typeName === StructSchema.typeName) {
    // protobuf-es keeps a singular Struct field as the plain JSON object it stands for.
    const json = (r.message as unknown as Record<string, unknown>)[f.localName];
    if (json !== null && typeof json === "object" && !Array.isArray(json))
      return checkStruct(json, at, limits);
  }
  const nested = r.get(f);
  if (f.message.typeName === TimestampSchema.typeName) {
    const seconds = nested.get(TimestampSchema.field.seconds) as bigint;
    const nanos = nested.get(TimestampSchema.field.nanos) as number;
    if (seconds < MIN_SECONDS || seconds > MAX_SECONDS || nanos < 0 || nanos > 999_999_999) {
      return violation(at, "must be a time between 0001-01-01 and 9999-12-31", "timestamp.range");
    }
    return undefined;
  }
  return walkMessage(nested, at, depth + 1, limits);
}

function checkStruct(json: object, at: string, limits: InputLimits): InputViolation | undefined {
  const found = walkJson(json, at, 1, limits);
  if (found) return found;
  if (Buffer.byteLength(JSON.stringify(json)) > limits.maxStructBytes) {
    return violation(at, `must be at most ${limits.maxStructBytes} bytes as JSON`, "struct.max_bytes");
  }
  return undefined;
}

function walkJson(
  value: unknown,
  at: string,
  depth: number,
  limits: InputLimits,
): InputViolation | undefined {
  if (typeof value === "string") return checkText(value, at, Number.POSITIVE_INFINITY);
  if (typeof value === "number") {
    return Number.isFinite(value) ? undefined : violation(at, "must be a finite number", "struct.finite");
  }
  if (value === null || typeof value !== "object") return undefined;
  if (depth > limits.maxStructDepth) {
    return violation(at, `must not nest more than ${limits.maxStructDepth} levels deep`, "struct.max_depth");
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = walkJson(value[i], `${at}[${i}]`, depth + 1, limits);
      if (found) return found;
    }
    return undefined;
  }
  for (const [key, item] of Object.entries(value)) {
    const p = `${at}[${JSON.stringify(key)}]`;
    const found = checkText(key, p, Number.POSITIVE_INFINITY, "key ") ?? walkJson(item, p, depth + 1, limits);
    if (found) return found;
  }
  return undefined;
}

/** NUL, unpaired surrogates and length: the rules for every string, map key and Struct text. */
function checkText(text: string, at: string, maxChars: number, what = ""): InputViolation | undefined {
  if (text.includes("\0"))
    return violation(at, `${what}must not contain a NUL character (U+0000)`, "string.no_nul");
  if (!isWellFormed(text)) {
    return violation(
      at,
      `${what}must be valid Unicode (it holds an unpaired surrogate)`,
      "string.well_formed",
    );
  }
  if (text.length > maxChars && codePoints(text) > maxChars) {
    return violation(at, `${what}must be at most ${maxChars} characters`, "string.max_len");
  }
  return undefined;
}

/** The default cap on a string, or none when its proto rules set a max_len (buf.validate then enforces it). */
function stringCap(rules: FieldRules | undefined, limits: InputLimits): number {
  const own = rules?.type.case === "string" ? rules.type.value : undefined;
  return own && isFieldSet(own, StringRulesSchema.field.maxLen)
    ? Number.POSITIVE_INFINITY
    : limits.maxStringChars;
}

const rulesCache = new WeakMap<DescField, FieldRules | null>();

function rulesOf(f: DescField): FieldRules | undefined {
  let rules = rulesCache.get(f);
  if (rules === undefined) {
    rules = hasOption(f, validateRules) ? getOption(f, validateRules) : null;
    rulesCache.set(f, rules);
  }
  return rules ?? undefined;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function isWellFormed(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

function violation(field: string, message: string, rule: string): InputViolation {
  return { field, message, rule: `keymesh.${rule}` };
}

/**
 * Holds every request of `serviceName` to the input rules above, before buf.validate runs (so that no pattern is
 * matched against an oversized string), and answers a violation with INVALID_ARGUMENT naming the field.
 */
export function inputRulesInterceptor(serviceName: string): Interceptor {
  return (next) => async (req) => {
    if (!req.stream && req.service.typeName === serviceName) {
      const found = findInputViolation(reflect(req.method.input, req.message));
      if (found) {
        throw new ConnectError(
          `invalid request: ${found.field}: ${found.message} [${found.rule}]`,
          Code.InvalidArgument,
        );
      }
    }
    return next(req);
  };
}
