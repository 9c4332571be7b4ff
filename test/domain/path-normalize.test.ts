// Unit tests and properties of path normalisation and route matching: pure, no Postgres or Redis.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isNormalPath, normalizePath, type PathProblem } from "../../src/domain/path-normalize.js";
import { matchRoute } from "../../src/domain/routes.js";
import type { RouteRule } from "../../src/domain/types.js";
import { encodedSeparator, insertInto, normalPath, segment, spellingsOf } from "../support/path-spellings.js";

const RUNS = 5000;

const problemOf = (path: string) => {
  const result = normalizePath(path);
  return typeof result === "string" ? undefined : result.problem;
};

describe("path normalisation", () => {
  it("gives every spelling of /billing/x in the report the one path /billing/x", () => {
    for (const path of [
      "/billing/x",
      "/billing//x",
      "/billing/./x",
      "/x/../billing/x",
      "/billing/%2e/x",
      "/billing/%2E%2e/billing/x",
      "/%62illing/x",
      "/%62%69%6C%6c%69%6e%67/x",
      "///billing/x?a=1",
      "/billing/x#frag",
    ]) {
      expect(normalizePath(path), path).toBe("/billing/x");
    }
  });

  it("keeps escapes of reserved and non-ASCII bytes, upper-casing their hex digits", () => {
    expect(normalizePath("/caf%c3%a9/a%3fb/%7euser")).toBe("/caf%C3%A9/a%3Fb/~user");
    expect(normalizePath("/100%25")).toBe("/100%25");
  });

  it("removes dot segments as RFC 3986 §5.2.4 does, keeping the trailing slash they leave", () => {
    expect(normalizePath("/a/b/..")).toBe("/a/");
    expect(normalizePath("/a/.")).toBe("/a/");
    expect(normalizePath("/a/b/../c/./d")).toBe("/a/c/d");
    expect(normalizePath("/.well-known/x..y/...")).toBe("/.well-known/x..y/...");
    expect(normalizePath("//")).toBe("/");
  });

  it("leaves the empty path (no request line) empty", () => {
    expect(normalizePath("")).toBe("");
  });

  it("refuses each kind of path that servers resolve differently, naming the kind", () => {
    const cases: [string, PathProblem["problem"]][] = [
      ["billing/x", "not_absolute"],
      ["*", "not_absolute"],
      ["?/billing/x", "not_absolute"],
      ["/billing%2Fx", "encoded_separator"],
      ["/billing%2fx", "encoded_separator"],
      ["/billing%5Cx", "encoded_separator"],
      ["/billing%5cx", "encoded_separator"],
      ["/billing\\x", "backslash"],
      ["/billing/x\u0000", "nul"],
      ["/billing/x%00", "nul"],
      ["/billing/%zz", "bad_percent_encoding"],
      ["/billing/%4", "bad_percent_encoding"],
      ["/billing/%", "bad_percent_encoding"],
      ["/..", "above_root"],
      ["/billing/../../x", "above_root"],
      ["/%2e%2e/billing/x", "above_root"],
      ["/a//../billing/x", "ambiguous_dot_segment"],
      ["/billing/x//..", "ambiguous_dot_segment"],
    ];
    for (const [path, problem] of cases) expect(problemOf(path), JSON.stringify(path)).toBe(problem);
  });

  it("ignores what follows the query or fragment, however bad", () => {
    expect(normalizePath("/billing/x?next=%2F..%5C\\")).toBe("/billing/x");
    expect(normalizePath("/billing/x#/../%00")).toBe("/billing/x");
  });

  it("property: a path in normal form is its own normal form", () => {
    fc.assert(
      fc.property(normalPath, fc.boolean(), (path, slash) => {
        const p = slash ? `${path}/` : path;
        expect(normalizePath(p)).toBe(p);
        expect(isNormalPath(p)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it("property: every spelling of a path normalises to it, or is refused as ambiguous after an inserted //", () => {
    let refused = 0;
    fc.assert(
      fc.property(spellingsOf(normalPath), ({ path, spelling }) => {
        const result = normalizePath(spelling.path);
        if (typeof result === "string") {
          expect(result).toBe(path);
        } else {
          refused++;
          expect(spelling.insertedEmpty).toBe(true);
          expect(result.problem).toBe("ambiguous_dot_segment");
        }
      }),
      { numRuns: RUNS },
    );
    // Most spellings are understood, not just refused: the property is about equal paths, not about denials.
    expect(refused).toBeLessThan(RUNS / 4);
  });

  it("property: normalising twice changes nothing", () => {
    const anyPath = fc
      .array(fc.constantFrom(..."/.ab%2eF5c0?#~-"), { maxLength: 24 })
      .map((chars) => `/${chars.join("")}`);
    fc.assert(
      fc.property(anyPath, (path) => {
        const once = normalizePath(path);
        if (typeof once === "string") expect(normalizePath(once)).toBe(once);
      }),
      { numRuns: RUNS },
    );
  });

  it("property: an encoded slash or backslash anywhere in any spelling is refused as encoded_separator", () => {
    fc.assert(
      fc.property(spellingsOf(normalPath), encodedSeparator, fc.nat(), ({ spelling }, bad, at) => {
        expect(problemOf(insertInto(spelling.path, bad, at))).toBe("encoded_separator");
      }),
      { numRuns: RUNS },
    );
  });

  it("property: a raw backslash or a NUL, raw or encoded, anywhere in any spelling is refused", () => {
    fc.assert(
      fc.property(
        spellingsOf(normalPath),
        fc.constantFrom(["\\", "backslash"], ["\u0000", "nul"], ["%00", "nul"]),
        fc.nat(),
        ({ spelling }, [bad, problem], at) => {
          expect(problemOf(insertInto(spelling.path, bad!, at))).toBe(problem);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("property: a % not followed by two hex digits is refused as bad_percent_encoding", () => {
    const notHex = fc.constantFrom(..."gGzZ-_~.!/ ");
    const broken = fc.oneof(
      notHex.map((c) => `%${c}`),
      fc.tuple(fc.constantFrom(..."0123456789abcdefABCDEF"), notHex).map(([h, c]) => `%${h}${c}`),
    );
    fc.assert(
      fc.property(spellingsOf(normalPath), broken, fc.nat(), ({ spelling }, bad, at) => {
        expect(problemOf(insertInto(spelling.path, bad, at))).toBe("bad_percent_encoding");
      }),
      { numRuns: RUNS },
    );
  });

  it("property: a path whose .. segments climb above the root is refused as above_root, others resolved", () => {
    const dots = fc.constantFrom("..", "%2e%2e", ".%2E", "%2E.");
    const element = fc.oneof(
      segment.map((s) => ({ text: s, kind: "segment" as const })),
      fc.constantFrom(".", "%2e").map((s) => ({ text: s, kind: "dot" as const })),
      dots.map((s) => ({ text: s, kind: "up" as const })),
    );
    fc.assert(
      fc.property(fc.array(element, { minLength: 1, maxLength: 10 }), (elements) => {
        // The model: a stack of segments, as RFC 3986 §5.2.4 keeps its output buffer.
        const stack: string[] = [];
        let climbs = false;
        for (const e of elements) {
          if (e.kind === "segment") stack.push(e.text);
          else if (e.kind === "up" && stack.pop() === undefined) climbs = true;
        }
        const result = normalizePath(`/${elements.map((e) => e.text).join("/")}`);
        if (climbs) expect(result).toMatchObject({ problem: "above_root" });
        else {
          const trailing = elements.at(-1)!.kind !== "segment" && stack.length > 0 ? "/" : "";
          expect(result).toBe(`/${stack.join("/")}${trailing}`);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe("route matching on normalised paths", () => {
  const rules: RouteRule[] = [
    { method: "GET", path: "/billing/*", scopes: ["billing:read"], cost: 1 },
    { method: "POST", path: "/billing/*", scopes: ["billing:write"], cost: 1 },
    { method: "*", path: "/reports/**", scopes: ["reports:read"], cost: 3 },
  ];

  it("compares paths case-sensitively by default, as RFC 3986 treats them", () => {
    expect(matchRoute(rules, "GET", "/billing/x")?.scopes).toEqual(["billing:read"]);
    expect(matchRoute(rules, "GET", "/Billing/x")).toBeUndefined();
    expect(matchRoute(rules, "GET", "/BILLING/x")).toBeUndefined();
  });

  it("ignores letter case when the key space asks for it, with its own compiled rules", () => {
    expect(matchRoute(rules, "POST", "/BiLLing/x", true)?.scopes).toEqual(["billing:write"]);
    expect(matchRoute(rules, "POST", "/REPORTS/2026", true)?.cost).toBe(3);
    // The case-sensitive compilation of the same rules array is unaffected.
    expect(matchRoute(rules, "POST", "/BiLLing/x")).toBeUndefined();
  });

  it("compares a rule in the form requests are normalised to, and never matches a rule no request can take", () => {
    const odd: RouteRule[] = [
      { method: "GET", path: "/~me/caf%c3%a9", scopes: ["a"], cost: 1 },
      { method: "GET", path: "/x%2Fy", scopes: ["b"], cost: 1 },
    ];
    expect(matchRoute(odd, "GET", normalizePath("/%7Eme/caf%C3%A9") as string)?.scopes).toEqual(["a"]);
    expect(matchRoute(odd, "GET", "/x%2Fy")).toBeUndefined();
  });

  it("property: any spelling of a request matches the rule its path matches, or is refused", () => {
    const billingPath = fc.oneof(
      normalPath,
      segment.map((s) => `/billing/${s}`),
      fc.array(segment, { maxLength: 3 }).map((s) => `/reports/${s.join("/")}`.replace(/\/$/, "")),
    );
    fc.assert(
      fc.property(
        fc.constantFrom("GET", "POST", "PUT", "DELETE"),
        spellingsOf(billingPath),
        fc.boolean(),
        (method, { path, spelling }, folded) => {
          const normal = normalizePath(spelling.path);
          if (typeof normal !== "string") return;
          expect(matchRoute(rules, method, normal, folded)).toBe(matchRoute(rules, method, path, folded));
        },
      ),
      { numRuns: RUNS },
    );
  });
});
