// Components every page uses: loading, error and empty states, buttons, forms,
// tables, badges, confirmations, toasts and shown-once secrets.

import { ApiError } from "./api.js";
import { h, mount, slot, uid } from "./dom.js";

// --- states -----------------------------------------------------------------------

export function loading(label = "Loading…") {
  return h(
    "div",
    { class: "state loading", role: "status" },
    h("span", { class: "spinner", "aria-hidden": "true" }),
    h("span", {}, label),
  );
}

/** Say what went wrong and, when it helps, what to do about it. */
export function describeError(error) {
  if (error instanceof Problem) return { title: error.title, message: error.message };
  if (!(error instanceof ApiError)) {
    return { title: "Something went wrong in this page", message: String(error && error.message) };
  }
  const titles = {
    0: "The server did not answer",
    400: "The request was not understood",
    401: "You are not signed in",
    403: "Not allowed",
    404: "Not found",
    409: "That cannot be done now",
    422: "Some values need fixing",
    429: "Too many requests",
    503: "Not available right now",
  };
  const title = titles[error.status] || `The server answered ${error.status}`;
  let message = error.message;
  if (error.status === 403 && error.code === "permission_denied") {
    message = `${error.message}. Ask a team owner or admin for access.`;
  }
  if (error.status === 404) {
    message = `${error.message}: it may have been deleted, or it belongs to a team you are not in.`;
  }
  if (error.status >= 500 && error.requestId) {
    message = `${error.message} (request id ${error.requestId})`;
  }
  return { title, message };
}

/** An expected failure with words for the user (not a bug in the page). */
export class Problem extends Error {
  constructor(title, message) {
    super(message);
    this.name = "Problem";
    this.title = title;
  }
}

export function reportBug(error) {
  if (error instanceof ApiError || error instanceof Problem) return;
  if (!(error && error.name === "AbortError")) {
    // A programming error, not an answer from the API: make it visible to developers.
    console.error(error);
  }
}

export function errorState(error, { retry } = {}) {
  reportBug(error);
  const { title, message } = describeError(error);
  const fields = error instanceof ApiError ? error.details.fields || [] : [];
  return h(
    "div",
    { class: "state error", role: "alert" },
    h("p", { class: "state-title" }, title),
    h("p", {}, message),
    fields.length
      ? h(
          "ul",
          {},
          fields.map((f) => h("li", {}, f.field ? `${f.field}: ${f.message}` : f.message)),
        )
      : null,
    retry ? button("Try again", retry, { variant: "secondary" }) : null,
  );
}

/** An empty list: say so, and say what to do next. */
export function emptyState(title, hint, ...actions) {
  return h(
    "div",
    { class: "state empty" },
    h("p", { class: "state-title" }, title),
    hint ? h("p", {}, hint) : null,
    actions.length ? h("div", { class: "actions" }, actions) : null,
  );
}

/**
 * Load into a slot: a loading state, then render(data), or an error with a retry.
 * quiet keeps the old content while reloading (after an action); poll also leaves
 * it alone while focus is inside it (a periodic refresh never pulls the control
 * someone is using out from under them).
 */
export async function fill(target, loader, render, { quiet = false, poll = false } = {}) {
  if (!quiet && !poll) {
    mount(target, loading());
    target.setAttribute("aria-busy", "true");
  }
  try {
    const data = await loader();
    const hadFocus = target.contains(document.activeElement);
    if (poll && hadFocus) return data;
    mount(target, render(data));
    if (hadFocus && !target.contains(document.activeElement)) {
      // The focused control was replaced: keep keyboard users in this panel.
      target.setAttribute("tabindex", "-1");
      target.focus({ preventScroll: true });
    }
    return data;
  } catch (error) {
    if (error && error.name === "AbortError") return undefined;
    mount(target, errorState(error, { retry: () => fill(target, loader, render) }));
    return undefined;
  }
}

// --- controls ---------------------------------------------------------------------

export function button(label, onClick, { variant = "primary", type = "button", small = false, ...rest } = {}) {
  const el = h("button", { type, class: ["button", variant, small ? "small" : ""], ...rest }, label);
  if (onClick) {
    el.addEventListener("click", async (event) => {
      if (el.getAttribute("aria-disabled") === "true") return;
      el.setAttribute("aria-disabled", "true");
      el.disabled = true;
      try {
        await onClick(event);
      } catch (error) {
        toast(describeError(error).message, "error");
        reportBug(error);
      } finally {
        el.disabled = false;
        el.removeAttribute("aria-disabled");
      }
    });
  }
  return el;
}

