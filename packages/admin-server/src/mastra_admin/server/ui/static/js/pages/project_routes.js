// A project's routes and the servers running for its deployments.

import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { megabytes, percent, shortId, timeAgo } from "../lib/format.js";
import { projectContext } from "../lib/context.js";
import { badge, emptyState, errorState, externalLink, fill, table } from "../lib/ui.js";

export async function render({ params }) {
  const projectId = params.projectId;
  try {
    await projectContext(projectId, "Routes and servers");
  } catch (error) {
    mount(slot("routes"), errorState(error));
    mount(slot("servers"));
    return;
  }
  let deployments = [];
  const label = (id) => {
    const d = deployments.find((x) => x.id === id);
    return d ? h("a", { href: `/deployments/${d.id}` }, `${d.type} · ${d.branch}`) : shortId(id);
  };

  const loadRoutes = (poll = false) =>
    fill(
      slot("routes"),
      async () => {
        deployments = await api(`/api/projects/${projectId}/deployments`);
        return api(`/api/projects/${projectId}/routes`);
      },
      (routes) => {
        if (!routes.length) {
          return emptyState("No routes yet", "A deployment gets a route when its first build succeeds. Deploy one from the Deployments tab.");
        }
        return table(
          [
            { label: "Public URL", render: (r) => externalLink(r.public_url, r.public_url) },
            { label: "Deployment", render: (r) => label(r.deployment_id) },
            { label: "Target", render: (r) => h("code", {}, `${r.target_host}:${r.target_port}`) },
            { label: "Status", render: (r) => badge(r.status) },
            { label: "TLS", render: (r) => (r.tls_enabled ? "yes" : "no") },
            { label: "Checked", render: (r) => (r.last_health_check ? timeAgo(r.last_health_check) : "—") },
          ],
          routes,
          { caption: "Routes" },
        );
      },
      { poll, quiet: poll },
    );

  const loadServers = (poll = false) =>
    fill(
      slot("servers"),
      async () => {
        const lists = await Promise.all(deployments.map((d) => api(`/api/deployments/${d.id}/servers`)));
        return lists.flat();
      },
      (servers) => {
        if (!servers.length) {
          return emptyState("No server is running", "Deploy a deployment to start its server; stopped servers are not listed.");
        }
        return table(
          [
            { label: "Deployment", render: (s) => label(s.deployment_id) },
            { label: "Server", render: (s) => h("code", {}, `${s.host}:${s.port}`) },
            { label: "Health", render: (s) => badge(s.health_status) },
            { label: "Memory", render: (s) => megabytes(s.memory_usage_mb) },
            { label: "CPU", render: (s) => percent(s.cpu_percent) },
            { label: "Process", render: (s) => (s.process_id ? String(s.process_id) : s.container_id || "—") },
            { label: "Started", render: (s) => timeAgo(s.started_at) },
          ],
          servers,
          { caption: "Running servers" },
        );
      },
      { poll, quiet: poll },
    );

  await loadRoutes();
  await loadServers();
  const tick = async () => {
    if (!document.hidden) {
      await loadRoutes(true);
      await loadServers(true);
    }
    window.setTimeout(tick, 5000);
  };
  window.setTimeout(tick, 5000);
}
