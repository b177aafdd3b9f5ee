// Traces with filters (time, status, name, deployment, trace id), newest first.

import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { duration, timeAgo } from "../lib/format.js";
import { projectContext } from "../lib/context.js";
import { deploymentField, deploymentName, filterBar, rangeField, rangeStart, readFilters, writeFilters } from "../lib/observe.js";
import { badge, button, emptyState, errorState, field, fill, pager, table } from "../lib/ui.js";

const LIMIT = 50;
const DEFAULTS = { range: "24h", status: "", name: "", deployment_id: "", trace_id: "" };

export async function render({ params }) {
  const projectId = params.projectId;
  let deployments = [];
  try {
    await projectContext(projectId, "Traces");
    deployments = await api(`/api/projects/${projectId}/deployments`);
  } catch (error) {
    mount(slot("traces"), errorState(error));
    return;
  }
  let filters = readFilters(DEFAULTS);
  let offset = 0;
  let waiting = null;
  const results = h("div", { "aria-live": "polite" });

  const load = (poll = false) =>
    fill(
      results,
      () =>
        api(`/api/projects/${projectId}/traces`, {
          query: {
            start: rangeStart(filters.range),
            status: filters.status,
            name: filters.name,
            deployment_id: filters.deployment_id,
            trace_id: filters.trace_id,
            limit: LIMIT,
            offset,
          },
        }),
      (page) => {
        window.clearTimeout(waiting);
        if (!page.items.length) {
          const filtered = Object.entries(filters).some(([k, v]) => v !== DEFAULTS[k]);
          // New traces arrive a few seconds after requests: keep looking while empty.
          waiting = window.setTimeout(() => load(true), 4000);
          return emptyState(
            filtered ? "No trace matches these filters" : "No traces yet",
            filtered
              ? "Widen the time range or clear a filter."
              : "Traces appear here a few seconds after a deployed server handles a request, for example when an agent answers. This list looks again every few seconds.",
          );
        }
        return [
          table(
            [
              {
                label: "Trace",
                className: "message",
                render: (t) => h("a", { href: `/projects/${projectId}/traces/${t.trace_id}` }, t.name || t.trace_id),
              },
              { label: "Status", render: (t) => badge(t.status) },
              { label: "Started", render: (t) => timeAgo(t.start_time) },
              { label: "Duration", render: (t) => duration(t.duration_ms) },
              { label: "Spans", render: (t) => (t.span_count ?? "—") },
              { label: "Deployment", render: (t) => deploymentName(deployments, t.deployment_id) },
            ],
            page.items,
            { caption: "Traces", rowProps: (t) => ({ dataset: { traceId: t.trace_id } }) },
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
      { poll, quiet: poll },
    );

  const apply = (values) => {
    filters = { ...filters, ...values };
    offset = 0;
    writeFilters(filters, DEFAULTS);
    load();
  };

  mount(
    slot("traces"),
    filterBar(
      [
        rangeField(filters.range),
        field({
          label: "Status",
          name: "status",
          kind: "select",
          value: filters.status,
          options: [
            { value: "", label: "Any" },
            { value: "ok", label: "OK" },
            { value: "error", label: "Error" },
            { value: "unset", label: "Unset" },
          ],
        }),
        deploymentField(deployments, filters.deployment_id),
        field({ label: "Name contains", name: "name", value: filters.name, kind: "search" }),
        field({ label: "Trace id", name: "trace_id", value: filters.trace_id, kind: "search", spellcheck: "false" }),
      ],
      apply,
    ),
    results,
  );
  mount(slot("traces-actions"), button("Refresh", () => load(), { variant: "secondary", small: true }));
  load();
}
