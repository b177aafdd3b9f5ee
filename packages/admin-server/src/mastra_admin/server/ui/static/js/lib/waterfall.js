// One trace as a waterfall: spans in tree order, each a bar placed by its start and
// length on the trace's time line. Rows are buttons: click (or Enter) shows the span;
// arrow keys move between rows.

import { h } from "./dom.js";
import { duration, parseDate } from "./format.js";
import { badge } from "./ui.js";

function spanEnd(span) {
  const end = parseDate(span.end_time);
  if (end) return end.getTime();
  const start = parseDate(span.start_time).getTime();
  return start + (span.duration_ms || 0);
}

/** Spans in depth-first order with their depth; spans whose parent is unknown start a tree. */
export function orderSpans(tree) {
  const byId = new Map(tree.spans.map((s) => [s.span_id, s]));
  const children = tree.children || {};
  const seen = new Set();
  const rows = [];
  const byStart = (a, b) => parseDate(a.start_time) - parseDate(b.start_time);
  const visit = (span, depth) => {
    if (seen.has(span.span_id)) return;
    seen.add(span.span_id);
    rows.push({ span, depth });
    const kids = (children[span.span_id] || []).map((id) => byId.get(id)).filter(Boolean);
    kids.sort(byStart).forEach((kid) => visit(kid, depth + 1));
  };
  const roots = (tree.roots || []).map((id) => byId.get(id)).filter(Boolean);
  roots.sort(byStart).forEach((span) => visit(span, 0));
  [...tree.spans].sort(byStart).forEach((span) => visit(span, 0));
  return rows;
}

export function waterfall(tree, { onSelect, selectedId } = {}) {
  const rows = orderSpans(tree);
  if (!rows.length) return h("p", { class: "muted" }, "This trace has no spans.");
  const start = Math.min(...rows.map((r) => parseDate(r.span.start_time).getTime()));
  const end = Math.max(...rows.map((r) => spanEnd(r.span)));
  const total = Math.max(end - start, 1);

  const ticks = h(
    "div",
    { class: "wf-ticks", "aria-hidden": "true" },
    [0, 0.25, 0.5, 0.75, 1].map((f) => {
      const tick = h("span", { class: "wf-tick" }, f === 0 ? "0" : duration(total * f));
      tick.style.left = `${f * 100}%`;
      return tick;
    }),
  );

  const list = h("ol", { class: "waterfall", "aria-label": "Spans by start time" });
  const buttons = [];
  const select = (row, buttonEl) => {
    for (const b of buttons) b.setAttribute("aria-pressed", String(b === buttonEl));
    onSelect?.(row.span);
  };

  rows.forEach((row, index) => {
    const { span, depth } = row;
    const spanStart = parseDate(span.start_time).getTime() - start;
    const length = Math.max(spanEnd(span) - parseDate(span.start_time).getTime(), 0);
    const bar = h("span", { class: ["wf-bar", span.status === "error" ? "wf-bar-error" : ""] });
    bar.style.left = `${(spanStart / total) * 100}%`;
    bar.style.width = `max(3px, ${(length / total) * 100}%)`;
    const name = h(
      "span",
      { class: "wf-name" },
      h("span", { class: "wf-label" }, span.name),
      span.span_type ? h("span", { class: "wf-type" }, span.span_type.replaceAll("_", " ")) : null,
    );
    name.style.paddingLeft = `${depth * 1.1}rem`;
    const rowButton = h(
      "button",
      {
        type: "button",
        class: "wf-row",
        "aria-pressed": String(span.span_id === selectedId),
        dataset: { spanId: span.span_id },
        "aria-label": `${span.name}, ${span.status}, ${duration(span.duration_ms ?? length)}, starts at +${duration(spanStart)}`,
      },
      name,
      h("span", { class: "wf-track" }, bar),
      h("span", { class: "wf-duration" }, span.status === "error" ? badge("error") : null, duration(span.duration_ms ?? length)),
    );
    rowButton.addEventListener("click", () => select(row, rowButton));
    rowButton.addEventListener("keydown", (event) => {
      const next = event.key === "ArrowDown" ? index + 1 : event.key === "ArrowUp" ? index - 1 : null;
      if (next !== null && buttons[next]) {
        event.preventDefault();
        buttons[next].focus();
      }
    });
    buttons.push(rowButton);
    list.append(h("li", {}, rowButton));
  });

  return h(
    "div",
    { class: "waterfall-wrap" },
    h("div", { class: "wf-header" }, h("span", { class: "wf-name muted" }, "Span"), h("span", { class: "wf-track" }, ticks), h("span", { class: "wf-duration muted" }, "Duration")),
    list,
  );
}
