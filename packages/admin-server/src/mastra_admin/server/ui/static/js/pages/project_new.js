// The source picker: every Mastra project the source found (path, package manager,
// Mastra version; an invalid one says why), then a form to create the project. A source
// that connects (git) gets a form for the repository instead.

import { api } from "../lib/api.js";
import { h, mount, slot, uid } from "../lib/dom.js";
import { teamContext } from "../lib/context.js";
import { badge, button, emptyState, errorState, field, fill, form } from "../lib/ui.js";

function sourceChoice(source, usedBy, onPick) {
  const meta = source.metadata || {};
  const valid = meta.valid !== false;
  const id = uid("source");
  const input = h("input", {
    type: "radio",
    name: "source",
    id,
    value: source.id,
    disabled: !valid,
    "aria-describedby": `${id}-meta`,
  });
  input.addEventListener("change", () => onPick(source));
  const problems = Array.isArray(meta.problems) ? meta.problems : [];
  return h(
    "label",
    { class: ["choice", valid ? "" : "invalid"], for: id, dataset: { sourceId: source.id, sourceName: source.name } },
    input,
    h(
      "span",
      { class: "choice-title" },
      source.name,
      valid ? badge("valid", "ready") : badge("invalid", "cannot be used"),
      usedBy ? badge("info", `already project ${usedBy}`) : null,
    ),
    h(
      "span",
      { class: "meta", id: `${id}-meta` },
      h("code", {}, source.path),
      ` · ${meta.package_manager || "npm"}`,
      ` · Mastra ${meta.mastra_version || "version unknown"}`,
      meta.workspace_root ? ` · workspace ${meta.workspace_root}` : "",
    ),
    !valid
      ? h(
          "ul",
          { class: "problems" },
          (problems.length ? problems : ["the source reports it as not usable"]).map((p) => h("li", {}, p)),
        )
      : null,
  );
}

// The project's name, and the slug its host names use (made from the name when empty).
function nameFields(name) {
  return [
    field({ label: "Name", name: "name", value: name, required: true, maxlength: 255 }),
    field({
      label: "Slug",
      name: "slug",
      hint: "Part of every server's host name. Made from the name when empty.",
      pattern: "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
    }),
  ];
}

function connectForm(teamId, info) {
  return form({
    label: "Connect a git repository",
    submitLabel: "Create project",
    reset: false,
    fields: [
      ...nameFields(),
      field({
        label: "Repository URL",
        name: "url",
        required: true,
        hint: "https://host/owner/repo.git or git@host:owner/repo.git; no credential in the URL.",
      }),
      field({ label: "Sub-folder", name: "subdirectory", hint: "Where the Mastra app lives in a monorepo; empty: the root." }),
      field({ label: "Default branch", name: "default_branch", value: "main", required: true }),
      field({
        label: "Access token",
        name: "token",
        kind: "password",
        autocomplete: "off",
        hint: "For a private repository over https. Stored encrypted; never shown again.",
      }),
      field({
        label: "Webhook secret",
        name: "webhook_secret",
        kind: "password",
        autocomplete: "off",
        minlength: 16,
        hint: `16 characters or more. Give the git host the same secret and the URL ${window.location.origin}${info.webhook_path || ""} (content type application/json).`,
      }),
    ],
    onSubmit: async (values) => {
      const source = { url: values.url };
      if (values.subdirectory) source.subdirectory = values.subdirectory;
      if (values.token) source.credential = { type: "https_token", token: values.token };
      if (values.webhook_secret) source.webhook_secret = values.webhook_secret;
      const project = await api(`/api/teams/${teamId}/projects`, {
        method: "POST",
        body: {
          name: values.name,
          slug: values.slug || undefined,
          default_branch: values.default_branch,
          source_type: info.type,
          source,
        },
      });
      window.location.assign(`/projects/${project.id}`);
    },
  });
}

export async function render({ params }) {
  const teamId = params.teamId;
  const picker = slot("sources");
  const create = slot("create-project");
  mount(create, h("p", { class: "muted" }, "Pick a project above first."));
  let info;
  try {
    [, info] = await Promise.all([teamContext(teamId, "New project"), api("/api/sources")]);
  } catch (error) {
    mount(picker, errorState(error));
    return;
  }
  if (info.connects) {
    mount(
      picker,
      h("p", {}, `Projects on this platform come from ${info.type} repositories: connect one below.`),
    );
    mount(create, connectForm(teamId, info));
    return;
  }

  const showForm = (source) => {
    const meta = source.metadata || {};
    mount(
      create,
      h("p", {}, "From ", h("code", {}, source.path)),
      form({
        label: "Create the project",
        submitLabel: "Create project",
        reset: false,
        fields: [
          ...nameFields(source.name),
          field({
            label: "Default branch",
            name: "default_branch",
            value: source.default_branch || meta.git_branch || "main",
            required: true,
            hint: "Production deploys this branch unless told otherwise.",
          }),
        ],
        onSubmit: async (values) => {
          const project = await api(`/api/teams/${teamId}/projects`, {
            method: "POST",
            body: {
              name: values.name,
              slug: values.slug || undefined,
              default_branch: values.default_branch,
              source_type: source.type,
              source_id: source.id,
            },
          });
          window.location.assign(`/projects/${project.id}`);
        },
      }),
    );
  };

  const load = () =>
    fill(
      picker,
      async () => {
        const [sources, projects] = await Promise.all([
          api("/api/sources/projects", { query: { team_id: teamId } }),
          api(`/api/teams/${teamId}/projects`, { query: { limit: 500 } }),
        ]);
        return { sources, projects: projects.items };
      },
      ({ sources, projects }) => {
        if (!sources.length) {
          return emptyState(
            "The source found no Mastra projects",
            "Put Mastra projects (a package.json depending on @mastra/core, with src/mastra/index) in the folder PROJECTS_DIR names, or configure the source's base paths, then look again.",
            button("Look again", load, { variant: "secondary" }),
          );
        }
        const used = new Map(projects.map((p) => [p.source_config.source_id, p.name]));
        const ordered = [...sources].sort(
          (a, b) => (b.metadata?.valid !== false) - (a.metadata?.valid !== false) || a.name.localeCompare(b.name),
        );
        return h(
          "fieldset",
          { class: "choices" },
          h("legend", { class: "visually-hidden" }, "Source projects"),
          ordered.map((s) => sourceChoice(s, used.get(s.id), showForm)),
        );
      },
    );
  mount(slot("sources-actions"), button("Look again", () => load(), { variant: "secondary" }));
  load();
}
