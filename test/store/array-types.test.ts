import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseTextArray, serializeArray } from "../../src/store/array-types.js";

const element = fc.option(fc.string({ unit: "grapheme" }), { nil: null });

describe("array literals (no database)", () => {
  it("reads back every array of text and nulls it writes", () => {
    fc.assert(
      fc.property(fc.array(element), (values) => {
        expect(parseTextArray(serializeArray(values))).toEqual(values);
      }),
    );
  });

  it("reads bare elements, a bare NULL, a quoted 'NULL' and a bounds prefix as Postgres writes them", () => {
    expect(parseTextArray("{}")).toEqual([]);
    expect(parseTextArray('{a,NULL,"NULL","b c","d\\"e","f\\\\g"}')).toEqual([
      "a",
      null,
      "NULL",
      "b c",
      'd"e',
      "f\\g",
    ]);
    expect(parseTextArray("[0:1]={x,y}")).toEqual(["x", "y"]);
  });

  it("refuses a truncated or trailing literal and a nested array, rather than guessing", () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { minLength: 1 }), fc.nat(), (values, cut) => {
        const literal = serializeArray(values);
        const short = literal.slice(0, cut % literal.length);
        expect(() => parseTextArray(short)).toThrow(TypeError);
        expect(() => parseTextArray(`${literal}x`)).toThrow(TypeError);
      }),
    );
    expect(() => parseTextArray("{{a},{b}}")).toThrow(/multi-dimensional/);
    expect(() => serializeArray([["a"]])).toThrow(/nested/);
  });
});
