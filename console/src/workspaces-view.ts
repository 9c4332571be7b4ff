import { Code, ConnectError } from "@connectrpc/connect";
import { type Member, MemberStatus, type Workspace, WorkspaceStatus } from "../../gen/keymesh/v1/types_pb.js";
import { errorText } from "./api.js";
import { confirmDialog, createNotice, fill, formDialog, h, table } from "./dom.js";
import { limitsText, short, when } from "./format.js";
import type { View, ViewContext } from "./view.js";

/** The Workspaces screen: workspaces with their plan and API access, and each one's members. */
export function createWorkspacesView(ctx: ViewContext): View {
  const notice = createNotice();
  const list = h("div", { class: "list" });
  const members = h("section", { "aria-live": "polite" });
  const write = ctx.can("admin:write");

  const act = async (run: () => Promise<string | undefined>, after: () => Promise<void>) => {
    try {
      const outcome = await run();
      if (outcome === undefined) return;
      notice.show(outcome);
      await after();
    } catch (error) {
      notice.show(errorText(error), "error");
    }
  };

  const editWorkspace = async (w: Workspace) => {
    const values = await formDialog(
      `Plan and access of ${w.name}`,
      [
        { name: "plan", label: "Plan", value: w.plan },
        {
          name: "apiAccess",
          label: "API access (keys of a workspace without it are refused with 403)",
          type: "checkbox",
          value: String(w.apiAccess),
        },
        {
          name: "status",
          label: "Status",
          type: "select",
          value: String(w.status),
          options: [
            [String(WorkspaceStatus.ACTIVE), "active"],
            [String(WorkspaceStatus.DISABLED), "disabled (every key of it is refused)"],
          ],
        },
      ],
      "Save",
    );
    if (values === undefined) return undefined;
    await ctx.admin.updateWorkspace({
      id: w.id,
      plan: values.plan!,
      apiAccess: values.apiAccess === "true",
      status: Number(values.status) as WorkspaceStatus,
    });
    return `Saved workspace ${w.name}.`;
  };

  const createWorkspace = async () => {
    const values = await formDialog(
      "Create a workspace",
      [
        { name: "name", label: "Name", required: true },
        { name: "plan", label: "Plan" },
        { name: "apiAccess", label: "API access", type: "checkbox", value: "true" },
      ],
      "Create workspace",
    );
    if (values === undefined) return undefined;
    const { workspace } = await ctx.admin.createWorkspace({
      name: values.name!,
      plan: values.plan!,
      apiAccess: values.apiAccess === "true",
    });
    return `Created workspace ${workspace!.name} (${workspace!.id}).`;
  };

  const memberRow = (w: Workspace, m: Member) => {
    const closed = m.status === MemberStatus.CLOSED;
    const toggle = async () => {
      const verb = closed ? "Reopen" : "Close";
      const consequence = closed ? "Their user keys work again." : "Their user keys stop working.";
      if (!(await confirmDialog(`${verb} ${m.name}'s account?`, consequence, verb))) return undefined;
      await ctx.admin.updateMember({ id: m.id, status: closed ? MemberStatus.ACTIVE : MemberStatus.CLOSED });
      return `${closed ? "Reopened" : "Closed"} ${m.name}'s account.`;
    };
    return h(
      "tr",
      {},
      h("td", {}, m.name, h("br"), h("code", { class: "muted" }, m.id)),
      h("td", {}, m.role, m.id === w.ownerMemberId ? " (account owner)" : ""),
      h(
        "td",
        {},
        h("span", { class: `status ${short(MemberStatus, m.status)}` }, short(MemberStatus, m.status)),
      ),
      h("td", {}, when(m.createdAt)),
      write
        ? h(
            "td",
            {},
            h(
              "button",
              { type: "button", onclick: () => act(toggle, () => showMembers(w)) },
              closed ? "Reopen" : "Close",
            ),
          )
        : null,
    );
  };

  async function showMembers(w: Workspace): Promise<void> {
    try {
      const answer = await ctx.admin.listMembers({ workspaceId: w.id });
      const add = async () => {
        const values = await formDialog(
          `Add a member to ${w.name}`,
          [
            { name: "name", label: "Name", required: true },
            { name: "role", label: "Role", required: true, value: "member" },
            { name: "owner", label: "Account owner", type: "checkbox" },
          ],
          "Add member",
        );
        if (values === undefined) return undefined;
        await ctx.admin.addMember({
          workspaceId: w.id,
          name: values.name!,
          role: values.role!,
          accountOwner: values.owner === "true",
        });
        return `Added ${values.name} to ${w.name}.`;
      };
      const headers = ["Member", "Role", "Status", "Added"];
      if (write) headers.push("Account");
      fill(
        members,
        h("h2", { id: "members-title", tabindex: "-1" }, `Members of ${w.name}`),
        write
          ? h("button", { type: "button", onclick: () => act(add, () => showMembers(w)) }, "Add member")
          : null,
        table(
          `Members of ${w.name}`,
          headers,
          answer.members.map((m) => memberRow(w, m)),
          "No members yet.",
        ),
      );
      document.getElementById("members-title")?.focus();
    } catch (error) {
      notice.show(errorText(error), "error");
    }
  }

  const row = (w: Workspace) =>
    h(
      "tr",
      { "data-workspace": w.id },
      h("td", {}, w.name, h("br"), h("code", { class: "muted" }, w.id)),
      h(
        "td",
        {},
        h("span", { class: `status ${short(WorkspaceStatus, w.status)}` }, short(WorkspaceStatus, w.status)),
      ),
      h("td", {}, w.plan || "—"),
      h("td", {}, w.apiAccess ? "yes" : "no"),
      h("td", {}, w.keyLimits ? limitsText(w.keyLimits.limits) : "key space defaults"),
      h("td", {}, when(w.createdAt)),
      h(
        "td",
        { class: "row-actions" },
        h("button", { type: "button", onclick: () => showMembers(w) }, "Members"),
        write
          ? h(
              "button",
              { type: "button", onclick: () => act(() => editWorkspace(w), load) },
              "Plan and access",
            )
          : null,
      ),
    );

  async function load(): Promise<void> {
    try {
      const { workspaces } = await ctx.admin.listWorkspaces({ pageSize: 1000 });
      fill(
        list,
        table(
          "Workspaces",
          ["Workspace", "Status", "Plan", "API access", "Key limits", "Created", "Actions"],
          workspaces.map(row),
          "No workspaces yet.",
        ),
      );
    } catch (error) {
      if (ConnectError.from(error).code === Code.Unauthenticated) return ctx.unauthenticated();
      notice.show(errorText(error), "error");
    }
  }
  void load();

  const el = h(
    "div",
    { class: "screen" },
    h("h1", {}, "Workspaces"),
    write
      ? h(
          "div",
          { class: "filters" },
          h(
            "button",
            { type: "button", class: "primary", onclick: () => act(createWorkspace, load) },
            "Create workspace",
          ),
        )
      : null,
    notice.el,
    list,
    members,
  );
  return { el };
}
