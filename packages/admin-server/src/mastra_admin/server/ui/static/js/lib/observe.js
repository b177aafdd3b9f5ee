// Shared by the observability pages: time ranges, filters kept in the URL (so a
// reload or a shared link shows the same view), and the deployment filter.

import { h } from "./dom.js";
import { field } from "./ui.js";

export const RANGES = [
  { value: "15m", label: "Last 15 minutes", ms: 15 * 60e3 },
  { value: "1h", label: "Last hour", ms: 3600e3 },
  { value: "6h", label: "Last 6 hours", ms: 6 * 3600e3 },
  { value: "24h", label: "Last 24 hours", ms: 24 * 3600e3 },
  { value: "7d", label: "Last 7 days", ms: 7 * 86400e3 },
  { value: "30d", label: "Last 30 days", ms: 30 * 86400e3 },
  { value: "all", label: "All time", ms: null },
];

export function rangeMs(value) {
  return RANGES.find((r) => r.value === value)?.ms ?? null;
}

export function rangeStart(value) {
  const ms = rangeMs(value);
  return ms ? new Date(Date.now() - ms).toISOString() : undefined;
}

export function readFilters(defaults) {
  const query = new URLSearchParams(window.location.search);
  const out = { ...defaults };
  for (const key of Object.keys(defaults)) {
    if (query.has(key)) out[key] = query.get(key);
  }
  return out;
}

export function writeFilters(values, defaults) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) {
    if (value !== "" && value !== undefined && value !== null && value !== defaults[key]) query.set(key, value);
  }
  const search = query.toString();
  window.history.replaceState(null, "", search ? `?${search}` : window.location.pathname);
}

export function deploymentField(deployments, value) {
  return field({
    label: "Deployment",
    name: "deployment_id",
    kind: "select",
    value,
    options: [
      { value: "", label: "Every deployment" },
      ...deployments.map((d) => ({ value: d.id, label: `${d.type} · ${d.branch}` })),
    ],
  });
}

export function rangeField(value) {
  return field({ label: "Time", name: "range", kind: "select", value, options: RANGES });
}

/** A filter bar: applies on submit and on any select change. */
export function filterBar(fields, onApply, { submitLabel = "Apply" } = {}) {
  const formEl = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filters" },
    fields,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "button secondary" }, submitLabel)),
  );
  const values = () => {
    const out = {};
    for (const el of formEl.elements) if (el.name) out[el.name] = el.value.trim();
    return out;
  };
  formEl.addEventListener("submit", (event) => {
    event.preventDefault();
    onApply(values());
  });
  formEl.addEventListener("change", (event) => {
    if (event.target.tagName === "SELECT") onApply(values());
  });
  return formEl;
}

export function deploymentName(deployments, id) {
  const d = deployments.find((x) => x.id === id);
  return d ? `${d.type} · ${d.branch}` : id ? id.slice(0, 8) : "—";
}
