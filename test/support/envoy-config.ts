import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import protobuf from "protobufjs";
import type { Path } from "./tree-paths.js";

/**
 * Envoy configuration read the way Envoy reads it: proto3 JSON (YAML is parsed to the same tree) against the official
 * Envoy protos shipped in @grpc/grpc-js-xds, strictly. An unknown or deprecated field, an unresolvable `@type`, an
 * undefined enum name, a value of the wrong kind, two members of one oneof, or a missing field that Envoy's
 * protoc-gen-validate rules require (message.required, string.min_len, a required oneof) is an error naming its path.
 * protobufjs's own fromObject ignores unknown fields, so it only checks what this conversion produced.
 */

const DEPS = resolve("node_modules/@grpc/grpc-js-xds/deps");
const INCLUDE = ["envoy-api", "googleapis", "protoc-gen-validate", "xds"].map((d) => join(DEPS, d));

/** Every proto file that declares a type the shipped Envoy config uses, directly or through an Any. */
const FILES = [
  "envoy/config/bootstrap/v3/bootstrap.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
];

let loaded: protobuf.Root | undefined;

/** The official Envoy protos, loaded once (about a second and a half). */
export function envoyProtos(): protobuf.Root {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  // The protos import google/protobuf/descriptor.proto, which protobufjs ships as JSON rather than resolving by path.
  const descriptor = require("protobufjs/google/protobuf/descriptor.json") as {
    nested: { google: { nested: { protobuf: { nested: protobuf.INamespace["nested"] } } } };
  };
  protobuf.common("descriptor", descriptor.nested.google.nested.protobuf.nested as never);
  const root = new protobuf.Root();
  const fallback = root.resolvePath;
  root.resolvePath = (origin, target) => {
    for (const dir of INCLUDE) {
      const path = join(dir, target);
      if (existsSync(path)) return path;
    }
    return fallback(origin, target);
  };
  root.loadSync(FILES, { keepCase: true });
  root.resolveAll();
  loaded = root;
  return root;
}

/** What reading a config produced: the protobufjs object (when error-free), errors, and what was resolved. */
export interface ProtoReading {
  value: Record<string, unknown> | undefined;
  errors: string[];
  /** The message type of every `@type` resolved, by the path of its Any (JSON text of a Path). */
  anyTypes: Map<string, string>;
  /** Where every message field set in the input is, as keys and list indexes from the top. */
  fieldPaths: Path[];
  /** Where every key that is no field of its message is. */
  unknownFields: Path[];
}

const TYPE_URL_PREFIX = "type.googleapis.com/";
const WRAPPERS = new Set(
  ["Bool", "String", "Bytes", "Int32", "UInt32", "Int64", "UInt64", "Float", "Double"].map(
    (w) => `.google.protobuf.${w}Value`,
  ),
);

/** Reads `json` as the proto3 JSON of `typeName`, strictly; see the module comment. */
export function readProtoJson(typeName: string, json: unknown): ProtoReading {
  const root = envoyProtos();
  const reading: ProtoReading = {
    value: undefined,
    errors: [],
    anyTypes: new Map(),
    fieldPaths: [],
    unknownFields: [],
  };
  const type = root.lookupType(typeName);
  const value = message(root, type, json, typeName, [], reading);
  if (reading.errors.length === 0) {
    const problem = type.verify(value);
    if (problem) reading.errors.push(`${typeName}: ${problem}`);
    else {
      // Through the wire format and back: what Envoy would receive over xDS, decoded by the same schema.
      const decoded = type.decode(type.encode(type.fromObject(value)).finish());
      if (type.verify(decoded)) reading.errors.push(`${typeName}: does not survive encoding`);
    }
  }
  if (reading.errors.length === 0) reading.value = value;
  return reading;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function message(
  root: protobuf.Root,
  type: protobuf.Type,
  json: unknown,
  at: string,
  seg: Path,
  reading: ProtoReading,
): Record<string, unknown> {
  const full = type.fullName;
  if (full === ".google.protobuf.Duration") return duration(json, at, reading);
  if (full === ".google.protobuf.Any") return any(root, json, at, seg, reading);
  if (WRAPPERS.has(full)) return { value: scalar(type.fields.value!, json, at, reading) };
  if (full === ".google.protobuf.Struct" || full === ".google.protobuf.Value") {
    reading.errors.push(`${at}: google.protobuf.Struct is not supported by this reader`);
    return {};
  }
  if (!isObject(json)) {
    reading.errors.push(`${at}: expected an object for ${full.slice(1)}`);
    return {};
  }
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(json)) {
    const field = type.fields[key] ?? Object.values(type.fields).find((f) => jsonName(f.name) === key);
    const path = `${at}.${key}`;
    if (!field) {
      reading.errors.push(`${path}: unknown field of ${full.slice(1)}`);
      reading.unknownFields.push([...seg, key]);
      continue;
    }
    reading.fieldPaths.push([...seg, key]);
    if (field.options?.deprecated) reading.errors.push(`${path}: deprecated field of ${full.slice(1)}`);
    out[field.name] = fieldValue(root, field, raw, path, [...seg, key], reading);
  }
  rules(type, out, at, reading);
  return out;
}

