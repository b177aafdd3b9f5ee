// One deployment: its URL and route, actions (deploy, restart, stop, delete), its
// servers with health, memory and CPU, its builds with rollback, and its custom
// domains.

import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { megabytes, percent, shortId, timeAgo } from "../lib/format.js";
import { deploymentContext, headingStatus } from "../lib/context.js";
import { deployButton, restartButton, stopButton } from "../lib/deploy.js";
import { buildDuration, isActive, triggerLabel } from "../lib/builds.js";
import { domainsPanel } from "../lib/domains.js";
import {
  badge,
  button,
  confirmAction,
  emptyState,
  errorState,
  externalLink,
  facts,
  fill,
  pager,
  table,
  toast,
} from "../lib/ui.js";

const BUILDS_PER_PAGE = 20;

export async function render({ params }) {
  const deploymentId = params.deploymentId;
  let context;
  try {
    context = await deploymentContext(deploymentId);
  } catch (error) {
    mount(slot("overview"), errorState(error));
    mount(slot("servers"));
    mount(slot("builds"));
    mount(slot("domains"));
    return;
  }
  const { project } = context;
  let deployment = context.deployment;
  let buildsOffset = 0;
  let anyActive = false;

  const loadOverview = (quiet = false, poll = false) =>
    fill(
      slot("overview"),
      async () => {
        const [current, route] = await Promise.all([
          api(`/api/deployments/${deploymentId}`),
          api(`/api/deployments/${deploymentId}/route`),
        ]);
        return { current, route };
      },
      ({ current, route }) => {
        deployment = current;
        headingStatus(current.status);
        mount(
          slot("overview-actions"),
          deployButton(current),
          restartButton(current),
          stopButton(current, () => refresh()),
          button(
            "Delete",
            async () => {
              const ok = await confirmAction(
                `Delete the ${current.type} deployment of ${current.branch}? Its server is stopped and its builds are forgotten.`,
                { confirmLabel: "Delete deployment" },
              );
              if (!ok) return;
              await api(`/api/deployments/${deploymentId}`, { method: "DELETE" });
              window.location.assign(`/projects/${project.id}`);
            },
            { variant: "danger", small: true },
          ),
        );
        return facts([
          ["Status", badge(current.status)],
          [
            "Public URL",
            current.public_url
              ? externalLink(current.public_url, current.public_url)
              : h("span", { class: "muted" }, "none until the first successful deploy"),
          ],
          ["Type", current.type],
          ["Branch", h("code", {}, current.branch)],
          [
            "Current build",
            current.current_build_id
              ? h("a", { href: `/builds/${current.current_build_id}` }, h("code", {}, shortId(current.current_build_id)))
              : "—",
          ],
          ["Serving from", current.internal_host ? h("code", {}, `${current.internal_host}:${current.internal_port}`) : "—"],
          ["Route", route ? h("span", {}, h("code", {}, route.subdomain), " ", badge(route.status)) : "—"],
          ["Overrides", current.env_var_overrides.length ? current.env_var_overrides.map((o) => o.key).join(", ") : "none"],
          ["Expires", current.expires_at ? timeAgo(current.expires_at) : "never"],
          ["Created", timeAgo(current.created_at)],
        ]);
      },
      { quiet, poll },
    );

  const loadServers = (quiet = false, poll = false) =>
    fill(
      slot("servers"),
      () => api(`/api/deployments/${deploymentId}/servers`),
      (servers) => {
        if (!servers.length) {
          return emptyState(
            "No server is running",
            deployment.current_build_id
              ? "The deployment is stopped. Deploy or restart it to start a server."
              : "Deploy this deployment to build the project and start its server.",
          );
        }
        return table(
          [
            { label: "Server", render: (s) => h("code", {}, `${s.host}:${s.port}`) },
            { label: "Health", render: (s) => badge(s.health_status) },
            { label: "Memory", render: (s) => megabytes(s.memory_usage_mb) },
            { label: "CPU", render: (s) => percent(s.cpu_percent) },
            { label: "Process", render: (s) => (s.process_id ? h("code", {}, String(s.process_id)) : s.container_id || "—") },
            { label: "Build", render: (s) => h("a", { href: `/builds/${s.build_id}` }, h("code", {}, shortId(s.build_id))) },
            { label: "Started", render: (s) => timeAgo(s.started_at) },
            { label: "Checked", render: (s) => timeAgo(s.last_health_check) },
          ],
          servers,
          { caption: "Servers" },
        );
      },
      { quiet, poll },
    );

  const rollback = async (build) => {
    const ok = await confirmAction(
      `Serve build ${shortId(build.id)} again? Its kept output is started unbuilt and the route switches to it once it is healthy.`,
      { confirmLabel: "Roll back", danger: false },
    );
    if (!ok) return;
    const created = await api(`/api/deployments/${deploymentId}/rollback`, { method: "POST", body: { build_id: build.id } });
    window.location.assign(`/builds/${created.id}`);
  };

  const cancel = async (build) => {
    await api(`/api/builds/${build.id}/cancel`, { method: "POST" });
    toast("Build cancelled.");
    refresh();
  };

  const loadBuilds = (quiet = false, poll = false) =>
    fill(
      slot("builds"),
      async () => {
        const page = await api(`/api/deployments/${deploymentId}/builds`, {
          query: { limit: BUILDS_PER_PAGE, offset: buildsOffset },
        });
        anyActive = page.items.some(isActive);
        return page;
      },
      (page) => {
        if (!page.items.length) {
          return emptyState("No builds yet", "Deploy to queue the first build; its log streams live on the build's page.", deployButton(deployment));
        }
        return [
          table(
            [
              {
                label: "Build",
                render: (b) =>
                  h(
                    "div",
                    {},
                    h("a", { href: `/builds/${b.id}` }, h("code", {}, shortId(b.id))),
                    b.id === deployment.current_build_id ? h("span", {}, " ", badge("ok", "serving")) : null,
                  ),
              },
              { label: "Status", render: (b) => badge(b.status) },
              { label: "Trigger", render: triggerLabel },
              { label: "Queued", render: (b) => timeAgo(b.queued_at) },
              { label: "Took", render: buildDuration },
              {
                label: "Commit",
                render: (b) =>
                  b.commit_sha
                    ? h(
                        "div",
                        { title: [b.commit_message, b.commit_author].filter(Boolean).join("\n") },
                        h("code", {}, b.commit_sha.slice(0, 10)),
                        b.commit_message ? h("span", { class: "meta" }, " ", b.commit_message.split("\n")[0].slice(0, 60)) : null,
                      )
                    : "—",
              },
              { label: "Error", className: "message", render: (b) => b.error_message || "" },
              {
                label: "Actions",
                className: "actions-cell",
                render: (b) =>
                  h(
                    "div",
                    { class: "actions" },
                    isActive(b) ? button("Cancel", () => cancel(b), { variant: "danger", small: true }) : null,
                    b.status === "succeeded" && b.id !== deployment.current_build_id
                      ? button("Roll back to this", () => rollback(b), { variant: "secondary", small: true, dataset: { action: "rollback" } })
                      : null,
                  ),
              },
            ],
            page.items,
            {
              caption: "Builds",
              rowProps: (b) => ({ class: b.id === deployment.current_build_id ? "current" : "", dataset: { buildId: b.id } }),
            },
          ),
          page.total > BUILDS_PER_PAGE
            ? pager({
                ...page,
                onPage: (offset) => {
                  buildsOffset = offset;
                  loadBuilds();
                },
              })
            : null,
        ];
      },
      { quiet, poll },
    );

  const domains = domainsPanel(deploymentId, () => loadDomains(true));
  const loadDomains = (quiet = false, poll = false) =>
    fill(slot("domains"), domains.loader, domains.render, { quiet, poll });

  async function refresh(poll = false) {
    await loadOverview(true, poll);
    await Promise.all([loadServers(true, poll), loadBuilds(true, poll), loadDomains(true, poll)]);
  }

  // Servers' health and running builds change on their own: keep looking.
  const tick = async () => {
    if (!document.hidden) await refresh(true);
    window.setTimeout(tick, anyActive ? 2500 : 8000);
  };

  await loadOverview();
  await Promise.all([loadServers(), loadBuilds(), loadDomains()]);
  window.setTimeout(tick, anyActive ? 2500 : 8000);
}
