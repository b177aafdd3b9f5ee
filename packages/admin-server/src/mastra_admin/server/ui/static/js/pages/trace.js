// One trace: a waterfall of its spans; pick one to read its input, output,
// attributes and error. Below: the trace's logs and scores.

import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { clockTime, dateTime, duration, pretty } from "../lib/format.js";
import { projectContext } from "../lib/context.js";
import { waterfall } from "../lib/waterfall.js";
import { badge, emptyState, errorState, facts, fill, table } from "../lib/ui.js";

function jsonBlock(title, value, { error = false } = {}) {
  const empty =
    value === null ||
    value === undefined ||
    (typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 0) ||
    (Array.isArray(value) && value.length === 0);
  return h(
    "section",
    { dataset: { part: title.toLowerCase() } },
    h("h3", {}, title),
    empty ? h("p", { class: "muted" }, "none") : h("pre", { class: ["json", error ? "error" : ""], tabindex: "0" }, pretty(value)),
  );
}

function spanDetail(span) {
  return h(
    "div",
    { class: "span-detail", dataset: { spanId: span.span_id } },
    h("h3", {}, span.name),
    facts([
      ["Status", badge(span.status)],
      ["Type", span.span_type || "—"],
      ["Duration", duration(span.duration_ms)],
      ["Started", h("span", { title: dateTime(span.start_time) }, clockTime(span.start_time))],
      ["Entity", span.entity_name || span.entity_id || "—"],
      ["Span id", h("code", {}, span.span_id)],
    ]),
    span.error ? jsonBlock("Error", span.error, { error: true }) : null,
    jsonBlock("Input", span.input),
    jsonBlock("Output", span.output),
    jsonBlock("Attributes", span.attributes),
    jsonBlock("Metadata", span.metadata),
    span.events && span.events.length ? jsonBlock("Events", span.events) : null,
  );
}

export async function render({ params }) {
  const { projectId, traceId } = params;
  try {
    await projectContext(projectId, "Trace");
  } catch (error) {
    mount(slot("summary"), errorState(error));
    mount(slot("waterfall"));
    mount(slot("span"));
    mount(slot("trace-logs"));
    mount(slot("trace-scores"));
    return;
  }
  const tree = await fill(
    slot("summary"),
    () => api(`/api/projects/${projectId}/traces/${traceId}`),
    ({ trace, spans }) => [
      facts([
        ["Name", trace.name],
        ["Status", badge(trace.status)],
        ["Started", dateTime(trace.start_time)],
        ["Duration", duration(trace.duration_ms)],
        ["Spans", String(spans.length)],
        ["Trace id", h("code", {}, trace.trace_id)],
      ]),
    ],
  );
  if (!tree) {
    mount(slot("waterfall"), h("p", { class: "muted" }, "The trace could not be loaded."));
    mount(slot("span"));
    mount(slot("trace-logs"));
    mount(slot("trace-scores"));
    return;
  }
  const spanSlot = slot("span");
  const show = (span, { scroll = false } = {}) => {
    mount(spanSlot, spanDetail(span));
    // Side by side on wide screens; on narrow ones the detail is below: bring it into view.
    if (scroll && window.matchMedia("(max-width: 900px)").matches) {
      spanSlot.closest("section").scrollIntoView({ block: "start" });
    }
  };
  const first = tree.spans.find((s) => s.span_id === tree.roots[0]) || tree.spans[0];
  mount(slot("waterfall"), waterfall(tree, { onSelect: (span) => show(span, { scroll: true }), selectedId: first?.span_id }));
  if (first) show(first);
  else mount(spanSlot, h("p", { class: "muted" }, "No spans."));

  fill(
    slot("trace-logs"),
    () => api(`/api/projects/${projectId}/logs`, { query: { trace_id: traceId, limit: 200 } }),
    (page) =>
      page.items.length
        ? table(
            [
              { label: "Time", render: (l) => h("span", { title: dateTime(l.timestamp) }, clockTime(l.timestamp)) },
              { label: "Level", render: (l) => badge(l.level) },
              { label: "Message", className: "message", render: (l) => l.message },
            ],
            page.items,
            { caption: "Logs of this trace" },
          )
        : emptyState("No logs for this trace", "Logs written while handling this request show here."),
  );
  fill(
    slot("trace-scores"),
    () => api(`/api/projects/${projectId}/scores`, { query: { trace_id: traceId, limit: 200 } }),
    (page) =>
      page.items.length
        ? table(
            [
              { label: "Scorer", render: (s) => s.name },
              { label: "Value", render: (s) => String(s.value) },
              { label: "Reason", className: "message", render: (s) => s.reason || "—" },
            ],
            page.items,
            { caption: "Scores of this trace" },
          )
        : emptyState("No scores for this trace", "Scorers (evals) that rate this trace's output report here."),
  );
}