export function link(label, href, props = {}) {
  return h("a", { href, ...props }, label);
}

export function externalLink(label, href) {
  return h("a", { href, target: "_blank", rel: "noopener noreferrer" }, label);
}

const STATUS_TONE = {
  running: "ok",
  succeeded: "ok",
  healthy: "ok",
  active: "ok",
  ok: "ok",
  valid: "ok",
  verified: "ok",
  issued: "ok",
  queued: "info",
  building: "info",
  deploying: "info",
  starting: "info",
  pending: "info",
  stopping: "warn",
  warn: "warn",
  unset: "neutral",
  stopped: "neutral",
  cancelled: "neutral",
  debug: "neutral",
  info: "info",
  failed: "bad",
  crash_loop: "bad",
  error: "bad",
  fatal: "bad",
  unhealthy: "bad",
  invalid: "bad",
};

export function badge(status, label = status) {
  const tone = STATUS_TONE[String(status).toLowerCase()] || "neutral";
  return h("span", { class: ["badge", `tone-${tone}`], dataset: { status } }, label ?? "—");
}

// --- forms ------------------------------------------------------------------------

/**
 * One labelled control. kind: input types, "select", "textarea" or "checkbox".
 * options for selects: [{value, label, disabled}].
 */
export function field({
  label,
  name,
  kind = "text",
  value,
  hint,
  options = [],
  required = false,
  ...attrs
}) {
  const id = uid(`f-${name}`);
  const hintId = hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  const describedBy = [hintId, errorId].filter(Boolean).join(" ");
  let control;
  if (kind === "select") {
    control = h(
      "select",
      { id, name, required, "aria-describedby": describedBy, ...attrs },
      options.map((o) =>
        h(
          "option",
          { value: o.value, disabled: o.disabled, selected: String(o.value) === String(value) },
          o.label,
        ),
      ),
    );
  } else if (kind === "textarea") {
    control = h("textarea", { id, name, required, "aria-describedby": describedBy, ...attrs });
    if (value !== undefined && value !== null) control.defaultValue = String(value);
  } else if (kind === "checkbox") {
    control = h("input", {
      id,
      name,
      type: "checkbox",
      checked: Boolean(value),
      "aria-describedby": describedBy,
      ...attrs,
    });
    return h(
      "div",
      { class: "field checkbox" },
      control,
      h("label", { for: id }, label),
      hint ? h("p", { class: "hint", id: hintId }, hint) : null,
      h("p", { class: "field-error", id: errorId, hidden: true }),
    );
  } else {
    control = h("input", {
      id,
      name,
      type: kind,
      required,
      "aria-describedby": describedBy,
      ...attrs,
    });
    if (value !== undefined && value !== null) control.defaultValue = String(value);
  }
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label, required ? h("span", { class: "required", "aria-hidden": "true" }, " (required)") : null),
    control,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    h("p", { class: "field-error", id: errorId, hidden: true }),
  );
}

function formValues(form) {
  const values = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === "checkbox") values[el.name] = el.checked;
    else values[el.name] = el.value;
  }
  return values;
}

function showFieldErrors(form, errors) {
  for (const el of form.querySelectorAll(".field-error")) {
    el.hidden = true;
    el.textContent = "";
  }
  for (const control of form.elements) control.removeAttribute?.("aria-invalid");
  let first = null;
  for (const [name, message] of Object.entries(errors)) {
    const control = form.elements.namedItem(name);
    if (!control || !control.closest) continue;
    const box = control.closest(".field")?.querySelector(".field-error");
    if (!box) continue;
    box.textContent = message;
    box.hidden = false;
    control.setAttribute("aria-invalid", "true");
    first = first || control;
  }
  return first;
}

/**
 * A form that calls onSubmit(values) and shows errors where they belong.
 * onSubmit may return a node to show under the form (a shown-once secret, say).
 */
