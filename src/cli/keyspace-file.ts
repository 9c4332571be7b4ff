import { type DescEnum, fromJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { createValidator } from "@bufbuild/protovalidate";
import YAML from "yaml";
import { type CreateKeySpaceRequest, CreateKeySpaceRequestSchema } from "../../gen/keymesh/v1/admin_pb.js";
import {
  CredentialSourceKindSchema,
  KeyStyleSchema,
  UnmatchedRoutesSchema,
} from "../../gen/keymesh/v1/types_pb.js";
import { CliError, EXIT } from "./errors.js";

/** One key space as declared in a file, with where it came from for messages. */
export interface KeySpaceDeclaration {
  /** `file.yaml` or `file.yaml (document 2)`, or `… item 3` for lists. */
  source: string;
  request: CreateKeySpaceRequest;
}

const invalidInput = (message: string) => new CliError(message, EXIT.invalidInput);

// Short spellings of enum values: `style: single` for KEY_STYLE_SINGLE, and so on; unknown ones name the field.
function enumValue(value: JsonValue | undefined, schema: DescEnum, field: string): JsonValue | undefined {
  if (typeof value !== "string") return value;
  const prefix = (schema.sharedPrefix ?? "").toUpperCase();
  const name = value.startsWith(prefix) ? value : `${prefix}${value.toUpperCase().replace(/-/g, "_")}`;
  const known = schema.values.filter((v) => v.number !== 0);
  if (!known.some((v) => v.name === name)) {
    const choices = known.map((v) => v.name.slice(prefix.length).toLowerCase().replace(/_/g, "-"));
    throw new Error(`${field}: ${JSON.stringify(value)} is not one of ${choices.join(", ")}`);
  }
  return name;
}

const isObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Either spelling of a field (`credential_sources` or `credentialSources`), whichever the file used. */
function field(obj: JsonObject, snake: string): string {
  const camel = snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  return camel in obj ? camel : snake;
}

function credentialSource(value: JsonValue, i: number): JsonValue {
  const field = `credential_sources[${i}]`;
  // `- bearer`, `- basic`, `- header: x-api-key` and the full `{kind, header}` form.
  if (typeof value === "string") {
    const kind = value.toLowerCase();
    if (kind === "bearer" || kind === "basic")
      return { kind: enumValue(kind, CredentialSourceKindSchema, field) ?? kind };
    throw new Error(`${field}: write bearer, basic, or header: NAME, not ${JSON.stringify(value)}`);
  }
  if (!isObject(value)) return value;
  const kind = value.kind ?? (typeof value.header === "string" ? "header" : undefined);
  return kind === undefined
    ? value
    : { ...value, kind: enumValue(kind, CredentialSourceKindSchema, `${field}.kind`) ?? kind };
}

/** Expands the file's short forms into the proto JSON mapping of CreateKeySpaceRequest. */
export function expandShortForms(declared: JsonObject): JsonObject {
  const out: JsonObject = { ...declared };
  const formatKey = field(out, "format");
  const format = out[formatKey];
  if (isObject(format) && format.style !== undefined) {
    out[formatKey] = {
      ...format,
      style: enumValue(format.style, KeyStyleSchema, "format.style") ?? format.style,
    };
  }
  const sourcesKey = field(out, "credential_sources");
  const sources = out[sourcesKey];
  if (Array.isArray(sources)) out[sourcesKey] = sources.map((source, i) => credentialSource(source, i));
  const unmatchedKey = field(out, "unmatched_routes");
  if (out[unmatchedKey] !== undefined)
    out[unmatchedKey] = enumValue(out[unmatchedKey], UnmatchedRoutesSchema, "unmatched_routes") ?? null;
  return out;
}

const validator = createValidator();

function declaration(value: unknown, source: string): KeySpaceDeclaration {
  if (!isObject(value))
    throw invalidInput(`${source}: a key space must be a mapping of settings, with at least a name`);
  const label =
    typeof value.name === "string" ? `${source}: key space ${JSON.stringify(value.name)}` : source;
  for (const server of ["id", "created_at", "createdAt"]) {
    if (server in value)
      throw invalidInput(
        `${label}: ${server} is assigned by keymesh; key spaces are matched by name, remove it`,
      );
  }
  let request: CreateKeySpaceRequest;
  try {
    request = fromJson(CreateKeySpaceRequestSchema, expandShortForms(value), { ignoreUnknownFields: false });
  } catch (error) {
    const message = (error as Error).message.replace(/^cannot decode message [\w.]+ from JSON: /, "");
    throw invalidInput(`${label}: ${message}`);
  }
  const result = validator.validate(CreateKeySpaceRequestSchema, request);
  if (result.kind === "invalid") {
    const detail = result.violations.map((v) => v.toString()).join("; ");
    throw invalidInput(`${label}: ${detail}`);
  }
  if (result.kind === "error") throw invalidInput(`${label}: ${result.error.message}`);
  return { source, request };
}

/**
 * Parses a key space file: YAML (or JSON) with one key space per document, or a list of them, in the proto JSON
 * mapping of CreateKeySpaceRequest (snake_case or camelCase names) plus short enum spellings.
 */
export function parseKeySpaceFile(text: string, file: string): KeySpaceDeclaration[] {
  const documents = YAML.parseAllDocuments(text, { uniqueKeys: true });
  const out: KeySpaceDeclaration[] = [];
  const many = documents.length > 1;
  documents.forEach((doc, i) => {
    const where = many ? `${file} (document ${i + 1})` : file;
    if (doc.errors.length > 0) throw invalidInput(`${where}: ${doc.errors[0]!.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    if (!Array.isArray(value)) out.push(declaration(value, where));
    else for (const [j, item] of value.entries()) out.push(declaration(item, `${where} item ${j + 1}`));
  });
  return out;
}

/** Checks that no two declarations name the same key space. */
export function checkUniqueNames(declarations: readonly KeySpaceDeclaration[]): void {
  const seen = new Map<string, string>();
  for (const d of declarations) {
    const first = seen.get(d.request.name);
    if (first)
      throw invalidInput(
        `key space ${JSON.stringify(d.request.name)} is declared twice: ${first} and ${d.source}`,
      );
    seen.set(d.request.name, d.source);
  }
}
