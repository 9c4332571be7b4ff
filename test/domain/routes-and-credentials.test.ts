import { describe, expect, it } from "vitest";
import { readCredential } from "../../src/domain/credentials.js";
import { normalizePath } from "../../src/domain/path-normalize.js";
import { matchRoute } from "../../src/domain/routes.js";
import type { RouteRule } from "../../src/domain/types.js";

const rules: RouteRule[] = [
  { method: "POST", path: "/v1/pods", scopes: ["CreatePod"], cost: 1 },
  { method: "GET", path: "/v1/contacts/*", scopes: ["contacts:read"], cost: 1 },
  { method: "*", path: "/v1/reports/**", scopes: ["reports:read"], cost: 5 },
];

describe("route rules", () => {
  it("matches method and path, the query string cut off by normalisation", () => {
    expect(matchRoute(rules, "POST", normalizePath("/v1/pods?draft=1") as string)?.scopes).toEqual([
      "CreatePod",
    ]);
    expect(matchRoute(rules, "GET", "/v1/pods")).toBeUndefined();
    expect(matchRoute(rules, "get", "/v1/contacts/42")?.scopes).toEqual(["contacts:read"]);
    expect(matchRoute(rules, "GET", "/v1/contacts/42/notes")).toBeUndefined();
  });

  it("a double star matches the rest of the path and carries its cost", () => {
    expect(matchRoute(rules, "DELETE", "/v1/reports")?.cost).toBe(5);
    expect(matchRoute(rules, "GET", "/v1/reports/2026/q1")?.cost).toBe(5);
    expect(matchRoute(rules, "GET", "/v1/reportsx")).toBeUndefined();
  });
});

describe("credentials", () => {
  const h = (entries: Record<string, string>) => new Map(Object.entries(entries));

  it("reads a Bearer token, case-insensitively on the scheme", () => {
    expect(readCredential([{ kind: "bearer" }], h({ authorization: "bearer abc" }))).toEqual({
      kind: "found",
      value: "abc",
      header: "authorization",
    });
  });

  it("decodes HTTP Basic id:secret", () => {
    const value = Buffer.from("AK-12345ABCDE:this15SECRET").toString("base64");
    expect(readCredential([{ kind: "basic" }], h({ authorization: `Basic ${value}` }))).toMatchObject({
      kind: "found",
      value: "AK-12345ABCDE:this15SECRET",
    });
  });

  it("tries the sources in order, so legacy api-key works beside Basic", () => {
    const sources = [{ kind: "basic" as const }, { kind: "header" as const, header: "api-key" }];
    expect(readCredential(sources, h({ "api-key": "legacy" }))).toMatchObject({
      kind: "found",
      value: "legacy",
      header: "api-key",
    });
  });

  it("an empty credential or garbage Basic is malformed, and no credential is missing", () => {
    expect(readCredential([{ kind: "bearer" }], h({ authorization: "Bearer " })).kind).toBe("malformed");
    expect(readCredential([{ kind: "basic" }], h({ authorization: "Basic !!!" })).kind).toBe("malformed");
    expect(readCredential([{ kind: "header", header: "x-api-key" }], h({ "x-api-key": "" })).kind).toBe(
      "malformed",
    );
    expect(readCredential([{ kind: "bearer" }], h({})).kind).toBe("missing");
  });
});
