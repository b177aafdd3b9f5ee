// The heading and breadcrumbs of team, project, deployment and build pages.

import { api } from "./api.js";
import { h, mount, slot } from "./dom.js";
import { badge, setTitle } from "./ui.js";

function crumbs(items) {
  const target = slot("breadcrumbs");
  mount(
    target,
    items.map(([label, href], index) =>
      h(
        "li",
        {},
        index === items.length - 1 ? h("span", { "aria-current": "page" }, label) : h("a", { href }, label),
      ),
    ),
  );
}

function heading(text, ...extra) {
  mount(slot("title"), text, extra.length ? h("span", { class: "title-extra" }, extra) : null);
}

export function deploymentLabel(deployment) {
  const type = deployment.type[0].toUpperCase() + deployment.type.slice(1);
  return `${type} · ${deployment.branch}`;
}

export async function teamContext(teamId, pageTitle) {
  try {
    const team = await api(`/api/teams/${teamId}`);
    heading(team.name);
    crumbs([
      ["Teams", "/"],
      [team.name, `/teams/${team.id}`],
      ...(pageTitle ? [[pageTitle, window.location.pathname]] : []),
    ]);
    setTitle(`${pageTitle ? `${pageTitle} · ` : ""}${team.name}`);
    return team;
  } catch (error) {
    heading("Team not available");
    throw error;
  }
}

export async function projectContext(projectId, pageTitle) {
  try {
    const project = await api(`/api/projects/${projectId}`);
    const team = await api(`/api/teams/${project.team_id}`);
    heading(project.name);
    crumbs([
      ["Teams", "/"],
      [team.name, `/teams/${team.id}`],
      [project.name, `/projects/${project.id}`],
      ...(pageTitle ? [[pageTitle, window.location.pathname]] : []),
    ]);
    setTitle(`${pageTitle ? `${pageTitle} · ` : ""}${project.name}`);
    return { project, team };
  } catch (error) {
    heading("Project not available");
    throw error;
  }
}

export async function deploymentContext(deploymentId, extraCrumb) {
  try {
    const deployment = await api(`/api/deployments/${deploymentId}`);
    const project = await api(`/api/projects/${deployment.project_id}`);
    const team = await api(`/api/teams/${project.team_id}`);
    heading(`${project.name}: ${deploymentLabel(deployment)}`, badge(deployment.status));
    crumbs([
      ["Teams", "/"],
      [team.name, `/teams/${team.id}`],
      [project.name, `/projects/${project.id}`],
      [deploymentLabel(deployment), `/deployments/${deployment.id}`],
      ...(extraCrumb ? [extraCrumb] : []),
    ]);
    setTitle(`${extraCrumb ? `${extraCrumb[0]} · ` : ""}${deploymentLabel(deployment)} · ${project.name}`);
    return { deployment, project, team };
  } catch (error) {
    heading("Deployment not available");
    throw error;
  }
}

/** Refresh the status badge in the heading. */
export function headingStatus(status) {
  const extra = slot("title").querySelector(".title-extra");
  if (extra) mount(extra, badge(status));
}
