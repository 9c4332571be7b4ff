import {
  create,
  type DescField,
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type MessageShape,
  ScalarType,
} from "@bufbuild/protobuf";
import { StructSchema, TimestampSchema } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";

/** How wild the generated messages are. */
export interface ProtoArbitraryOptions {
  /**
   * Clean messages break no generic input rule: short strings without NUL or unpaired surrogates, short lists,
   * small JSON, timestamps in range. Otherwise anything the wire format can carry is fair game.
   */
  clean?: boolean;
  /**
   * Known-good strings by proto field name (`id`, `key_space_id`, `scopes`, ...), as a fuzzing dictionary: mixed into
   * those fields (and their list items) so that calls reach past "not found" and into the services.
   */
  dictionary?: Readonly<Record<string, readonly string[]>>;
  /** Nesting of messages beyond which message fields are left unset. */
  maxDepth?: number;
}

/** A string with U+0000 or an unpaired surrogate somewhere in it. */
export const hostileString: fc.Arbitrary<string> = fc
  .tuple(
    fc.string({ maxLength: 12 }),
    fc.constantFrom("\u0000", "\uD800", "\uDFFF", "\uDBFF\u0000"),
    fc.string({ maxLength: 12 }),
  )
  .map(([a, bad, b]) => a + bad + b);

function stringArbitrary(clean: boolean): fc.Arbitrary<string> {
  if (clean) return fc.string({ maxLength: 24 });
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ maxLength: 24 }) },
    { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 24 }) },
    { weight: 2, arbitrary: hostileString },
    // Just past the 1024-character default; built by repetition, as generating each character is slow.
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.string({ minLength: 1, maxLength: 3 }), fc.integer({ min: 1000, max: 1500 }))
        .map(([unit, n]) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n)),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom("", "9999999999999999999", "-1", "*", "/", "%00", "{}", "null", "\\u0000"),
    },
  );
}

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };
const UINT32 = { min: 0, max: 2 ** 32 - 1 };

function scalarArbitrary(type: ScalarType, clean: boolean): fc.Arbitrary<unknown> {
  switch (type) {
    case ScalarType.STRING:
      return stringArbitrary(clean);
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: clean ? 16 : 256 });
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return fc.double();
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return fc.oneof(fc.integer({ min: -5, max: 2000 }), fc.integer(INT32));
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.oneof(fc.nat(2000), fc.integer(UINT32));
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.oneof(fc.bigInt(0n, 2000n), fc.bigInt(0n, 2n ** 64n - 1n));
    default:
      return fc.oneof(fc.bigInt(-5n, 2000n), fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n));
  }
}

function jsonArbitrary(clean: boolean): fc.Arbitrary<JsonObject> {
  const text = stringArbitrary(clean);
  const { tree } = fc.letrec<{ tree: JsonValue }>((tie) => ({
    tree: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.constant(null),
      fc.boolean(),
      clean ? fc.double({ noNaN: true, noDefaultInfinity: true }) : fc.double(),
      text,
      fc.array(tie("tree"), { maxLength: 4 }),
      fc.dictionary(text, tie("tree"), { maxKeys: 4 }),
    ),
  }));
  const object = fc.dictionary(text, tree, { maxKeys: 6 }) as fc.Arbitrary<JsonObject>;
  if (clean) return object;
  const deep = fc.integer({ min: 1, max: 40 }).map((depth) => {
    let value: JsonValue = "bottom";
    for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { d: value };
    return { deep: value } as JsonObject;
  });
  const large = fc.integer({ min: 10_000, max: 40_000 }).map((n) => ({ blob: "x".repeat(n) }) as JsonObject);
  return fc.oneof(
    { weight: 6, arbitrary: object },
    { weight: 1, arbitrary: deep },
    { weight: 1, arbitrary: large },
  );
}

function timestampArbitrary(clean: boolean) {
  const seconds = clean
    ? fc.bigInt(0n, 253_402_300_799n)
    : fc.oneof(fc.bigInt(0n, 253_402_300_799n), fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n));
  const nanos = clean ? fc.integer({ min: 0, max: 999_999_999 }) : fc.integer(INT32);
  return fc.record({ seconds, nanos });
}

