// A project's deployments with their actions, and creating one.

import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { timeAgo } from "../lib/format.js";
import { projectContext } from "../lib/context.js";
import { deployButton, restartButton, stopButton } from "../lib/deploy.js";
import { badge, emptyState, errorState, externalLink, field, fill, form, table } from "../lib/ui.js";

const TYPES = [
  { value: "production", label: "Production" },
  { value: "staging", label: "Staging" },
  { value: "preview", label: "Preview (expires)" },
];

export async function render({ params }) {
  const projectId = params.projectId;
  let project;
  try {
    ({ project } = await projectContext(projectId));
  } catch (error) {
    mount(slot("deployments"), errorState(error));
    mount(slot("create-deployment"));
    return;
  }
  const target = slot("deployments");
  let timer = null;

  const load = (quiet = false, poll = false) =>
    fill(
      target,
      async () => {
        const deployments = await api(`/api/projects/${projectId}/deployments`);
        // While something builds, its status changes on its own: look again soon.
        window.clearTimeout(timer);
        if (deployments.some((d) => d.status === "building")) {
          timer = window.setTimeout(() => load(true, true), 3000);
        }
        return deployments;
      },
      (deployments) => {
        if (!deployments.length) {
          return emptyState(
            "No deployments yet",
            "Create a production deployment below, then deploy it: MastraAdmin builds the project and starts its server.",
          );
        }
        return table(
          [
            {
              label: "Deployment",
              render: (d) =>
                h(
                  "div",
                  {},
                  h("a", { href: `/deployments/${d.id}` }, `${d.type} · ${d.branch}`),
                  d.expires_at ? h("div", { class: "muted" }, "expires ", timeAgo(d.expires_at)) : null,
                ),
            },
            { label: "Status", render: (d) => badge(d.status) },
            {
              label: "URL",
              render: (d) => (d.public_url ? externalLink(d.public_url, d.public_url) : h("span", { class: "muted" }, "not deployed")),
            },
            {
              label: "Current build",
              render: (d) =>
                d.current_build_id ? h("a", { href: `/builds/${d.current_build_id}` }, h("code", {}, d.current_build_id.slice(0, 8))) : "—",
            },
            { label: "Updated", render: (d) => timeAgo(d.updated_at) },
            {
              label: "Actions",
              className: "actions-cell",
              render: (d) =>
                h("div", { class: "actions" }, deployButton(d), restartButton(d), stopButton(d, () => load(true))),
            },
          ],
          deployments,
          { caption: "Deployments", rowProps: (d) => ({ dataset: { deploymentId: d.id, deploymentType: d.type } }) },
        );
      },
      { quiet, poll },
    );
  load();

  mount(
    slot("create-deployment"),
    form({
      label: "Create a deployment",
      submitLabel: "Create deployment",
      fields: [
        field({ label: "Type", name: "type", kind: "select", value: "production", options: TYPES }),
        field({
          label: "Branch",
          name: "branch",
          placeholder: project.default_branch,
          hint: `Production uses ${project.default_branch} and staging uses staging when empty; a preview needs one.`,
        }),
        field({
          label: "Preview lifetime (hours)",
          name: "ttl_hours",
          kind: "number",
          min: 1,
          max: 8760,
          hint: "Previews only. Empty: the team's preview lifetime.",
        }),
      ],
      onSubmit: async (values) => {
        const body = { type: values.type, branch: values.branch || undefined };
        if (values.type === "preview" && values.ttl_hours) body.ttl_hours = Number(values.ttl_hours);
        await api(`/api/projects/${projectId}/deployments`, { method: "POST", body });
        await load(true);
        return h("p", { role: "status" }, "Deployment created. Deploy it from the list above.");
      },
    }),
  );
}
