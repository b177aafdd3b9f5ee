// Licence and settings: the licence in force, loaded plugins, the ingestion worker,
// and (for platform administrators) users.

import { api, ApiError } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { timeAgo } from "../lib/format.js";
import { badge, emptyState, errorState, facts, field, fill, form, pager, table, toast } from "../lib/ui.js";

const LIMIT_NAMES = {
  max_teams: "Teams",
  max_members_per_team: "Members per team",
  max_projects: "Projects",
};

function onlyAdmins(error) {
  if (error instanceof ApiError && error.status === 403) {
    return h("p", { class: "muted" }, "Only platform administrators see this.");
  }
  return errorState(error);
}

export async function render() {
  fill(slot("licence"), () => api("/api/licence"), (licence) => [
    h(
      "p",
      { class: licence.valid ? "" : "notice", role: licence.valid ? null : "status" },
      licence.message,
    ),
    facts([
      ["Tier", badge(licence.valid ? "ok" : "neutral", licence.tier)],
      ["Organisation", licence.organisation || "—"],
      ["Expires", licence.expires_at ? timeAgo(licence.expires_at) : "never"],
      ["Features", licence.features.join(", ") || "—"],
      ...Object.entries(LIMIT_NAMES).map(([key, label]) => [
        label,
        licence.limits[key] === null || licence.limits[key] === undefined ? "unlimited" : String(licence.limits[key]),
      ]),
    ]),
    h(
      "p",
      { class: "hint" },
      "A licence key is set with ",
      h("code", {}, "MASTRA_ADMIN_LICENCE_KEY"),
      " (checked with ",
      h("code", {}, "MASTRA_ADMIN_LICENCE_PUBLIC_KEY"),
      "); restart the platform to apply a new one.",
    ),
  ]);

  fill(slot("plugins"), () => api("/api/plugins"), (plugins) =>
    plugins.length
      ? table(
          [
            { label: "Plugin", render: (p) => h("strong", {}, p.name) },
            { label: "Distribution", render: (p) => (p.distribution ? `${p.distribution} ${p.version || ""}` : "—") },
            { label: "Providers", render: (p) => p.providers.join(", ") || "—" },
            { label: "Hooks", className: "message", render: (p) => p.hooks.join(", ") || "—" },
          ],
          plugins,
          { caption: "Plugins" },
        )
      : emptyState("No plugins loaded", "Install adapter distributions (pip install mastra-admin-…) and restart."),
  );

  const ingestion = slot("ingestion");
  api("/api/observability/ingestion")
    .then((status) =>
      mount(
        ingestion,
        facts([
          ["Running", badge(status.running ? "ok" : "stopped", status.running ? "running" : "not running here")],
          ["Files processed", String(status.total_files_processed ?? 0)],
          ["Events ingested", String(status.total_events_ingested ?? 0)],
          ["Bad lines skipped", String(status.total_bad_lines ?? 0)],
          ["Files waiting", status.pending_files ?? "—"],
          ["Last pass", status.last_processed_at ? timeAgo(status.last_processed_at) : "—"],
          ["Last error", status.last_error || "none"],
        ]),
      ),
    )
    .catch((error) => mount(ingestion, onlyAdmins(error)));

  const users = slot("users");
  let offset = 0;
  const loadUsers = async () => {
    try {
      const page = await api("/api/users", { query: { limit: 50, offset } });
      mount(
        users,
        table(
          [
            { label: "Email", render: (u) => u.email },
            { label: "Name", render: (u) => u.name || "—" },
            { label: "Sign-in", render: (u) => (u.external_id ? "identity provider" : "API token") },
            { label: "Created", render: (u) => timeAgo(u.created_at) },
          ],
          page.items,
          { caption: "Users" },
        ),
        page.total > 50
          ? pager({
              ...page,
              onPage: (next) => {
                offset = next;
                loadUsers();
              },
            })
          : null,
        h("h3", {}, "Create a user"),
        form({
          label: "Create a user",
          submitLabel: "Create user",
          fields: [
            field({ label: "Email", name: "email", kind: "email", required: true }),
            field({ label: "Name", name: "name" }),
          ],
          onSubmit: async (values) => {
            await api("/api/users", { method: "POST", body: { email: values.email, name: values.name || null } });
            toast(`User ${values.email} created. Give them an API token with mastra-admin tokens create, or invite them to a team.`);
            loadUsers();
          },
        }),
      );
    } catch (error) {
      mount(users, onlyAdmins(error));
    }
  };
  loadUsers();
}
