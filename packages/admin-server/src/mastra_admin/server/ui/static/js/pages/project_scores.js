// Scores from scorers (evals), filterable by name and value.

import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { dateTime, timeAgo } from "../lib/format.js";
import { projectContext } from "../lib/context.js";
import { deploymentField, deploymentName, filterBar, rangeField, rangeStart, readFilters, writeFilters } from "../lib/observe.js";
import { button, emptyState, errorState, field, fill, pager, table } from "../lib/ui.js";

const LIMIT = 50;
const DEFAULTS = { range: "7d", name: "", min_value: "", max_value: "", deployment_id: "" };

export async function render({ params }) {
  const projectId = params.projectId;
  let deployments = [];
  try {
    await projectContext(projectId, "Scores");
    deployments = await api(`/api/projects/${projectId}/deployments`);
  } catch (error) {
    mount(slot("scores"), errorState(error));
    return;
  }
  let filters = readFilters(DEFAULTS);
  let offset = 0;
  const results = h("div", { "aria-live": "polite" });
  const load = () =>
    fill(
      results,
      () =>
        api(`/api/projects/${projectId}/scores`, {
          query: {
            start: rangeStart(filters.range),
            name: filters.name,
            min_value: filters.min_value,
            max_value: filters.max_value,
            deployment_id: filters.deployment_id,
            limit: LIMIT,
            offset,
          },
        }),
      (page) => {
        if (!page.items.length) {
          return emptyState(
            "No scores",
            "Scores arrive when a server runs scorers (evals) on its agents' answers and exports them. Widen the time range if you expect some.",
          );
        }
        return [
          table(
            [
              { label: "When", render: (s) => h("span", { title: dateTime(s.timestamp) }, timeAgo(s.timestamp)) },
              { label: "Score", render: (s) => h("code", {}, s.name) },
              { label: "Value", render: (s) => String(s.value) },
              { label: "Scorer", render: (s) => s.scorer || "—" },
              { label: "Reason", className: "message", render: (s) => s.reason || "—" },
              {
                label: "Trace",
                render: (s) => (s.trace_id ? h("a", { href: `/projects/${projectId}/traces/${s.trace_id}` }, "open") : "—"),
              },
              { label: "Deployment", render: (s) => deploymentName(deployments, s.deployment_id) },
            ],
            page.items,
            { caption: "Scores" },
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
    slot("scores"),
    filterBar(
      [
        rangeField(filters.range),
        field({ label: "Score name", name: "name", kind: "search", value: filters.name }),
        field({ label: "At least", name: "min_value", kind: "number", step: "any", value: filters.min_value }),
        field({ label: "At most", name: "max_value", kind: "number", step: "any", value: filters.max_value }),
        deploymentField(deployments, filters.deployment_id),
      ],
      (values) => {
        filters = { ...filters, ...values };
        offset = 0;
        writeFilters(filters, DEFAULTS);
        load();
      },
    ),
    results,
  );
  mount(slot("scores-actions"), button("Refresh", () => load(), { variant: "secondary", small: true }));
  load();
}
