import type { JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { AuditEvent } from "../../gen/keymesh/v1/types_pb.js";
import { errorText } from "./api.js";
import { createNotice, fill, h, table } from "./dom.js";
import { when } from "./format.js";
import type { View, ViewContext } from "./view.js";

const PAGE = 100;

/** The workspace an event concerns: the target itself, or the workspace recorded in its before or after state. */
function workspaceOf(e: AuditEvent): string {
  if (e.targetType === "workspace") return e.targetId;
  const state = (e.after ?? e.before) as { workspaceId?: JsonValue } | undefined;
  return typeof state?.workspaceId === "string" ? state.workspaceId : "";
}

function change(e: AuditEvent): HTMLElement | string {
  if (!e.before && !e.after) return "";
  return h(
    "details",
    {},
    h("summary", {}, "Change"),
    e.before ? [h("h4", {}, "Before"), h("pre", {}, JSON.stringify(e.before, null, 2))] : null,
    e.after ? [h("h4", {}, "After"), h("pre", {}, JSON.stringify(e.after, null, 2))] : null,
  );
}

/**
 * The Audit log screen, newest first. KeyAdmin filters by target on the server; the workspace and actor filters
 * narrow the events loaded so far, and "Load older events" fetches the next page.
 */
export function createAuditView(ctx: ViewContext): View {
  const notice = createNotice();
  const target = h("input", { id: "audit-target", type: "search", placeholder: "key or workspace id" });
  const workspace = h("input", { id: "audit-workspace", type: "search", placeholder: "ws_…" });
  const actor = h("input", { id: "audit-actor", type: "search", placeholder: "root key id" });
  const list = h("div", { class: "list" });
  const more = h("div", { class: "pager" });
  let events: AuditEvent[] = [];
  let next = "";

  const render = () => {
    const ws = workspace.value.trim();
    const who = actor.value.trim();
    const shown = events.filter((e) => (!ws || workspaceOf(e) === ws) && (!who || e.actor.includes(who)));
    fill(
      list,
      table(
        "Audit events",
        ["When", "Actor", "Action", "Target", "Change"],
        shown.map((e) =>
          h(
            "tr",
            {},
            h("td", {}, when(e.at)),
            h("td", {}, h("code", {}, e.actor)),
            h("td", {}, e.action),
            h("td", {}, `${e.targetType} `, h("code", {}, e.targetId)),
            h("td", {}, change(e)),
          ),
        ),
        "No events match.",
      ),
    );
    fill(
      more,
      h("span", {}, `${shown.length} of ${events.length} loaded events shown`),
      next ? h("button", { type: "button", onclick: () => load(false) }, "Load older events") : null,
    );
  };

  async function load(fresh: boolean): Promise<void> {
    try {
      const answer = await ctx.admin.listAuditEvents({
        targetId: target.value.trim(),
        pageSize: PAGE,
        pageToken: fresh ? "" : next,
      });
      events = fresh ? answer.events : [...events, ...answer.events];
      next = answer.nextPageToken;
      render();
    } catch (error) {
      if (ConnectError.from(error).code === Code.Unauthenticated) return ctx.unauthenticated();
      notice.show(errorText(error), "error");
    }
  }

  target.addEventListener("change", () => void load(true));
  workspace.addEventListener("input", render);
  actor.addEventListener("input", render);
  void load(true);

  const el = h(
    "div",
    { class: "screen" },
    h("h1", {}, "Audit log"),
    h(
      "div",
      { class: "filters" },
      h("label", { for: "audit-target" }, "Target"),
      target,
      h("label", { for: "audit-workspace" }, "Workspace"),
      workspace,
      h("label", { for: "audit-actor" }, "Actor"),
      actor,
    ),
    notice.el,
    list,
    more,
  );
  return { el };
}
