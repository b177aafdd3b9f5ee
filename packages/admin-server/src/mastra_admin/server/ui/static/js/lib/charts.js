// Time series as SVG: bars for counts, lines for latency and rates. Drawn at the
// width of their container (and again when it changes), with a data table beside
// each chart for screen readers and for reading exact values.

import { h, svg } from "./dom.js";

const MARGIN = { top: 12, right: 16, bottom: 28, left: 56 };

/** A round step for four grid lines that reach at least value (whole steps for counts). */
function niceStep(value, integer) {
  const quarter = value > 0 ? value / 4 : 0.25;
  const exponent = 10 ** Math.floor(Math.log10(quarter));
  let step = 10 * exponent;
  for (const factor of [1, 2, 2.5, 5, 10]) {
    if (quarter <= factor * exponent) {
      step = factor * exponent;
      break;
    }
  }
  return integer ? Math.max(1, Math.ceil(step)) : step;
}

function timeLabel(date, spanMs) {
  if (spanMs > 2 * 86400000) {
    return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  }
  return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

function draw(container, spec) {
  const { buckets, series, kind, yFormat, title, height } = spec;
  const width = Math.max(280, Math.floor(container.clientWidth || 600));
  const innerW = width - MARGIN.left - MARGIN.right;
  const innerH = height - MARGIN.top - MARGIN.bottom;
  const values = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  const integer = values.every((v) => Number.isInteger(v));
  const yMax = niceStep(Math.max(0, ...values), integer) * 4;
  const n = buckets.length;
  const step = n > 0 ? innerW / n : innerW;
  const x = (i) => MARGIN.left + step * i + step / 2;
  const y = (v) => MARGIN.top + innerH - (v / yMax) * innerH;

  const root = svg("svg", {
    class: "chart",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `${title}. ${summary(spec)}`,
  });

  // Horizontal grid with value labels.
  for (let i = 0; i <= 4; i += 1) {
    const value = (yMax / 4) * i;
    const gy = y(value);
    root.append(
      svg("line", { class: "grid", x1: MARGIN.left, x2: width - MARGIN.right, y1: gy, y2: gy }),
      svg("text", { class: "axis-label", x: MARGIN.left - 6, y: gy + 4, "text-anchor": "end" }, yFormat(value)),
    );
  }
  // Time labels, at most about one per 90 px.
  const spanMs = n > 1 ? buckets[n - 1].getTime() - buckets[0].getTime() : 0;
  const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(innerW / 90))));
  for (let i = 0; i < n; i += every) {
    root.append(
      svg("text", { class: "axis-label", x: x(i), y: height - 8, "text-anchor": "middle" }, timeLabel(buckets[i], spanMs)),
    );
  }
  root.append(
    svg("line", {
      class: "axis",
      x1: MARGIN.left,
      x2: width - MARGIN.right,
      y1: MARGIN.top + innerH,
      y2: MARGIN.top + innerH,
    }),
  );

  series.forEach((s, index) => {
    const seriesClass = `series series-${s.tone || index}`;
    if (kind === "bar") {
      const barW = Math.max(1, step * 0.7);
      s.values.forEach((v, i) => {
        if (v === null || v === undefined || v === 0) return;
        const top = y(v);
        root.append(
          svg(
            "rect",
            { class: seriesClass, x: x(i) - barW / 2, y: top, width: barW, height: Math.max(0, MARGIN.top + innerH - top) },
            svg("title", {}, `${buckets[i].toLocaleString()}: ${yFormat(v)} ${s.name}`),
          ),
        );
      });
      return;
    }
    // Lines break where there is no value (an interval without events).
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    if (d) root.append(svg("path", { class: `${seriesClass} line`, d }));
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      root.append(
        svg(
          "circle",
          { class: `${seriesClass} point`, cx: x(i), cy: y(v), r: 3 },
          svg("title", {}, `${buckets[i].toLocaleString()}: ${s.name} ${yFormat(v)}`),
        ),
      );
    });
  });
  container.replaceChildren(root);
}

function summary(spec) {
  return spec.series
    .map((s) => {
      const vals = s.values.filter((v) => v !== null && v !== undefined);
      if (!vals.length) return `${s.name}: no data`;
      return `${s.name}: highest ${spec.yFormat(Math.max(...vals))}`;
    })
    .join("; ");
}

function dataTable(spec) {
  return h(
    "details",
    { class: "chart-data" },
    h("summary", {}, "Show the numbers"),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "data compact" },
        h("caption", { class: "visually-hidden" }, spec.title),
        h(
          "thead",
          {},
          h("tr", {}, h("th", { scope: "col" }, "Interval"), spec.series.map((s) => h("th", { scope: "col" }, s.name))),
        ),
        h(
          "tbody",
          {},
          spec.buckets.map((b, i) =>
            h(
              "tr",
              {},
              h("td", {}, b.toLocaleString()),
              spec.series.map((s) => h("td", {}, s.values[i] === null || s.values[i] === undefined ? "—" : spec.yFormat(s.values[i]))),
            ),
          ),
        ),
      ),
    ),
  );
}

/**
 * A chart figure. spec: {title, buckets: Date[], series: [{name, values, tone}],
 * kind: "bar" | "line", yFormat(value) -> string, height}.
 */
export function timeChart(spec) {
  const full = { kind: "line", height: 200, yFormat: (v) => String(Math.round(v)), ...spec };
  const canvas = h("div", { class: "chart-canvas" });
  const figure = h(
    "figure",
    { class: "chart-figure" },
    h("figcaption", {}, full.title),
    canvas,
    full.series.length > 1
      ? h(
          "ul",
          { class: "legend" },
          full.series.map((s, index) =>
            h("li", {}, h("span", { class: `swatch series-${s.tone || index}`, "aria-hidden": "true" }), s.name),
          ),
        )
      : null,
    dataTable(full),
  );
  let lastWidth = 0;
  const observer = new ResizeObserver(() => {
    const width = canvas.clientWidth;
    if (width && Math.abs(width - lastWidth) > 4) {
      lastWidth = width;
      draw(canvas, full);
    }
  });
  observer.observe(canvas);
  // Draw once as soon as the figure is in the document.
  requestAnimationFrame(() => {
    if (!canvas.firstChild) draw(canvas, full);
  });
  return figure;
}
