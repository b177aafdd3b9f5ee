// Env vars per deployment type, values hidden until someone allowed reveals them.

import { api } from "../lib/api.js";
import { h, mount, slot, uid } from "../lib/dom.js";
import { timeAgo } from "../lib/format.js";
import { projectContext } from "../lib/context.js";
import { badge, button, confirmAction, emptyState, errorState, field, fill, form, table, toast } from "../lib/ui.js";

const SCOPES = [
  { value: "", label: "Every deployment type" },
  { value: "production", label: "Production only" },
  { value: "staging", label: "Staging only" },
  { value: "preview", label: "Preview only" },
];

export async function render({ params }) {
  const projectId = params.projectId;
  try {
    await projectContext(projectId, "Environment");
  } catch (error) {
    mount(slot("env"), errorState(error));
    mount(slot("env-form"));
    return;
  }
  const revealed = new Map(); // env var id -> value
  let vars = [];
  let showType = "";

  const filterId = uid("env-filter");
  const filter = h(
    "select",
    { id: filterId },
    h("option", { value: "" }, "All types"),
    h("option", { value: "production" }, "What production gets"),
    h("option", { value: "staging" }, "What staging gets"),
    h("option", { value: "preview" }, "What previews get"),
  );
  filter.addEventListener("change", () => {
    showType = filter.value;
    draw();
  });

  const reveal = async (keys) => {
    const values = await api(`/api/projects/${projectId}/env/reveal`, {
      method: "POST",
      body: keys ? { keys } : {},
    });
    for (const v of values) revealed.set(v.id, v.value);
    draw(keys ? `tr[data-env-key="${CSS.escape(keys[0])}"] button` : null);
  };

  mount(
    slot("env-actions"),
    h("label", { for: filterId, class: "visually-hidden" }, "Show"),
    filter,
    button("Reveal all", () => reveal(null), { variant: "secondary", small: true, dataset: { action: "reveal-all" } }),
    button(
      "Hide values",
      () => {
        revealed.clear();
        draw();
      },
      { variant: "secondary", small: true },
    ),
  );

  const target = slot("env");
  let formEl;

  /** Draw the list; focus moves to `focus` (a selector) so keyboard users keep their place. */
  function draw(focus = null) {
    mount(target, view());
    if (focus) target.querySelector(focus)?.focus();
  }

  function view() {
    if (!vars.length) {
      return emptyState("No env vars yet", "Set the variables your Mastra server needs (API keys, model names) with the form below.");
    }
    // For one type: what a deployment of that type gets (its own value wins over "every type").
    let shown = vars;
    if (showType) {
      const own = new Set(vars.filter((v) => v.deployment_type === showType).map((v) => v.key));
      shown = vars.filter((v) => v.deployment_type === showType || (v.deployment_type === null && !own.has(v.key)));
    }
    return table(
        [
          { label: "Key", render: (v) => h("code", {}, v.key) },
          { label: "Applies to", render: (v) => (v.deployment_type ? badge("info", v.deployment_type) : badge("neutral", "every type")) },
          {
            label: "Value",
            className: "message",
            render: (v) =>
              revealed.has(v.id)
                ? h("code", { class: "revealed-value", dataset: { revealed: v.key } }, revealed.get(v.id))
                : h("span", { class: "hidden-value", "aria-label": "hidden value" }, "••••••••"),
          },
          { label: "Secret", render: (v) => (v.is_secret ? "yes" : "no") },
          { label: "Updated", render: (v) => timeAgo(v.updated_at) },
          {
            label: "Actions",
            className: "actions-cell",
            render: (v) =>
              h(
                "div",
                { class: "actions" },
                revealed.has(v.id)
                  ? button(
                      "Hide",
                      () => {
                        revealed.delete(v.id);
                        draw(`tr[data-env-key="${CSS.escape(v.key)}"] button`);
                      },
                      { variant: "secondary", small: true },
                    )
                  : button("Reveal", () => reveal([v.key]), { variant: "secondary", small: true, dataset: { action: "reveal" } }),
                button(
                  "Edit",
                  () => {
                    formEl.elements.namedItem("key").value = v.key;
                    formEl.elements.namedItem("deployment_type").value = v.deployment_type || "";
                    formEl.elements.namedItem("is_secret").checked = v.is_secret;
                    const value = formEl.elements.namedItem("value");
                    value.value = "";
                    value.focus();
                  },
                  { variant: "secondary", small: true },
                ),
                button(
                  "Delete",
                  async () => {
                    const scope = v.deployment_type ? `${v.deployment_type} deployments` : "every deployment type";
                    if (!(await confirmAction(`Delete ${v.key} for ${scope}?`, { confirmLabel: "Delete variable" }))) return;
                    await api(`/api/projects/${projectId}/env/${encodeURIComponent(v.key)}`, {
                      method: "DELETE",
                      query: { deployment_type: v.deployment_type || undefined },
                    });
                    toast(`${v.key} deleted.`);
                    load(true);
                  },
                  { variant: "danger", small: true },
                ),
              ),
          },
        ],
        shown,
        { caption: "Environment variables", rowProps: (v) => ({ dataset: { envKey: v.key } }) },
      );
  }

  const load = (quiet = false) =>
    fill(
      target,
      async () => {
        const list = await api(`/api/projects/${projectId}/env`);
        vars = list.sort((a, b) => a.key.localeCompare(b.key) || (a.deployment_type || "").localeCompare(b.deployment_type || ""));
        for (const id of [...revealed.keys()]) if (!vars.some((v) => v.id === id)) revealed.delete(id);
        return vars;
      },
      view,
      { quiet },
    );
  load();

  const showTyped = h("input", { type: "checkbox", id: "env-show-typed" });
  formEl = form({
    label: "Set a variable",
    submitLabel: "Save variable",
    fields: [
      field({
        label: "Key",
        name: "key",
        required: true,
        pattern: "[A-Za-z_][A-Za-z0-9_]*",
        maxlength: 255,
        autocomplete: "off",
        spellcheck: "false",
        placeholder: "OPENAI_API_KEY",
      }),
      field({ label: "Value", name: "value", kind: "password", autocomplete: "new-password", spellcheck: "false" }),
      field({ label: "Applies to", name: "deployment_type", kind: "select", options: SCOPES }),
      field({ label: "Secret (masked in build logs)", name: "is_secret", kind: "checkbox", value: true }),
    ],
    extra: [h("label", { class: "follow", for: "env-show-typed" }, showTyped, "Show what I type")],
    onSubmit: async (values) => {
      await api(`/api/projects/${projectId}/env`, {
        method: "PUT",
        body: {
          key: values.key,
          value: values.value,
          is_secret: values.is_secret,
          deployment_type: values.deployment_type || null,
        },
      });
      toast(`${values.key} saved.`);
      await load(true);
    },
  });
  showTyped.addEventListener("change", () => {
    formEl.elements.namedItem("value").type = showTyped.checked ? "text" : "password";
  });
  mount(slot("env-form"), formEl);
}
