// Home: the teams you belong to, and a form to create one.

import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { timeAgo } from "../lib/format.js";
import { emptyState, field, fill, form, link } from "../lib/ui.js";

function teamCards(teams) {
  if (!teams.length) {
    return emptyState(
      "You are not in a team yet",
      "Create a team below to start adding projects, or accept an invite someone sent you on your Account page.",
      link("Accept an invite", "/account"),
    );
  }
  return h(
    "div",
    { class: "cards" },
    teams.map((team) =>
      h(
        "article",
        { class: "card" },
        h("h3", {}, h("a", { href: `/teams/${team.id}` }, team.name)),
        h("p", { class: "meta" }, h("code", {}, team.slug), " · created ", timeAgo(team.created_at)),
        h(
          "div",
          { class: "actions" },
          link("Projects", `/teams/${team.id}`),
          link("Members", `/teams/${team.id}/members`),
          link("Settings", `/teams/${team.id}/settings`),
        ),
      ),
    ),
  );
}

export async function render() {
  const list = slot("teams");
  const load = () => fill(list, () => api("/api/teams"), teamCards);
  load();
  mount(
    slot("create-team"),
    form({
      label: "Create a team",
      submitLabel: "Create team",
      fields: [
        field({ label: "Name", name: "name", required: true, maxlength: 255, placeholder: "Search" }),
        field({
          label: "Slug",
          name: "slug",
          hint: "Lowercase letters, digits and -; part of every server's host name. Made from the name when empty.",
          pattern: "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
          placeholder: "search",
        }),
      ],
      onSubmit: async (values) => {
        const team = await api("/api/teams", {
          method: "POST",
          body: { name: values.name, slug: values.slug || undefined },
        });
        window.location.assign(`/teams/${team.id}`);
      },
    }),
  );
}