export function form({
  fields,
  submitLabel,
  onSubmit,
  label,
  reset = true,
  className = "",
  extra = [],
}) {
  const status = h("div", { class: "form-status", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "button primary" }, submitLabel);
  const el = h(
    "form",
    { class: ["form", className], "aria-label": label, novalidate: true },
    h("div", { class: "form-grid" }, fields),
    h("div", { class: "actions" }, submit, extra),
    status,
  );
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!el.checkValidity()) {
      const errors = {};
      for (const control of el.elements) {
        if (control.name && !control.validity.valid) errors[control.name] = control.validationMessage;
      }
      showFieldErrors(el, errors)?.focus();
      return;
    }
    showFieldErrors(el, {});
    submit.disabled = true;
    mount(status, loading("Saving…"));
    try {
      const result = await onSubmit(formValues(el), el);
      mount(status, result instanceof Node ? result : []);
      if (reset) el.reset();
    } catch (error) {
      const first = error instanceof ApiError ? showFieldErrors(el, error.fieldErrors) : null;
      mount(status, errorState(error));
      first?.focus();
    } finally {
      submit.disabled = false;
    }
  });
  return el;
}

// --- tables and lists ---------------------------------------------------------------

/** columns: [{label, render(row) -> node|string, className}] */
export function table(columns, rows, { caption, rowProps, stack = true } = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: ["data", stack ? "stack" : ""] },
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          columns.map((c) => h("th", { scope: "col", class: c.className }, c.label)),
        ),
      ),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h(
            "tr",
            rowProps ? rowProps(row) : {},
            columns.map((c) => h("td", { class: c.className, "data-label": c.label }, c.render(row))),
          ),
        ),
      ),
    ),
  );
}

/** A definition list from [label, value] pairs; [label, value, {wide: true}] takes a row. */
export function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs
      .filter(Boolean)
      .map(([term, value, options = {}]) =>
        h("div", { class: options.wide ? "wide" : null }, h("dt", {}, term), h("dd", {}, value ?? "—")),
      ),
  );
}

export function pager({ offset, limit, total, onPage }) {
  const from = total === 0 ? 0 : offset + 1;
  const to = Math.min(offset + limit, total);
  const count = h("span", { class: "muted" }, `${from}–${to} of ${total}`);
  if (offset === 0 && total <= limit) return h("div", { class: "pager" }, count);
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    count,
    button("Newer", () => onPage(Math.max(0, offset - limit)), {
      variant: "secondary",
      disabled: offset === 0,
    }),
    button("Older", () => onPage(offset + limit), {
      variant: "secondary",
      disabled: offset + limit >= total,
    }),
  );
}

// --- feedback -----------------------------------------------------------------------

export function toast(message, kind = "info") {
  let region;
  try {
    region = slot("toasts");
  } catch {
    return;
  }
  const item = h("div", { class: ["toast", `tone-${kind === "error" ? "bad" : "ok"}`] }, message);
  region.append(item);
  window.setTimeout(() => item.remove(), 6000);
}

/** Ask before doing something that cannot be undone. Resolves true to go ahead. */
export function confirmAction(message, { confirmLabel = "Yes, do it", danger = true } = {}) {
  return new Promise((resolve) => {
    const titleId = uid("confirm");
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": titleId },
      h(
        "form",
        { method: "dialog" },
        h("p", { id: titleId, class: "dialog-message" }, message),
        h(
          "div",
          { class: "actions" },
          h("button", { type: "submit", value: "cancel", class: "button secondary" }, "Cancel"),
          h(
            "button",
            { type: "submit", value: "confirm", class: ["button", danger ? "danger" : "primary"] },
            confirmLabel,
          ),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export function copyButton(text, label = "Copy", props = {}) {
  return button(
    label,
    async () => {
      try {
        await navigator.clipboard.writeText(text);
        toast("Copied to the clipboard.");
      } catch {
        toast("The browser did not allow copying; select the text and copy it.", "error");
      }
    },
    { variant: "secondary", ...props },
  );
}

/** A secret the server shows this once: say so, make it easy to copy. */
export function secretOnce(title, secret, note) {
  return h(
    "div",
    { class: "secret-once", role: "status" },
    h("p", { class: "state-title" }, title),
    h("p", {}, note || "Copy it now: it is shown only this once and cannot be shown again."),
    h(
      "div",
      { class: "secret-row" },
      h("code", { class: "secret", "data-secret": "true", tabindex: "0" }, secret),
      copyButton(secret),
    ),
  );
}

export function setTitle(text) {
  document.title = `${text} · MastraAdmin`;
}
