import { Code, ConnectError } from "@connectrpc/connect";
import { type Key, type KeySpace, KeyStatus, type Workspace } from "../../gen/keymesh/v1/types_pb.js";
import { errorText } from "./api.js";
import { createNotice, fill, h, table } from "./dom.js";
import { short, when } from "./format.js";
import { changeKeyStatus, createKey, editKey, type Outcome, rotateKey } from "./key-actions.js";
import type { View, ViewContext } from "./view.js";

const PAGE = 50;

function select(id: string, all: string, options: readonly (readonly [string, string])[]) {
  return h(
    "select",
    { id },
    h("option", { value: "" }, all),
    options.map(([value, label]) => h("option", { value }, label)),
  );
}

/** The Keys screen: list, filter and search keys; create, edit, rotate, revoke, reactivate and delete them. */
export function createKeysView(ctx: ViewContext): View {
  const notice = createNotice();
  const list = h("div", { class: "list" });
  const pager = h("div", { class: "pager" });
  const search = h("input", { id: "key-search", type: "search", placeholder: "name, id, scope…" });
  const statusFilter = select("key-status", "Any status", [
    [String(KeyStatus.ACTIVE), "active"],
    [String(KeyStatus.REVOKED), "revoked"],
    [String(KeyStatus.EXPIRED), "expired"],
  ]);
  let workspaceFilter = select("key-workspace", "All workspaces", []);
  let spaceFilter = select("key-space", "All key spaces", []);
  const filters = h("div", { class: "filters" });
  let spaces: KeySpace[] = [];
  let workspaces: Workspace[] = [];
  let keys: Key[] = [];
  const tokens: string[] = [""];

  const act = async (run: () => Promise<Outcome>) => {
    try {
      const outcome = await run();
      if (outcome === undefined) return;
      notice.show(outcome);
      await load(tokens.length - 1);
    } catch (error) {
      notice.show(
        error instanceof ConnectError || !(error instanceof Error) ? errorText(error) : error.message,
        "error",
      );
    }
  };

  const row = (k: Key) => {
    const status = short(KeyStatus, k.status);
    const write = ctx.can("admin:write");
    return h(
      "tr",
      { "data-key": k.id },
      h("td", {}, k.name, h("br"), h("code", { class: "muted" }, k.id)),
      h("td", {}, h("code", {}, k.display)),
      h("td", {}, h("span", { class: `status ${status}` }, status)),
      h("td", {}, k.scopes.join(" ")),
      h("td", {}, workspaces.find((w) => w.id === k.workspaceId)?.name ?? k.workspaceId),
      h("td", {}, when(k.createdAt)),
      h("td", {}, when(k.lastUsedAt) || "never"),
      h("td", {}, when(k.expiresAt) || "—"),
      write
        ? h(
            "td",
            { class: "row-actions" },
            h("button", { type: "button", onclick: () => act(() => editKey(ctx.admin, k)) }, "Edit"),
            k.status === KeyStatus.ACTIVE
              ? [
                  h(
                    "button",
                    { type: "button", onclick: () => act(() => rotateKey(ctx.admin, k)) },
                    "Rotate",
                  ),
                  h(
                    "button",
                    {
                      type: "button",
                      class: "danger",
                      onclick: () => act(() => changeKeyStatus(ctx.admin, k, "revoke")),
                    },
                    "Revoke",
                  ),
                ]
              : h(
                  "button",
                  { type: "button", onclick: () => act(() => changeKeyStatus(ctx.admin, k, "activate")) },
                  "Reactivate",
                ),
            h(
              "button",
              {
                type: "button",
                class: "danger",
                onclick: () => act(() => changeKeyStatus(ctx.admin, k, "delete")),
              },
              "Delete",
            ),
          )
        : null,
    );
  };

  const render = () => {
    const needle = search.value.trim().toLowerCase();
    const shown = keys.filter((k) =>
      [k.name, k.id, k.display, ...k.scopes].some((text) => text.toLowerCase().includes(needle)),
    );
    const headers = ["Name", "Key", "Status", "Scopes", "Workspace", "Created", "Last used", "Expires"];
    if (ctx.can("admin:write")) headers.push("Actions");
    fill(list, table("Keys", headers, shown.map(row), "No keys match."));
  };

  async function load(page: number): Promise<void> {
    try {
      const answer = await ctx.admin.listKeys({
        workspaceId: workspaceFilter.value,
        keySpaceId: spaceFilter.value,
        status: Number(statusFilter.value) as KeyStatus,
        pageSize: PAGE,
        pageToken: tokens[page]!,
      });
      tokens.length = page + 1;
      if (answer.nextPageToken) tokens.push(answer.nextPageToken);
      keys = answer.keys;
      render();
      fill(
        pager,
        h("span", {}, `Page ${page + 1}`),
        page > 0 ? h("button", { type: "button", onclick: () => load(page - 1) }, "Previous page") : null,
        answer.nextPageToken
          ? h("button", { type: "button", onclick: () => load(page + 1) }, "Next page")
          : null,
      );
    } catch (error) {
      if (ConnectError.from(error).code === Code.Unauthenticated) return ctx.unauthenticated();
      notice.show(errorText(error), "error");
    }
  }

  const create = h(
    "button",
    {
      type: "button",
      class: "primary",
      onclick: () =>
        act(() =>
          createKey(ctx.admin, spaces, workspaces, {
            keySpaceId: spaceFilter.value,
            workspaceId: workspaceFilter.value,
          }),
        ),
    },
    "Create key",
  );

  void Promise.all([
    ctx.admin.listKeySpaces({ pageSize: 1000 }),
    ctx.admin.listWorkspaces({ pageSize: 1000 }),
  ]).then(
    ([s, w]) => {
      // Root keys belong to the system key space; the console manages customer keys.
      spaces = s.keySpaces.filter((space) => space.id !== "ks_keymesh_root");
      workspaces = w.workspaces;
      workspaceFilter = select(
        "key-workspace",
        "All workspaces",
        workspaces.map((x) => [x.id, x.name]),
      );
      spaceFilter = select(
        "key-space",
        "All key spaces",
        spaces.map((x) => [x.id, x.name]),
      );
      const reload = () => {
        tokens.length = 1;
        void load(0);
      };
      for (const filter of [workspaceFilter, spaceFilter, statusFilter])
        filter.addEventListener("change", reload);
      fill(
        filters,
        h("label", { for: "key-workspace" }, "Workspace"),
        workspaceFilter,
        h("label", { for: "key-space" }, "Key space"),
        spaceFilter,
        h("label", { for: "key-status" }, "Status"),
        statusFilter,
        h("label", { for: "key-search" }, "Search this page"),
        search,
        ctx.can("admin:write") ? create : null,
      );
      void load(0);
    },
    (error) => notice.show(errorText(error), "error"),
  );
  search.addEventListener("input", render);

  const el = h("div", { class: "screen" }, h("h1", {}, "Keys"), filters, notice.el, list, pager);
  return { el };
}
