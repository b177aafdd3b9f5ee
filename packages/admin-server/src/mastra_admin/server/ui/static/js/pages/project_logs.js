// Logs with a level filter (that level and above), text search, deployment and time.

import { newAnsiState, renderAnsiLine } from "../lib/ansi.js";
import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { clockTime, dateTime, pretty } from "../lib/format.js";
import { projectContext } from "../lib/context.js";
import { deploymentField, deploymentName, filterBar, rangeField, rangeStart, readFilters, writeFilters } from "../lib/observe.js";
import { badge, button, emptyState, errorState, field, fill, pager, table } from "../lib/ui.js";

const LIMIT = 100;
const DEFAULTS = { range: "24h", level: "", text: "", deployment_id: "" };

function messageCell(projectId, log) {
  const attributes = log.attributes && Object.keys(log.attributes).length ? log.attributes : null;
  return h(
    "div",
    {},
    // Colour codes left in a line of a server's output render as the build log's do.
    h("div", { class: "ansi-message" }, renderAnsiLine(log.message, newAnsiState())),
    log.trace_id ? h("a", { href: `/projects/${projectId}/traces/${log.trace_id}`, class: "muted" }, "trace") : null,
    attributes
      ? h("details", {}, h("summary", {}, "attributes"), h("pre", { class: "json" }, pretty(attributes)))
      : null,
  );
}

export async function render({ params }) {
  const projectId = params.projectId;
  let deployments = [];
  try {
    await projectContext(projectId, "Logs");
    deployments = await api(`/api/projects/${projectId}/deployments`);
  } catch (error) {
    mount(slot("logs"), errorState(error));
    return;
  }
  let filters = readFilters(DEFAULTS);
  let offset = 0;
  const results = h("div", { "aria-live": "polite" });

  const load = () =>
    fill(
      results,
      () =>
        api(`/api/projects/${projectId}/logs`, {
          query: {
            start: rangeStart(filters.range),
            level: filters.level,
            text: filters.text,
            deployment_id: filters.deployment_id,
            limit: LIMIT,
            offset,
          },
        }),
      (page) => {
        if (!page.items.length) {
          const filtered = Object.entries(filters).some(([k, v]) => v !== DEFAULTS[k]);
          return emptyState(
            filtered ? "No log matches these filters" : "No logs yet",
            filtered ? "Lower the level, widen the time range or change the search." : "Logs appear here shortly after a deployed server writes them.",
          );
        }
        return [
          table(
            [
              { label: "Time", render: (l) => h("span", { title: dateTime(l.timestamp) }, clockTime(l.timestamp)) },
              { label: "Level", render: (l) => badge(l.level) },
              { label: "Message", className: "message", render: (l) => messageCell(projectId, l) },
              { label: "Source", render: (l) => l.source || "—" },
              { label: "Deployment", render: (l) => deploymentName(deployments, l.deployment_id) },
            ],
            page.items,
            { caption: "Logs" },
          ),
          pager({
            ...page,
            onPage: (next) => {
              offset = next;
              load();
            },
          }),
        ];
      },
    );

  mount(
    slot("logs"),
    filterBar(
      [
        rangeField(filters.range),
        field({
          label: "Level",
          name: "level",
          kind: "select",
          value: filters.level,
          options: [
            { value: "", label: "Every level" },
            { value: "debug", label: "Debug and above" },
            { value: "info", label: "Info and above" },
            { value: "warn", label: "Warnings and above" },
            { value: "error", label: "Errors and above" },
            { value: "fatal", label: "Fatal only" },
          ],
        }),
        deploymentField(deployments, filters.deployment_id),
        field({ label: "Search messages", name: "text", kind: "search", value: filters.text }),
      ],
      (values) => {
        filters = { ...filters, ...values };
        offset = 0;
        writeFilters(filters, DEFAULTS);
        load();
      },
      { submitLabel: "Search" },
    ),
    results,
  );
  mount(slot("logs-actions"), button("Refresh", () => load(), { variant: "secondary", small: true }));
  load();
}
