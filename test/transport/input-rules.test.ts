import {
  create,
  type DescField,
  type DescMessage,
  getOption,
  hasOption,
  isFieldSet,
  type Message,
  ScalarType,
} from "@bufbuild/protobuf";
import { reflect } from "@bufbuild/protobuf/reflect";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MapRulesSchema,
  RepeatedRulesSchema,
  field as validateRules,
} from "../../gen/buf/validate/validate_pb.js";
import { CreateKeyRequestSchema, KeyAdmin } from "../../gen/keymesh/v1/admin_pb.js";
import { findInputViolation, INPUT_LIMITS } from "../../src/transport/connect/input-rules.js";
import { messageArbitrary } from "../support/proto-arbitrary.js";
import { slots } from "../support/proto-slots.js";

const requests: DescMessage[] = KeyAdmin.methods.map((m) => m.input);

/** A clean request of any KeyAdmin method with at least one string in it, and the index of one of its strings. */
const withSlot = fc
  .constantFrom(...requests)
  .chain((desc) => fc.tuple(fc.constant(desc), messageArbitrary(desc, { clean: true })))
  .filter(([desc, message]) => slots(reflect(desc, message)).length > 0)
  .chain(([desc, message]) =>
    fc.tuple(fc.constant(desc), fc.constant(message), fc.nat(slots(reflect(desc, message)).length - 1)),
  );

function violationOf(desc: DescMessage, message: Message) {
  return findInputViolation(reflect(desc, message));
}

describe("input rules of admin requests (reflective walk)", () => {
  it("a clean request of any method breaks no rule", () => {
    fc.assert(
      fc.property(
        fc
          .constantFrom(...requests)
          .chain((d) => fc.tuple(fc.constant(d), messageArbitrary(d, { clean: true }))),
        ([desc, message]) => {
          expect(violationOf(desc, message)).toBeUndefined();
        },
      ),
      { seed: 1, numRuns: 400 },
    );
  });

  it("a NUL anywhere in any string (nested, in lists, maps and metadata) is refused naming that string", () => {
    fc.assert(
      fc.property(withSlot, fc.string(), fc.string(), ([desc, message, index], before, after) => {
        const slot = slots(reflect(desc, message))[index]!;
        const bad = `${before}\u0000${after}`;
        slot.set(bad);
        expect(violationOf(desc, message)).toEqual({
          field: slot.keyPath ? slot.keyPath(bad) : slot.path,
          message: `${slot.keyPath ? "key " : ""}must not contain a NUL character (U+0000)`,
          rule: "keymesh.string.no_nul",
        });
      }),
      { seed: 2, numRuns: 300 },
    );
  });

  it("an unpaired surrogate anywhere is refused naming that string", () => {
    fc.assert(
      fc.property(
        withSlot,
        fc.constantFrom("\uD800", "\uDBFF", "\uDC00", "\uDFFFx"),
        ([desc, message, index], lone) => {
          const slot = slots(reflect(desc, message))[index]!;
          slot.set(`a${lone}`);
          expect(violationOf(desc, message)).toMatchObject({
            field: slot.keyPath ? slot.keyPath(`a${lone}`) : slot.path,
            rule: "keymesh.string.well_formed",
          });
        },
      ),
      { seed: 3, numRuns: 300 },
    );
  });

  it("a string without its own max_len is capped at the default, counted in characters", () => {
    const max = INPUT_LIMITS.maxStringChars;
    fc.assert(
      fc.property(
        withSlot.filter(([desc, message, index]) => {
          const slot = slots(reflect(desc, message))[index]!;
          return !slot.ownMaxLen && !slot.keyPath;
        }),
        fc.constantFrom("a", "é", "😀"),
        ([desc, message, index], unit) => {
          const slot = slots(reflect(desc, message))[index]!;
          slot.set(unit.repeat(max));
          expect(violationOf(desc, message)).toBeUndefined();
          slot.set(unit.repeat(max + 1));
          expect(violationOf(desc, message)).toMatchObject({
            field: slot.path,
            rule: "keymesh.string.max_len",
          });
        },
      ),
      { seed: 4, numRuns: 120 },
    );
  });

  it("a list or map without its own bound is capped at the default, naming the field", () => {
    const unbounded = requests.flatMap(sizedFields).filter(({ field }) => !ownBound(field));
    expect(unbounded.length).toBeGreaterThan(5);
    for (const { root, path, field, build } of unbounded) {
      const max = field.fieldKind === "map" ? INPUT_LIMITS.maxMapPairs : INPUT_LIMITS.maxListItems;
      expect(violationOf(root, build(max)), `${root.typeName} ${path}`).toBeUndefined();
      expect(violationOf(root, build(max + 1)), `${root.typeName} ${path}`).toMatchObject({ field: path });
    }
  });

  it("metadata is capped at 16 KiB as JSON and 8 levels of nesting, with finite numbers", () => {
    const request = (metadata: object) =>
      violationOf(CreateKeyRequestSchema, { ...messageOf(CreateKeyRequestSchema), metadata } as Message);
    // {"k":"..."} is 8 bytes of JSON around the string.
    expect(request({ k: "x".repeat(16 * 1024 - 8) })).toBeUndefined();
    expect(request({ k: "x".repeat(16 * 1024 - 7) })).toMatchObject({
      field: "metadata",
      rule: "keymesh.struct.max_bytes",
    });
    const nested = (depth: number): object => (depth === 1 ? { end: 1 } : { d: nested(depth - 1) });
    expect(request(nested(8))).toBeUndefined();
    expect(request(nested(9))).toMatchObject({
      field: `metadata${'["d"]'.repeat(8)}`,
      rule: "keymesh.struct.max_depth",
    });
    expect(request({ n: [1, Number.NaN] })).toMatchObject({
      field: 'metadata["n"][1]',
      rule: "keymesh.struct.finite",
    });
    expect(request({ "a\u0000": 1 })).toMatchObject({
      field: 'metadata["a\\u0000"]',
      rule: "keymesh.string.no_nul",
    });
  });

  it("a timestamp outside 0001-01-01..9999-12-31 is refused", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.bigInt({ max: -62_135_596_801n }), fc.bigInt({ min: 253_402_300_800n })),
        (seconds) => {
          const message = {
            ...messageOf(CreateKeyRequestSchema),
            expiresAt: { $typeName: "google.protobuf.Timestamp", seconds, nanos: 0 },
          };
          expect(violationOf(CreateKeyRequestSchema, message as Message)).toMatchObject({
            field: "expires_at",
            rule: "keymesh.timestamp.range",
          });
        },
      ),
      { seed: 5, numRuns: 100 },
    );
  });
});