function fieldValue(
  f: DescField,
  options: ProtoArbitraryOptions,
  depth: number,
): fc.Arbitrary<unknown> | undefined {
  const clean = options.clean ?? false;
  const known = options.dictionary?.[f.name];
  const text = known?.length
    ? fc.oneof(
        { weight: clean ? 3 : 1, arbitrary: fc.constantFrom(...known) },
        { weight: 1, arbitrary: stringArbitrary(clean) },
      )
    : stringArbitrary(clean);
  const item = (kind: "scalar" | "enum" | "message", scalar?: ScalarType, message?: DescMessage) =>
    kind === "scalar"
      ? scalar === ScalarType.STRING
        ? text
        : scalarArbitrary(scalar!, clean)
      : kind === "enum"
        ? enumArbitrary(f, clean)
        : messageInit(message!, options, depth + 1);
  switch (f.fieldKind) {
    case "scalar":
      return item("scalar", f.scalar);
    case "enum":
      return item("enum");
    case "message":
      if (f.message.typeName === StructSchema.typeName) return jsonArbitrary(clean);
      if (f.message.typeName === TimestampSchema.typeName) return timestampArbitrary(clean);
      return depth >= (options.maxDepth ?? 4) ? undefined : item("message", undefined, f.message);
    case "list": {
      if (f.listKind === "message" && depth >= (options.maxDepth ?? 4)) return undefined;
      const element = item(f.listKind, f.scalar, f.listKind === "message" ? f.message : undefined);
      const short = fc.array(element, { maxLength: 4 });
      // Long lists nested in long lists would make requests of many MiB; deeper lists stay short.
      if (clean || depth > 2) return short;
      // Past the 256-item default, made of a few distinct items (generating each one is slow); message lists stay
      // smaller so that one request stays a few MiB at most.
      const long = fc
        .tuple(
          fc.array(element, { minLength: 1, maxLength: 3 }),
          fc.integer({ min: 250, max: f.listKind === "message" ? 300 : 1100 }),
        )
        .map(([items, n]) => Array.from({ length: n }, (_, i) => items[i % items.length]));
      return fc.oneof({ weight: 8, arbitrary: short }, { weight: 1, arbitrary: long });
    }
    case "map": {
      if (f.mapKind === "message" && depth >= (options.maxDepth ?? 4)) return undefined;
      const key =
        f.mapKey === ScalarType.STRING
          ? stringArbitrary(clean)
          : fc.integer({ min: 0, max: 1000 }).map(String);
      const value = item(
        f.mapKind,
        f.mapKind === "scalar" ? f.scalar : undefined,
        f.mapKind === "message" ? f.message : undefined,
      );
      return fc.dictionary(key, value, { maxKeys: clean ? 4 : 300 });
    }
  }
}

function enumArbitrary(f: DescField, clean: boolean): fc.Arbitrary<number> {
  const values = f.enum?.values.map((v) => v.number) ?? [0];
  return clean ? fc.constantFrom(...values) : fc.oneof(fc.constantFrom(...values), fc.integer(INT32));
}

// Plain init objects, keyed by localName; `create` turns them into messages.
function messageInit(desc: DescMessage, options: ProtoArbitraryOptions, depth: number): fc.Arbitrary<object> {
  const entries: Record<string, fc.Arbitrary<unknown>> = {};
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      const cases = member.fields.flatMap((f) => {
        const value = fieldValue(f, options, depth);
        return value ? [value.map((v) => ({ case: f.localName, value: v }))] : [];
      });
      if (cases.length) entries[member.localName] = fc.oneof(...cases);
      continue;
    }
    const value = fieldValue(member, options, depth);
    if (value) entries[member.localName] = value;
  }
  return fc.record(entries, { requiredKeys: [] });
}

/** Messages of `desc` with any subset of fields set, derived from the descriptor by reflection. */
export function messageArbitrary<Desc extends DescMessage>(
  desc: Desc,
  options: ProtoArbitraryOptions = {},
): fc.Arbitrary<MessageShape<Desc>> {
  return messageInit(desc, options, 1).map((init) => create(desc, init as never));
}

/**
 * A valid message with one field, at any depth, replaced by an arbitrary value of its type: most of the message
 * passes validation, so the odd value travels as far into the service as it can.
 */
export function mutantArbitrary<Desc extends DescMessage>(
  desc: Desc,
  seed: object,
  options: ProtoArbitraryOptions = {},
): fc.Arbitrary<MessageShape<Desc>> {
  return mutate(desc, seed as Record<string, unknown>, { ...options, clean: false }, 1).map((init) =>
    create(desc, init as never),
  );
}

function mutate(
  desc: DescMessage,
  init: Record<string, unknown>,
  options: ProtoArbitraryOptions,
  depth: number,
): fc.Arbitrary<Record<string, unknown>> {
  const fields = desc.fields.filter((f) => !f.oneof);
  if (fields.length === 0) return fc.constant(init);
  return fc.constantFrom(...fields).chain((f) => {
    const current = init[f.localName];
    const plainMessage =
      f.fieldKind === "message" &&
      f.message.typeName !== StructSchema.typeName &&
      f.message.typeName !== TimestampSchema.typeName;
    const replaced = (fieldValue(f, options, depth) ?? fc.constant(undefined)).map((value) => ({
      ...init,
      [f.localName]: value,
    }));
    if (plainMessage && current !== null && typeof current === "object") {
      const deeper = mutate(f.message, current as Record<string, unknown>, options, depth + 1).map(
        (value) => ({
          ...init,
          [f.localName]: value,
        }),
      );
      return fc.oneof(replaced, deeper);
    }
    return replaced;
  });
}
