/**
 * A tiny element builder. Text is always set as text, never parsed as HTML, so a key name, header or request body
 * shown in the console cannot inject markup or script.
 */
export type Child = Node | string | null | undefined | false | readonly Child[];
type Props = Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, "");
    else if (value !== false && value !== null && value !== undefined) el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el: Element, children: readonly Child[]): void {
  for (const child of children) {
    if (Array.isArray(child)) append(el, child);
    else if (typeof child === "string") el.append(document.createTextNode(child));
    else if (child instanceof Node) el.append(child);
  }
}

let ids = 0;
/** A fresh element id, for pairing labels with inputs. */
export const uid = (prefix: string) => `${prefix}-${++ids}`;

/** A labelled table; `empty` is shown as one row when there is nothing to list. */
export function table(caption: string, headers: string[], rows: HTMLTableRowElement[], empty: string) {
  const body = rows.length > 0 ? rows : [h("tr", {}, h("td", { colspan: headers.length }, empty))];
  return h(
    "table",
    {},
    h("caption", { class: "visually-hidden" }, caption),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        headers.map((x) => h("th", { scope: "col" }, x)),
      ),
    ),
    h("tbody", {}, body),
  );
}

/** A status line read out by screen readers; errors are shown in the alert style. */
export function createNotice(): { el: HTMLElement; show(message: string, kind?: "info" | "error"): void } {
  const el = h("p", { class: "notice", role: "status", "aria-live": "polite" });
  return {
    el,
    show(message, kind = "info") {
      el.textContent = message;
      el.className = `notice ${kind}`;
    },
  };
}

/**
 * Shows `content` in a modal dialog and resolves with what `settle` is called with. The dialog traps focus while
 * open (native <dialog>), Escape cancels, and focus returns to the element that opened it.
 */
export function modal<T>(
  title: string,
  build: (settle: (value: T | undefined) => void) => Child[],
  className = "",
): Promise<T | undefined> {
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const heading = uid("dialog-title");
  return new Promise((resolve) => {
    const dialog = h("dialog", { "aria-labelledby": heading, class: className });
    let done = false;
    const settle = (value: T | undefined) => {
      if (done) return;
      done = true;
      dialog.close();
      dialog.remove();
      opener?.focus();
      resolve(value);
    };
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      settle(undefined);
    });
    append(dialog, [h("h2", { id: heading }, title), ...build(settle)]);
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Asks to confirm a consequential action; resolves true only when the person confirms. */
export async function confirmDialog(title: string, message: string, action: string): Promise<boolean> {
  const answer = await modal<boolean>(title, (settle) => [
    h("p", {}, message),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => settle(false) }, "Cancel"),
      h("button", { type: "button", class: "danger", onclick: () => settle(true) }, action),
    ),
  ]);
  return answer === true;
}

/** One field of a form dialog. */
export interface Field {
  name: string;
  label: string;
  type?: "text" | "textarea" | "number" | "checkbox" | "select" | "datetime-local" | "url";
  value?: string;
  required?: boolean;
  hint?: string;
  options?: readonly (readonly [value: string, label: string])[];
  /** Text rows of a textarea. */
  rows?: number;
}

function fieldInput(field: Field, id: string, hintId: string | undefined): HTMLElement {
  const common = { id, name: field.name, required: field.required, "aria-describedby": hintId };
  if (field.type === "textarea")
    return h("textarea", { ...common, rows: field.rows ?? 3 }, field.value ?? "");
  if (field.type === "select") {
    return h(
      "select",
      common,
      (field.options ?? []).map(([value, label]) =>
        h("option", { value, selected: value === (field.value ?? "") }, label),
      ),
    );
  }
  if (field.type === "checkbox")
    return h("input", { ...common, type: "checkbox", checked: field.value === "true" });
  return h("input", { ...common, type: field.type ?? "text", value: field.value ?? "", autocomplete: "off" });
}

/** A form in a dialog; resolves with the values by field name (checkboxes as "true"/"false"), or undefined. */
export function formDialog(
  title: string,
  fields: Field[],
  submit: string,
): Promise<Record<string, string> | undefined> {
  return modal<Record<string, string>>(title, (settle) => {
    const form = h("form", { method: "dialog", class: "form" });
    for (const field of fields) {
      const id = uid("field");
      const hintId = field.hint ? uid("hint") : undefined;
      const label = h("label", { for: id }, field.label, field.required ? " (required)" : "");
      const input = fieldInput(field, id, hintId);
      const hint = field.hint ? h("small", { id: hintId }, field.hint) : null;
      form.append(
        h("div", { class: field.type === "checkbox" ? "field check" : "field" }, label, input, hint),
      );
    }
    form.append(
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", onclick: () => settle(undefined) }, "Cancel"),
        h("button", { type: "submit", class: "primary" }, submit),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const values: Record<string, string> = {};
      for (const field of fields) {
        const input = form.elements.namedItem(field.name) as HTMLInputElement;
        values[field.name] = field.type === "checkbox" ? String(input.checked) : input.value.trim();
      }
      settle(values);
    });
    return [form];
  });
}

/** Shows a new secret once, with a copy button; it is gone from the page when the dialog closes. */
export function secretDialog(title: string, secret: string): Promise<unknown> {
  return modal<true>(
    title,
    (settle) => {
      const value = h("code", { class: "secret", "data-secret": "" }, secret);
      const status = h("span", { role: "status" });
      const copy = async () => {
        try {
          await navigator.clipboard.writeText(secret);
          status.textContent = "Copied.";
        } catch {
          status.textContent = "Copying was refused; select the key and copy it by hand.";
        }
      };
      return [
        h(
          "p",
          { class: "warning" },
          "This is the only time the secret is shown. keymesh stores only a digest of it: copy it now and keep it " +
            "somewhere safe. Closing this dialog removes it from the page.",
        ),
        value,
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", onclick: copy }, "Copy"),
          status,
          h("button", { type: "button", class: "primary", onclick: () => settle(true) }, "I have stored it"),
        ),
      ];
    },
    "secret-dialog",
  );
}

/** Replaces an element's children, skipping empty ones as `h` does. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}
