import { Code, ConnectError } from "@connectrpc/connect";
import { type Approval, ApprovalStatus } from "../../gen/keymesh/v1/types_pb.js";
import { allPages, errorText } from "./api.js";
import { createNotice, fill, formDialog, h, table } from "./dom.js";
import { bodyText, short, when } from "./format.js";
import type { View, ViewContext } from "./view.js";

const REFRESH_MS = 3000;

/** Headers and body of a queued request, folded away until asked for. */
function requestDetails(a: Approval): HTMLElement {
  const headers = Object.entries(a.headers).sort(([x], [y]) => x.localeCompare(y));
  const body = bodyText(a.body);
  return h(
    "details",
    {},
    h("summary", {}, "Request"),
    h(
      "dl",
      { class: "headers" },
      headers.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]),
    ),
    body ? h("pre", { class: "body" }, body) : h("p", {}, "No body captured."),
  );
}

/** The Approvals screen: the pending queue with approve and reject, and the decided and expired history. */
export function createApprovalsView(ctx: ViewContext): View {
  const notice = createNotice();
  const workspaceFilter = h(
    "select",
    { id: "approval-workspace" },
    h("option", { value: "" }, "All workspaces"),
  );
  const pending = h("section", { "aria-labelledby": "pending-title" });
  const history = h("section", { "aria-labelledby": "history-title" });
  const names = new Map<string, string>();
  const wsName = (id: string) => names.get(id) ?? id;
  let shown = "";

  const decide = async (a: Approval, approve: boolean) => {
    try {
      if (approve) {
        await ctx.admin.approveRequest({ id: a.id });
        notice.show(
          `Approved ${a.method} ${a.path}: the client may now retry it once with x-keymesh-approval.`,
        );
      } else {
        const values = await formDialog(
          `Reject ${a.method} ${a.path}`,
          [
            {
              name: "reason",
              label: "Reason",
              type: "textarea",
              required: true,
              hint: "Sent to the key's rejection webhook with the original request.",
            },
          ],
          "Reject",
        );
        if (values === undefined) return;
        await ctx.admin.rejectRequest({ id: a.id, reason: values.reason! });
        notice.show(`Rejected ${a.method} ${a.path}.`);
      }
    } catch (error) {
      notice.show(errorText(error), "error");
    }
    await refresh(true);
    document.getElementById("pending-title")?.focus();
  };

  const pendingRow = (a: Approval) =>
    h(
      "tr",
      { "data-approval": a.id },
      h("td", {}, when(a.createdAt)),
      h("td", {}, h("code", {}, a.keyId)),
      h("td", {}, wsName(a.workspaceId)),
      h("td", {}, h("code", {}, `${a.method} ${a.path}`)),
      h("td", {}, a.requiredScope),
      h("td", {}, when(a.expiresAt)),
      h("td", {}, requestDetails(a)),
      ctx.can("admin:write")
        ? h(
            "td",
            { class: "row-actions" },
            h("button", { type: "button", class: "primary", onclick: () => decide(a, true) }, "Approve"),
            h("button", { type: "button", class: "danger", onclick: () => decide(a, false) }, "Reject"),
          )
        : null,
    );

  const historyRow = (a: Approval) =>
    h(
      "tr",
      { "data-approval": a.id },
      h("td", {}, when(a.createdAt)),
      h(
        "td",
        {},
        h("span", { class: `status ${short(ApprovalStatus, a.status)}` }, short(ApprovalStatus, a.status)),
      ),
      h("td", {}, h("code", {}, a.keyId)),
      h("td", {}, wsName(a.workspaceId)),
      h("td", {}, h("code", {}, `${a.method} ${a.path}`)),
      h("td", {}, when(a.decidedAt)),
      h("td", {}, a.reason),
    );

  async function refresh(force = false): Promise<void> {
    try {
      const workspaceId = workspaceFilter.value;
      const all = await allPages(async (pageToken) => {
        const page = await ctx.admin.listApprovals({ workspaceId, pageSize: 500, pageToken });
        return { items: page.approvals, next: page.nextPageToken };
      });
      const state = JSON.stringify(all.map((a) => [a.id, a.status]));
      if (state === shown && !force) return;
      shown = state;
      const queue = all.filter((a) => a.status === ApprovalStatus.PENDING);
      const done = all.filter((a) => a.status !== ApprovalStatus.PENDING).reverse();
      const pendingHeaders = ["Requested", "Key", "Workspace", "Request", "Needs", "Expires", "Details"];
      if (ctx.can("admin:write")) pendingHeaders.push("Decision");
      fill(
        pending,
        h("h2", { id: "pending-title", tabindex: "-1" }, `Pending (${queue.length})`),
        table(
          "Pending approvals",
          pendingHeaders,
          queue.map(pendingRow),
          "Nothing is waiting for a decision.",
        ),
      );
      fill(
        history,
        h("h2", { id: "history-title" }, "Decided and expired"),
        table(
          "Decided and expired approvals",
          ["Requested", "Status", "Key", "Workspace", "Request", "Decided", "Reason"],
          done.slice(0, 100).map(historyRow),
          "No decided or expired approvals yet.",
        ),
      );
    } catch (error) {
      if (ConnectError.from(error).code === Code.Unauthenticated) return ctx.unauthenticated();
      notice.show(errorText(error), "error");
    }
  }

  void ctx.admin.listWorkspaces({ pageSize: 1000 }).then(
    ({ workspaces }) => {
      for (const w of workspaces) {
        names.set(w.id, w.name);
        workspaceFilter.append(h("option", { value: w.id }, w.name));
      }
      void refresh(true);
    },
    (error) => notice.show(errorText(error), "error"),
  );
  workspaceFilter.addEventListener("change", () => void refresh(true));
  // Not while a dialog is open: redrawing would remove the button that focus returns to.
  const timer = setInterval(() => document.querySelector("dialog[open]") || void refresh(), REFRESH_MS);
  void refresh(true);

  const el = h(
    "div",
    { class: "screen" },
    h("h1", {}, "Approvals"),
    h(
      "p",
      { class: "lead" },
      "Requests that a key with an approval-level scope made, queued for a person. The list refreshes every few seconds.",
    ),
    h("div", { class: "filters" }, h("label", { for: "approval-workspace" }, "Workspace"), workspaceFilter),
    notice.el,
    pending,
    history,
  );
  return { el, stop: () => clearInterval(timer) };
}
