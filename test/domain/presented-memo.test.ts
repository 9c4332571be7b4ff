import { describe, expect, it } from "vitest";
import { createDigester } from "../../src/domain/digest.js";
import { mintKey } from "../../src/domain/key-format.js";
import { createPresentedMemo } from "../../src/domain/presented-memo.js";
import type { KeyFormat } from "../../src/domain/types.js";

const format: KeyFormat = {
  prefix: "trpt_",
  workspaceSegment: true,
  style: "single",
  secretBytes: 0,
  idPrefix: "",
};
const hmac = createDigester("p".repeat(32));

function counted() {
  const calls: string[] = [];
  const memo = createPresentedMemo((canonical) => {
    calls.push(canonical);
    return hmac(canonical);
  }, 4);
  return { memo, calls };
}

describe("createPresentedMemo", () => {
  it("gives a well-formed key its canonical form and HMAC, computed once for repeated presentations", () => {
    const { memo, calls } = counted();
    const { secret, canonical } = mintKey(format, "acme");
    const first = memo(format, secret);
    expect(first).toMatchObject({ canonical, hex: hmac(canonical).toString("hex") });
    expect(memo(format, secret)).toBe(first);
    expect(calls).toEqual([canonical]);
  });

  it("answers a malformed key as malformed every time, without an HMAC", () => {
    const { memo, calls } = counted();
    const { secret } = mintKey(format, "acme");
    const broken = `${secret.slice(0, -1)}${secret.endsWith("A") ? "B" : "A"}`;
    expect(memo(format, broken).canonical).toBeUndefined();
    expect(memo(format, broken).canonical).toBeUndefined();
    expect(memo(format, "x".repeat(10_000)).canonical).toBeUndefined();
    expect(calls).toEqual([]);
  });

  it("parses again for another format, so a key space replaced with a new layout is never answered from the old", () => {
    const { memo } = counted();
    const { secret } = mintKey(format, "acme");
    expect(memo(format, secret).canonical).toBe(secret);
    expect(memo({ ...format, prefix: "other_" }, secret).canonical).toBeUndefined();
    expect(memo({ ...format }, secret).canonical).toBe(secret);
  });

  it("forgets the least recently presented keys beyond its size, and keeps recently used ones", () => {
    const { memo, calls } = counted();
    const keys = Array.from({ length: 3 }, () => mintKey(format, "acme").secret);
    // Size 4: two generations of two. a and b fill the young one and become the old one.
    memo(format, keys[0]!);
    memo(format, keys[1]!);
    // Using a again moves it into the new young generation; with c that one fills and replaces the old one (a, b).
    memo(format, keys[0]!);
    memo(format, keys[2]!);
    calls.length = 0;
    memo(format, keys[0]!);
    expect(calls).toEqual([]);
    memo(format, keys[1]!);
    expect(calls).toEqual([keys[1]]);
  });
});
