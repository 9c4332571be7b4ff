import { Code, ConnectError } from "@connectrpc/connect";
import {
  CredentialSourceKind,
  type KeySpace,
  KeyStyle,
  UnmatchedRoutes,
} from "../../gen/keymesh/v1/types_pb.js";
import { errorText } from "./api.js";
import { createNotice, fill, formDialog, h, table } from "./dom.js";
import { limitsText, short, when } from "./format.js";
import type { View, ViewContext } from "./view.js";

const pair = (term: string, value: string) => [h("dt", {}, term), h("dd", {}, value || "—")];

function policy(s: KeySpace): HTMLElement {
  const f = s.format;
  const model = s.scopeModel;
  return h(
    "div",
    { class: "policy" },
    h(
      "dl",
      {},
      pair("Id", s.id),
      pair(
        "Format",
        `${short(KeyStyle, f?.style ?? 0)}, prefix "${f?.prefix ?? ""}"${f?.workspaceSegment ? " + workspace segment" : ""}`,
      ),
      pair(
        "Credential sources",
        s.credentialSources
          .map((c) =>
            c.kind === CredentialSourceKind.HEADER
              ? `header ${c.header}`
              : short(CredentialSourceKind, c.kind),
          )
          .join(", "),
      ),
      pair("Flat scopes", model?.scopes.join(" ") ?? ""),
      pair("Hierarchies", model?.hierarchies.map((x) => x.scopes.join(" < ")).join("; ") ?? ""),
      pair("Full access scope", model?.fullAccessScope ?? ""),
      pair("Default scopes", s.defaultScopes.join(" ")),
      pair("Unmatched routes", short(UnmatchedRoutes, s.unmatchedRoutes)),
      pair("Key limits", limitsText(s.defaultKeyLimits)),
      pair("Workspace limits", limitsText(s.defaultWorkspaceLimits)),
      pair("Rotation grace", `${s.rotationGraceSeconds}s`),
      pair("Max key age", s.maxKeyAgeDays ? `${s.maxKeyAgeDays} days` : "none"),
      pair("Created", when(s.createdAt)),
    ),
    h("h3", {}, "Scope ladders"),
    table(
      "Scope ladders",
      ["Ladder", "Resources", "Levels, lowest first", "Approval levels"],
      (model?.ladders ?? []).map((l) =>
        h(
          "tr",
          {},
          h("td", {}, l.name, l.adminOnly ? " (admin only)" : ""),
          h("td", {}, l.resources.join(" ") || "any other"),
          h("td", {}, l.levels.join(" < ")),
          h(
            "td",
            {},
            Object.entries(l.approvalOf)
              .map(([from, to]) => `${from} → ${to}`)
              .join(", "),
          ),
        ),
      ),
      "No ladders.",
    ),
    h("h3", {}, "Routes"),
    table(
      "Routes",
      ["Method", "Path", "Scopes", "Cost"],
      s.routes.map((r) =>
        h(
          "tr",
          {},
          h("td", {}, r.method),
          h("td", {}, h("code", {}, r.path)),
          h("td", {}, r.scopes.join(" ")),
          h("td", {}, String(r.cost || 1)),
        ),
      ),
      "No route rules.",
    ),
  );
}

/** The Key spaces screen: each key space's policy, read only, and the YAML `keymesh keyspaces apply` would take. */
export function createKeySpacesView(ctx: ViewContext): View {
  const notice = createNotice();
  const picker = h("select", { id: "keyspace-pick" });
  const detail = h("section", { "aria-live": "polite" });
  let spaces: KeySpace[] = [];

  const show = async () => {
    const s = spaces.find((x) => x.id === picker.value);
    if (!s) return;
    const yaml = h("pre", { class: "yaml", "aria-label": `YAML of ${s.name}` }, "Loading…");
    fill(detail, h("h2", {}, s.name), policy(s), h("h3", {}, "As a keymesh keyspaces file"), yaml);
    // The YAML renderer is the CLI's, loaded only here so the first screen stays small.
    const { declarationOf, toYaml } = await import("../../src/cli/keyspace-render.js");
    yaml.textContent = toYaml(declarationOf(s));
  };

  const load = (select = "") =>
    ctx.admin.listKeySpaces({ pageSize: 1000 }).then(
      ({ keySpaces }) => {
        spaces = keySpaces;
        fill(
          picker,
          ...spaces.map((s) =>
            h("option", { value: s.id, selected: s.id === select }, `${s.name} (${s.id})`),
          ),
        );
        void show();
      },
      (error) => {
        if (ConnectError.from(error).code === Code.Unauthenticated) return ctx.unauthenticated();
        notice.show(errorText(error), "error");
      },
    );
  void load();

  // New key spaces only: changing one is `keymesh keyspaces apply`, which shows the difference before applying it.
  const createFromFile = async () => {
    const values = await formDialog(
      "Create key spaces from a file",
      [
        {
          name: "file",
          label: "Key space file (YAML)",
          type: "textarea",
          rows: 16,
          required: true,
          hint: "The format of `keymesh keyspaces apply`, such as examples/trustpager.yaml in the repository.",
        },
      ],
      "Create",
    );
    if (values === undefined) return;
    try {
      const { parseKeySpaceFile } = await import("../../src/cli/keyspace-file.js");
      let last = "";
      for (const { request } of parseKeySpaceFile(values.file!, "the file")) {
        last = (await ctx.admin.createKeySpace(request)).keySpace!.id;
        notice.show(`Created key space ${request.name} (${last}).`);
      }
      await load(last);
    } catch (error) {
      notice.show(
        error instanceof Error && !(error instanceof ConnectError) ? error.message : errorText(error),
        "error",
      );
    }
  };
  picker.addEventListener("change", () => void show());

  const el = h(
    "div",
    { class: "screen" },
    h("h1", {}, "Key spaces"),
    h(
      "p",
      { class: "lead" },
      "Policies are read only here: an existing key space is changed with `keymesh keyspaces apply`, which shows " +
        "the difference first. New key spaces can be created from a file of the same format.",
    ),
    h(
      "div",
      { class: "filters" },
      h("label", { for: "keyspace-pick" }, "Key space"),
      picker,
      ctx.can("admin:write")
        ? h("button", { type: "button", onclick: () => void createFromFile() }, "Create from a file")
        : null,
    ),
    notice.el,
    detail,
  );
  return { el };
}