function fieldValue(
  root: protobuf.Root,
  field: protobuf.Field,
  raw: unknown,
  at: string,
  seg: Path,
  reading: ProtoReading,
): unknown {
  const one = (x: unknown, path: string, where: Path) =>
    field.resolvedType instanceof protobuf.Type
      ? message(root, field.resolvedType, x, path, where, reading)
      : scalar(field, x, path, reading);
  if (field.map) {
    if (!isObject(raw)) {
      reading.errors.push(`${at}: expected a map`);
      return {};
    }
    return Object.fromEntries(
      Object.entries(raw).map(([k, v]) => [k, one(v, `${at}[${JSON.stringify(k)}]`, [...seg, k])]),
    );
  }
  if (field.repeated) {
    if (!Array.isArray(raw)) {
      reading.errors.push(`${at}: expected a list`);
      return [];
    }
    return raw.map((x, i) => one(x, `${at}[${i}]`, [...seg, i]));
  }
  return one(raw, at, seg);
}

function scalar(field: protobuf.Field, raw: unknown, at: string, reading: ProtoReading): unknown {
  const bad = (what: string) => {
    reading.errors.push(`${at}: expected ${what}, got ${JSON.stringify(raw)}`);
    return undefined;
  };
  if (field.resolvedType instanceof protobuf.Enum) {
    const values = field.resolvedType.values;
    if (typeof raw === "string" && raw in values) return values[raw];
    if (typeof raw === "number" && Object.values(values).includes(raw)) return raw;
    return bad(`a value of ${field.resolvedType.fullName.slice(1)}`);
  }
  switch (field.type) {
    case "string":
      return typeof raw === "string" ? raw : bad("a string");
    case "bool":
      return typeof raw === "boolean" ? raw : bad("true or false");
    case "double":
    case "float":
      return typeof raw === "number" ? raw : bad("a number");
    case "bytes":
      return typeof raw === "string" ? Buffer.from(raw, "base64") : bad("base64 bytes");
    default: {
      const text = typeof raw === "number" || typeof raw === "string" ? String(raw) : "";
      if (!/^-?\d+$/.test(text)) return bad(`an integer (${field.type})`);
      if (field.type.startsWith("u") && text.startsWith("-"))
        return bad(`an unsigned integer (${field.type})`);
      if (!Number.isSafeInteger(Number(text))) return bad(`an integer within 2^53 (${field.type})`);
      return Number(text);
    }
  }
}

function duration(json: unknown, at: string, reading: ProtoReading): Record<string, unknown> {
  const m = typeof json === "string" ? /^(\d+)(?:\.(\d{1,9}))?s$/.exec(json) : null;
  if (!m) {
    reading.errors.push(`${at}: expected a duration such as "0.25s", got ${JSON.stringify(json)}`);
    return {};
  }
  return { seconds: Number(m[1]), nanos: Number((m[2] ?? "").padEnd(9, "0")) };
}

function any(
  root: protobuf.Root,
  json: unknown,
  at: string,
  seg: Path,
  reading: ProtoReading,
): Record<string, unknown> {
  const url = isObject(json) ? json["@type"] : undefined;
  if (typeof url !== "string" || !url.startsWith(TYPE_URL_PREFIX)) {
    reading.errors.push(`${at}: an Any needs "@type": "${TYPE_URL_PREFIX}<message>"`);
    return {};
  }
  const name = url.slice(TYPE_URL_PREFIX.length);
  let type: protobuf.Type;
  try {
    type = root.lookupType(name);
  } catch {
    reading.errors.push(`${at}: "@type" ${name} is not a message of the loaded Envoy protos`);
    return {};
  }
  reading.anyTypes.set(JSON.stringify(seg), name);
  const { "@type": _, ...fields } = json as Record<string, unknown>;
  const inner = message(root, type, fields, at, seg, reading);
  if (reading.errors.length > 0) return { type_url: url, value: Buffer.alloc(0) };
  return { type_url: url, value: Buffer.from(type.encode(type.fromObject(inner)).finish()) };
}

/** The protoc-gen-validate rules Envoy enforces that decide whether a field may be left out. */
function rules(type: protobuf.Type, out: Record<string, unknown>, at: string, reading: ProtoReading): void {
  for (const field of type.fieldsArray) {
    const options = field.options ?? {};
    const set = out[field.name] !== undefined;
    // A rule on a oneof member applies only when that member is the one set.
    if (options["(validate.rules).message.required"] && !set && !field.partOf)
      reading.errors.push(`${at}.${field.name}: required by ${type.fullName.slice(1)}`);
    const minLen = options["(validate.rules).string.min_len"];
    if (typeof minLen === "number" && (set || !field.partOf) && String(out[field.name] ?? "").length < minLen)
      reading.errors.push(`${at}.${field.name}: must be at least ${minLen} characters`);
  }
  for (const oneof of type.oneofsArray) {
    const members = oneof.fieldsArray.filter((f) => out[f.name] !== undefined).map((f) => f.name);
    if (members.length > 1)
      reading.errors.push(`${at}: ${members.join(" and ")} are one oneof (${oneof.name})`);
    if (members.length === 0 && oneof.options?.["(validate.required)"])
      reading.errors.push(`${at}: one of ${oneof.fieldsArray.map((f) => f.name).join(", ")} is required`);
  }
}

function jsonName(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
