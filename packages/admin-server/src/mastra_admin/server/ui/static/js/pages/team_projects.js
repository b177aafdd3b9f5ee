// A team's projects.

import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { timeAgo } from "../lib/format.js";
import { teamContext } from "../lib/context.js";
import { emptyState, errorState, fill, pager, table } from "../lib/ui.js";

const LIMIT = 25;

function newProjectLink(teamId) {
  return h("a", { class: "button primary", href: `/teams/${teamId}/projects/new` }, "New project");
}

export async function render({ params }) {
  const teamId = params.teamId;
  mount(slot("projects-actions"), newProjectLink(teamId));
  try {
    await teamContext(teamId);
  } catch (error) {
    mount(slot("projects"), errorState(error));
    return;
  }
  const target = slot("projects");
  const load = (offset) =>
    fill(
      target,
      () => api(`/api/teams/${teamId}/projects`, { query: { limit: LIMIT, offset } }),
      (page) => {
        if (!page.items.length && offset === 0) {
          return emptyState(
            "No projects yet",
            "Create a project from one of the Mastra projects the source found, then deploy it.",
            newProjectLink(teamId),
          );
        }
        return [
          table(
            [
              { label: "Project", render: (p) => h("a", { href: `/projects/${p.id}` }, p.name) },
              { label: "Source", render: (p) => h("code", {}, p.source_config.path || p.source_config.source_id || p.source_type) },
              { label: "Default branch", render: (p) => p.default_branch },
              { label: "Package manager", render: (p) => p.source_config.package_manager || "—" },
              { label: "Created", render: (p) => timeAgo(p.created_at) },
            ],
            page.items,
            { caption: "Projects" },
          ),
          page.total > LIMIT ? pager({ ...page, onPage: load }) : null,
        ];
      },
    );
  load(0);
}
