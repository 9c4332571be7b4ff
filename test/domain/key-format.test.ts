import { describe, expect, it } from "vitest";
import { mintKey, parsePresentedKey } from "../../src/domain/key-format.js";
import type { KeyFormat } from "../../src/domain/types.js";

const trumpet: KeyFormat = {
  prefix: "trpt_",
  workspaceSegment: true,
  style: "single",
  secretBytes: 0,
  idPrefix: "",
};
const trint: KeyFormat = {
  prefix: "",
  workspaceSegment: false,
  style: "id_secret",
  secretBytes: 0,
  idPrefix: "AK-",
};
const trophy: KeyFormat = {
  prefix: "",
  workspaceSegment: false,
  style: "prefix_dot_secret",
  secretBytes: 0,
  idPrefix: "",
};

describe("key formats", () => {
  it("a single-value key starts with the prefix and the brand segment and passes its own checksum", () => {
    const minted = mintKey(trumpet, "a1b2c3");
    expect(minted.secret).toMatch(/^trpt_a1b2c3_[0-9A-Za-z]{33}$/);
    expect(parsePresentedKey(trumpet, minted.secret)).toBe(minted.secret);
    expect(minted.display.startsWith("trpt_a1b2c3_")).toBe(true);
    expect(minted.display.length).toBeLessThan(minted.secret.length - 20);
  });

  it("a secret carries at least 128 random bits and two keys never repeat", () => {
    const keys = new Set(Array.from({ length: 1000 }, () => mintKey(trumpet, "brand").secret));
    expect(keys.size).toBe(1000);
    const body = mintKey(trumpet, "brand").secret.slice("trpt_brand_".length, -6);
    expect(body.length * Math.log2(62)).toBeGreaterThanOrEqual(128);
  });

  it("a mistyped key fails the checksum without any lookup", () => {
    const { secret } = mintKey(trumpet, "a1b2c3");
    const last = secret.at(-8) === "A" ? "B" : "A";
    const typo = `${secret.slice(0, -8)}${last}${secret.slice(-7)}`;
    expect(parsePresentedKey(trumpet, typo)).toBeUndefined();
    expect(parsePresentedKey(trumpet, "trpt_a1b2c3_notakeyatall")).toBeUndefined();
    expect(parsePresentedKey(trumpet, "")).toBeUndefined();
    expect(parsePresentedKey(trumpet, "x".repeat(10_000))).toBeUndefined();
  });

  it("an ID/secret pair shows the Key ID and hashes id:secret", () => {
    const minted = mintKey(trint, "");
    expect(minted.display).toMatch(/^AK-[0-9A-Z]{10}$/);
    expect(minted.canonical).toBe(`${minted.display}:${minted.secret}`);
    expect(parsePresentedKey(trint, minted.canonical)).toBe(minted.canonical);
    expect(parsePresentedKey(trint, minted.secret)).toBeUndefined();
    expect(parsePresentedKey(trint, `AK-0000000000:${minted.secret}`)).toBe(`AK-0000000000:${minted.secret}`);
  });

  it("a Trophy-style key is an 8-character readable prefix, a dot and a secret body", () => {
    const minted = mintKey(trophy, "");
    expect(minted.secret).toMatch(/^[0-9A-Za-z]{8}\.[0-9A-Za-z]{33}$/);
    expect(minted.display).toBe(minted.secret.slice(0, 8));
    expect(parsePresentedKey(trophy, minted.secret)).toBe(minted.secret);
    expect(parsePresentedKey(trophy, `zzzzzzzz${minted.secret.slice(8)}`)).toBeUndefined();
  });
});
