import { describe, expect, it } from "vitest";
import {
  allWriteableIntegers,
  headerOptionsSize,
  integerOptionsSize,
  writeHeaderOptions,
  writeIntegerOptions,
} from "../../../../src/transport/envoy/wire/header-option-wire.js";

const names = ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"];
const nameBytes = names.map((n) => Buffer.from(n));

function viaStrings(field: number, values: number[]): Buffer {
  const varying = names.map((n, i) => [n, String(values[i])] as const);
  const out = Buffer.alloc(headerOptionsSize(varying));
  expect(writeHeaderOptions(out, 0, field, varying)).toBe(out.length);
  return out;
}

function viaIntegers(field: number, values: number[]): Buffer {
  const out = Buffer.alloc(integerOptionsSize(nameBytes, values));
  expect(writeIntegerOptions(out, 0, field, nameBytes, values)).toBe(out.length);
  return out;
}

describe("writeIntegerOptions", () => {
  const cases: number[][] = [
    [0, 0, 0],
    [9, 10, 99],
    [100, 127, 128],
    [1_000_000_000, 4_294_967_296, 2_000_000_000],
    [Number.MAX_SAFE_INTEGER, 1, Number.MAX_SAFE_INTEGER - 1],
  ];
  for (const values of cases) {
    it(`writes exactly the bytes of the decimal strings for ${values.join(", ")}, in both option fields`, () => {
      for (const field of [2, 6]) expect(viaIntegers(field, values)).toEqual(viaStrings(field, values));
    });
  }

  it("writes a value long enough to need a two-byte length the same as its string", () => {
    const long = [Buffer.from("x".repeat(200))];
    const out = Buffer.alloc(integerOptionsSize(long, [42]));
    writeIntegerOptions(out, 0, 6, long, [42]);
    const varying = [["x".repeat(200), "42"] as const];
    const ref = Buffer.alloc(headerOptionsSize(varying));
    writeHeaderOptions(ref, 0, 6, varying);
    expect(out).toEqual(ref);
  });
});

describe("allWriteableIntegers", () => {
  it("accepts whole numbers from 0 to the largest safe integer and refuses everything else", () => {
    expect(allWriteableIntegers([0, 1, Number.MAX_SAFE_INTEGER])).toBe(true);
    for (const bad of [-1, 0.5, Number.MAX_SAFE_INTEGER + 1, 1e21, Number.NaN, Number.POSITIVE_INFINITY])
      expect(allWriteableIntegers([1, bad])).toBe(false);
  });
});
