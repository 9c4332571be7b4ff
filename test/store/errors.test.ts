/** Unit test (no Postgres): the store's classification of Postgres errors, which transport maps without codes. */
import { describe, expect, it } from "vitest";
import { isDatabaseUnavailable, isInsufficientPrivilege, uniqueViolation } from "../../src/store/errors.js";

describe("classifying Postgres errors in the store (unit)", () => {
  it("names the constraint a unique violation broke and ignores other codes", () => {
    expect(uniqueViolation({ code: "23505", constraint_name: "keys_name_key" })).toEqual({
      constraint: "keys_name_key",
    });
    expect(uniqueViolation({ code: "23505" })).toEqual({ constraint: "unique" });
    expect(uniqueViolation({ code: "23503", constraint_name: "keys_ws_fkey" })).toBeUndefined();
    expect(uniqueViolation(null)).toBeUndefined();
  });

  it("tells a missing privilege from an unavailable database", () => {
    expect(isInsufficientPrivilege({ code: "42501" })).toBe(true);
    expect(isInsufficientPrivilege({ code: "57P01" })).toBe(false);
    expect(isDatabaseUnavailable({ code: "57P01" })).toBe(true);
    expect(isDatabaseUnavailable({ code: "42501" })).toBe(false);
  });
});
