/**
 * The keymesh web console: sign in with a root key, then the Approvals, Keys, Workspaces, Key spaces and Audit
 * screens. Every action is a KeyAdmin call made with the signed-in key, so the console can do nothing the key cannot.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { adminClient, errorText, holds, type Level, probeLevel } from "./api.js";
import { createApprovalsView } from "./approvals-view.js";
import { createAuditView } from "./audit-view.js";
import { h } from "./dom.js";
import { createKeysView } from "./keys-view.js";
import { createKeySpacesView } from "./keyspaces-view.js";
import { clearKey, readKey, storeKey } from "./session.js";
import type { View, ViewContext } from "./view.js";
import { createWorkspacesView } from "./workspaces-view.js";

const SCREENS: readonly (readonly [id: string, label: string, create: (ctx: ViewContext) => View])[] = [
  ["approvals", "Approvals", createApprovalsView],
  ["keys", "Keys", createKeysView],
  ["workspaces", "Workspaces", createWorkspacesView],
  ["keyspaces", "Key spaces", createKeySpacesView],
  ["audit", "Audit log", createAuditView],
];

const root = document.getElementById("app")!;
let current: View | undefined;

function mount(...children: Node[]): void {
  current?.stop?.();
  current = undefined;
  root.replaceChildren(...children);
}

function signInScreen(message = ""): void {
  const error = h("p", { class: "notice error", role: "alert" }, message);
  const input = h("input", {
    id: "root-key",
    name: "root-key",
    type: "password",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "root-key-hint",
  });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "sign-in form", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "keymesh console"),
    h("div", { class: "field" }, h("label", { for: "root-key" }, "Root key"), input),
    h(
      "small",
      { id: "root-key-hint" },
      "A key of the system key space (km_root_…), as printed on first start or made with KeyAdmin's CreateRootKey. " +
        "It is kept in this tab's session storage only and cleared when you sign out or close the tab.",
    ),
    h("div", { class: "actions" }, button),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    error.textContent = "";
    const key = input.value.trim();
    try {
      const level = await probeLevel(adminClient(key));
      storeKey(key);
      shell(key, level);
    } catch (e) {
      const denied = ConnectError.from(e).code === Code.Unauthenticated;
      error.textContent = denied ? "That key is not a valid root key." : errorText(e);
      button.disabled = false;
      input.focus();
    }
  });
  mount(h("main", { class: "centered" }, form));
  input.focus();
}

function signOut(): void {
  window.onhashchange = null;
  clearKey();
  location.hash = "";
  signInScreen();
}

function shell(key: string, level: Level): void {
  const admin = adminClient(key);
  const ctx: ViewContext = { admin, level, can: (need) => holds(level, need), unauthenticated: signOut };
  const main = h("main", { id: "main", tabindex: "-1" });
  const links = SCREENS.map(([id, label]) => h("a", { href: `#${id}`, "data-screen": id }, label));
  const show = () => {
    const id = location.hash.slice(1) || "approvals";
    const screen = SCREENS.find(([s]) => s === id) ?? SCREENS[0]!;
    current?.stop?.();
    for (const link of links) {
      if (link.dataset.screen === screen[0]) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    current = screen[2](ctx);
    main.replaceChildren(current.el);
    document.title = `${screen[1]} · keymesh console`;
  };
  const header = h(
    "header",
    { class: "top" },
    h(
      "a",
      {
        class: "skip",
        href: "#main",
        onclick: (e) => {
          e.preventDefault();
          main.focus();
        },
      },
      "Skip to content",
    ),
    h("strong", { class: "brand" }, "keymesh"),
    h("nav", { "aria-label": "Screens" }, links),
    h("span", { class: "level", title: "The signed-in key's admin scope" }, level),
    h("button", { type: "button", onclick: signOut }, "Sign out"),
  );
  mount(header, main);
  window.onhashchange = show;
  show();
}

async function start(): Promise<void> {
  const key = readKey();
  if (key === undefined) return signInScreen();
  try {
    shell(key, await probeLevel(adminClient(key)));
  } catch (e) {
    clearKey();
    signInScreen(
      ConnectError.from(e).code === Code.Unauthenticated
        ? "The stored key is no longer valid."
        : errorText(e),
    );
  }
}

void start();
