// Charts over time: request counts, p50/p95 latency and error rate (SVG), from the
// project's time series; and the latest metric events.

import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { clockTime, dateTime, duration, number, percent } from "../lib/format.js";
import { projectContext } from "../lib/context.js";
import { timeChart } from "../lib/charts.js";
import { deploymentField, filterBar, RANGES, rangeMs, readFilters, writeFilters } from "../lib/observe.js";
import { button, emptyState, errorState, field, fill, table } from "../lib/ui.js";

const DEFAULTS = { range: "24h", signal: "traces", deployment_id: "" };
const INTERVALS = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400];
const SIGNALS = [
  { value: "traces", label: "Requests (traces)" },
  { value: "spans", label: "Spans" },
  { value: "logs", label: "Log lines" },
];

/** The time window and an interval giving at most about 60 buckets. */
export function timeWindow(range, now = Date.now()) {
  const span = rangeMs(range) || 86400e3;
  const interval = INTERVALS.find((s) => span / (s * 1000) <= 60) || 86400;
  const step = interval * 1000;
  const end = Math.ceil(now / step) * step;
  const start = Math.floor((now - span) / step) * step;
  return { start: new Date(start).toISOString(), end: new Date(end).toISOString(), interval };
}

function stat(label, value) {
  return h("div", { class: "stat" }, h("div", { class: "stat-value" }, value), h("div", { class: "stat-label" }, label));
}

function charts(buckets, signal) {
  const total = buckets.reduce((sum, b) => sum + b.count, 0);
  if (!total) return null;
  const errors = buckets.reduce((sum, b) => sum + b.errors, 0);
  const dates = buckets.map((b) => new Date(b.start));
  const p95 = buckets.map((b) => b.p95_ms).filter((v) => v !== null && v !== undefined);
  const signalLabel = SIGNALS.find((s) => s.value === signal)?.label || signal;
  return [
    h(
      "div",
      { class: "stats" },
      stat(signalLabel, number(total)),
      stat("Errors", number(errors)),
      stat("Error rate", percent((errors / total) * 100)),
      signal !== "logs" ? stat("Slowest p95", p95.length ? duration(Math.max(...p95)) : "—") : null,
    ),
    h(
      "div",
      { class: "charts" },
      timeChart({
        title: `${signalLabel} per interval`,
        kind: "bar",
        buckets: dates,
        series: [{ name: "count", tone: "count", values: buckets.map((b) => b.count) }],
        yFormat: (v) => number(Math.round(v)),
      }),
      signal !== "logs"
        ? timeChart({
            title: "Latency (p50 and p95)",
            buckets: dates,
            series: [
              { name: "p50", tone: "p50", values: buckets.map((b) => b.p50_ms) },
              { name: "p95", tone: "p95", values: buckets.map((b) => b.p95_ms) },
            ],
            yFormat: (v) => duration(v),
          })
        : null,
      timeChart({
        title: "Error rate",
        buckets: dates,
        series: [{ name: "error rate", tone: "errors", values: buckets.map((b) => (b.count ? b.error_rate * 100 : null)) }],
        yFormat: (v) => percent(v, v < 10 ? 1 : 0),
      }),
    ),
  ];
}

export async function render({ params }) {
  const projectId = params.projectId;
  let deployments = [];
  try {
    await projectContext(projectId, "Metrics");
    deployments = await api(`/api/projects/${projectId}/deployments`);
  } catch (error) {
    mount(slot("charts"), errorState(error));
    mount(slot("metrics"));
    return;
  }
  let filters = readFilters(DEFAULTS);
  const results = h("div", { "aria-live": "polite" });

  const load = () =>
    fill(
      results,
      () => {
        const w = timeWindow(filters.range);
        return api(`/api/projects/${projectId}/timeseries`, {
          query: {
            start: w.start,
            end: w.end,
            interval_s: w.interval,
            signal: filters.signal,
            deployment_id: filters.deployment_id,
          },
        });
      },
      (buckets) =>
        charts(buckets, filters.signal) ||
        emptyState(
          "Nothing in this time range",
          "Charts fill in as deployed servers handle requests. Widen the time range, or send a request to a deployed server.",
        ),
    );

  mount(
    slot("charts"),
    filterBar(
      [
        field({
          label: "Time",
          name: "range",
          kind: "select",
          value: filters.range,
          options: RANGES.filter((r) => r.ms && r.ms >= 3600e3),
        }),
        field({ label: "Count", name: "signal", kind: "select", value: filters.signal, options: SIGNALS }),
        deploymentField(deployments, filters.deployment_id),
      ],
      (values) => {
        filters = { ...filters, ...values };
        writeFilters(filters, DEFAULTS);
        load();
      },
    ),
    results,
  );
  mount(slot("charts-actions"), button("Refresh", () => load(), { variant: "secondary", small: true }));
  load();

  fill(
    slot("metrics"),
    () => api(`/api/projects/${projectId}/metrics`, { query: { limit: 25 } }),
    (page) =>
      page.items.length
        ? table(
            [
              { label: "Time", render: (m) => h("span", { title: dateTime(m.timestamp) }, clockTime(m.timestamp)) },
              { label: "Metric", render: (m) => h("code", {}, m.name) },
              { label: "Type", render: (m) => m.type },
              { label: "Value", render: (m) => number(m.value) },
              {
                label: "Labels",
                className: "message",
                render: (m) => Object.entries(m.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—",
              },
            ],
            page.items,
            { caption: "Recent metrics" },
          )
        : emptyState("No metrics yet", "Servers export metrics (token usage, durations) as they work; they show here."),
  );
}
