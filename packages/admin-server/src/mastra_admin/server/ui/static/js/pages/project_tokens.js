// A project's API tokens: listed by prefix, created with the secret shown once.

import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { timeAgo } from "../lib/format.js";
import { projectContext } from "../lib/context.js";
import { expiryFrom, scopesFrom } from "../lib/tokens.js";
import { button, confirmAction, emptyState, errorState, field, fill, form, secretOnce, table, toast } from "../lib/ui.js";

export async function render({ params }) {
  const projectId = params.projectId;
  try {
    await projectContext(projectId, "API tokens");
  } catch (error) {
    mount(slot("tokens"), errorState(error));
    mount(slot("create-token"));
    return;
  }
  const load = (quiet = false) =>
    fill(
      slot("tokens"),
      () => api(`/api/projects/${projectId}/tokens`),
      (tokens) => {
        if (!tokens.length) {
          return emptyState("No project tokens", "Create one for a CI job that deploys this project; it is shown once.");
        }
        return table(
          [
            { label: "Name", render: (t) => t.name },
            { label: "Token", render: (t) => h("code", {}, `${t.token_prefix}…`) },
            { label: "Scopes", render: (t) => (t.scopes.length ? t.scopes.join(", ") : "deploy and read builds") },
            { label: "Last used", render: (t) => (t.last_used_at ? timeAgo(t.last_used_at) : "never") },
            { label: "Expires", render: (t) => (t.expires_at ? timeAgo(t.expires_at) : "never") },
            { label: "Created", render: (t) => timeAgo(t.created_at) },
            {
              label: "Delete",
              className: "actions-cell",
              render: (t) =>
                button(
                  "Delete",
                  async () => {
                    if (!(await confirmAction(`Delete the token ${t.name}? Anything using it stops working.`, { confirmLabel: "Delete token" }))) return;
                    await api(`/api/projects/${projectId}/tokens/${t.id}`, { method: "DELETE" });
                    toast("Token deleted.");
                    load(true);
                  },
                  { variant: "danger", small: true },
                ),
            },
          ],
          tokens,
          { caption: "Project API tokens" },
        );
      },
      { quiet },
    );
  load();
  mount(
    slot("create-token"),
    form({
      label: "Create a project token",
      submitLabel: "Create token",
      fields: [
        field({ label: "Name", name: "name", required: true, maxlength: 255, placeholder: "deploy from CI" }),
        field({
          label: "Scopes",
          name: "scopes",
          hint: "Permissions, separated by spaces or commas. Empty: deploy and read builds.",
          placeholder: "deployment:deploy build:read",
        }),
        field({ label: "Expires on", name: "expires_on", kind: "date", hint: "Empty: never expires." }),
      ],
      onSubmit: async (values) => {
        const created = await api(`/api/projects/${projectId}/tokens`, {
          method: "POST",
          body: { name: values.name, scopes: scopesFrom(values.scopes), expires_at: expiryFrom(values.expires_on) },
        });
        load(true);
        return secretOnce(`Token ${created.token.name} created`, created.secret);
      },
    }),
  );
}