function messageOf(desc: DescMessage): Message {
  return fc.sample(messageArbitrary(desc, { clean: true }), { seed: 9, numRuns: 1 })[0] as Message;
}

/** Whether a list or map field's own buf.validate rules bound its size. */
function ownBound(field: DescField): boolean {
  if (!hasOption(field, validateRules)) return false;
  const rules = getOption(field, validateRules);
  if (rules.type.case === "repeated") return isFieldSet(rules.type.value, RepeatedRulesSchema.field.maxItems);
  if (rules.type.case === "map") return isFieldSet(rules.type.value, MapRulesSchema.field.maxPairs);
  return false;
}

interface Sized {
  root: DescMessage;
  path: string;
  field: DescField;
  /** A request of `root` whose field at `path` holds `n` items. */
  build(n: number): Message;
}

/** Every list or map field reachable from a request (through messages and the first item of message lists). */
function sizedFields(root: DescMessage): Sized[] {
  const found: Sized[] = [];
  const visit = (desc: DescMessage, path: string, wrap: (inner: object) => object, depth: number) => {
    if (depth > 4) return;
    for (const field of desc.fields) {
      const at = path ? `${path}.${field.name}` : field.name;
      const nest = (inner: DescMessage, innerPath: string, place: (x: object) => object) =>
        inner.typeName.startsWith("keymesh.") && visit(inner, innerPath, (x) => wrap(place(x)), depth + 1);
      if (field.fieldKind === "list") {
        const item =
          field.listKind === "message"
            ? {}
            : field.listKind === "enum"
              ? 1
              : field.scalar === ScalarType.STRING
                ? "s"
                : 1;
        const items = (n: number) => Array.from({ length: n }, () => item);
        found.push({
          root,
          path: at,
          field,
          build: (n) => create(root, wrap({ [field.localName]: items(n) }) as never),
        });
        if (field.listKind === "message")
          nest(field.message, `${at}[0]`, (x) => ({ [field.localName]: [x] }));
      } else if (field.fieldKind === "map") {
        const value = field.mapKind === "message" ? {} : field.mapKind === "enum" ? 1 : "v";
        const entries = (n: number) =>
          Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, value]));
        found.push({
          root,
          path: at,
          field,
          build: (n) => create(root, wrap({ [field.localName]: entries(n) }) as never),
        });
      } else if (field.fieldKind === "message") {
        nest(field.message, at, (x) => ({ [field.localName]: x }));
      }
    }
  };
  visit(root, "", (x) => x, 1);
  return found;
}
