import { readFileSync } from "node:fs";
import { equals, fromJson, type JsonObject } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CreateKeySpaceRequestSchema } from "../../gen/keymesh/v1/admin_pb.js";
import { CredentialSourceKind, KeyStyle, UnmatchedRoutes } from "../../gen/keymesh/v1/types_pb.js";
import { CliError } from "../../src/cli/errors.js";
import { checkUniqueNames, parseKeySpaceFile } from "../../src/cli/keyspace-file.js";
import { ROOT } from "./support.js";

const EXAMPLES = ["trumpet", "trustpager", "trailmark", "trint", "trophy"];

/** The CreateKeySpace requests written in docs/recipes.md's JSON blocks (comments dropped, objects split). */
function recipeRequests(): JsonObject[] {
  const markdown = readFileSync(`${ROOT}/docs/recipes.md`, "utf8");
  const blocks = [...markdown.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const objects: JsonObject[] = [];
  for (const block of blocks) {
    const text = block
      .split("\n")
      .filter((line) => !line.trim().startsWith("//"))
      .join("\n");
    let depth = 0;
    let start = -1;
    let inString = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        if (c === "\\") i++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === "{" && depth++ === 0) start = i;
      else if (c === "}" && --depth === 0) objects.push(JSON.parse(text.slice(start, i + 1)) as JsonObject);
    }
  }
  return objects.filter((o) => "format" in o);
}

describe("key space files (no services)", () => {
  it("examples/ declares exactly the key spaces of docs/recipes.md", () => {
    const documented = recipeRequests().map((json) => fromJson(CreateKeySpaceRequestSchema, json));
    const declared = EXAMPLES.flatMap((name) =>
      parseKeySpaceFile(readFileSync(`${ROOT}/examples/${name}.yaml`, "utf8"), `${name}.yaml`),
    );
    expect(declared.map((d) => d.request.name).sort()).toEqual(documented.map((r) => r.name).sort());
    for (const doc of documented) {
      const mine = declared.find((d) => d.request.name === doc.name)!.request;
      expect(equals(CreateKeySpaceRequestSchema, mine, doc), `${doc.name} differs from docs/recipes.md`).toBe(
        true,
      );
    }
  });

  it("reads short enum spellings and credential shorthands as the proto names", () => {
    const [short] = parseKeySpaceFile(
      [
        "name: a",
        "format: { style: prefix-dot-secret }",
        "credential_sources: [bearer, basic, { header: x-api-key }]",
        "unmatched_routes: allow",
      ].join("\n"),
      "a.yaml",
    );
    const [long] = parseKeySpaceFile(
      JSON.stringify({
        name: "a",
        format: { style: "KEY_STYLE_PREFIX_DOT_SECRET" },
        credentialSources: [
          { kind: "CREDENTIAL_SOURCE_KIND_BEARER" },
          { kind: "CREDENTIAL_SOURCE_KIND_BASIC" },
          { kind: "CREDENTIAL_SOURCE_KIND_HEADER", header: "x-api-key" },
        ],
        unmatchedRoutes: "UNMATCHED_ROUTES_ALLOW",
      }),
      "a.json",
    );
    expect(short!.request.format?.style).toBe(KeyStyle.PREFIX_DOT_SECRET);
    expect(short!.request.credentialSources.map((c) => c.kind)).toEqual([
      CredentialSourceKind.BEARER,
      CredentialSourceKind.BASIC,
      CredentialSourceKind.HEADER,
    ]);
    expect(short!.request.unmatchedRoutes).toBe(UnmatchedRoutes.ALLOW);
    expect(equals(CreateKeySpaceRequestSchema, short!.request, long!.request)).toBe(true);
  });

  it("takes several key spaces as YAML documents or as a list, naming each one's place in messages", () => {
    const docs = parseKeySpaceFile(
      "name: a\nformat: {style: single}\ncredential_sources: [bearer]\n---\n- name: b\n  format: {style: single}\n  credential_sources: [bearer]\n- name: c\n  format: {style: single}\n  credential_sources: [bearer]\n",
      "many.yaml",
    );
    expect(docs.map((d) => [d.request.name, d.source])).toEqual([
      ["a", "many.yaml (document 1)"],
      ["b", "many.yaml (document 2) item 1"],
      ["c", "many.yaml (document 2) item 2"],
    ]);
  });

  const rejects = (text: string) => {
    try {
      checkUniqueNames(parseKeySpaceFile(text, "bad.yaml"));
    } catch (error) {
      expect(error).toBeInstanceOf(CliError);
      expect((error as CliError).exitCode).toBe(65);
      return (error as Error).message;
    }
    throw new Error("accepted");
  };

  it("refuses mistakes with the file, the key space and the field, before calling keymesh", () => {
    const base = "format: {style: single}\ncredential_sources: [bearer]\n";
    expect(rejects(`name: a\n${base}routez: []\n`)).toMatch(/^bad\.yaml: key space "a": .*routez/);
    expect(rejects(`name: a\n${base}unmatched_routes: sometimes\n`)).toMatch(
      /unmatched_routes: "sometimes" is not one of deny, allow/,
    );
    expect(rejects("name: a\nformat: {style: single}\ncredential_sources: [cookie]\n")).toMatch(
      /credential_sources\[0\]: write bearer, basic, or header: NAME/,
    );
    expect(rejects(`name: a\nformat: {style: single}\ncredential_sources: []\n`)).toMatch(
      /credential_sources/,
    );
    expect(rejects(`name: a\n${base}routes: [{method: get, path: /x}]\n`)).toMatch(/routes\[0\]\.method/);
    expect(rejects(`id: ks_1\nname: a\n${base}`)).toMatch(/id is assigned by keymesh/);
    expect(rejects(`name: a\n${base}---\nname: a\n${base}`)).toMatch(/"a" is declared twice/);
    expect(rejects(`name: a\nname: b\n${base}`)).toMatch(/^bad\.yaml: /);
    expect(rejects("- just a string\n")).toMatch(/must be a mapping/);
  });
});
