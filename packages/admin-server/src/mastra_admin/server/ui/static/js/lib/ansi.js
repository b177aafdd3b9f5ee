// ANSI colour codes (SGR) in build output rendered as styled spans; every other
// escape sequence (cursor moves, erase line, titles) is dropped.

import { h } from "./dom.js";

const PALETTE_16 = [
  "#1e1e1e", "#e5534b", "#57ab5a", "#c69026", "#539bf5", "#b083f0", "#39c5cf", "#d1d7e0",
  "#636e7b", "#ff938a", "#6bc46d", "#daaa3f", "#6cb6ff", "#dcbdfb", "#56d4dd", "#f0f3f6",
];

function color256(n) {
  if (n < 16) return PALETTE_16[n];
  if (n < 232) {
    const i = n - 16;
    const steps = [0, 95, 135, 175, 215, 255];
    const r = steps[Math.floor(i / 36)];
    const g = steps[Math.floor(i / 6) % 6];
    const b = steps[i % 6];
    return `rgb(${r}, ${g}, ${b})`;
  }
  const level = 8 + (n - 232) * 10;
  return `rgb(${level}, ${level}, ${level})`;
}

function freshStyle() {
  return { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false };
}

function applyCodes(style, params) {
  const codes = params === "" ? [0] : params.split(";").map((p) => (p === "" ? 0 : Number(p)));
  for (let i = 0; i < codes.length; i += 1) {
    const code = codes[i];
    if (code === 0) Object.assign(style, freshStyle());
    else if (code === 1) style.bold = true;
    else if (code === 2) style.dim = true;
    else if (code === 3) style.italic = true;
    else if (code === 4) style.underline = true;
    else if (code === 7) style.inverse = true;
    else if (code === 22) style.bold = style.dim = false;
    else if (code === 23) style.italic = false;
    else if (code === 24) style.underline = false;
    else if (code === 27) style.inverse = false;
    else if (code >= 30 && code <= 37) style.fg = PALETTE_16[code - 30];
    else if (code >= 90 && code <= 97) style.fg = PALETTE_16[code - 90 + 8];
    else if (code === 39) style.fg = null;
    else if (code >= 40 && code <= 47) style.bg = PALETTE_16[code - 40];
    else if (code >= 100 && code <= 107) style.bg = PALETTE_16[code - 100 + 8];
    else if (code === 49) style.bg = null;
    else if (code === 38 || code === 48) {
      const target = code === 38 ? "fg" : "bg";
      if (codes[i + 1] === 5 && codes[i + 2] !== undefined) {
        style[target] = color256(codes[i + 2]);
        i += 2;
      } else if (codes[i + 1] === 2 && codes[i + 4] !== undefined) {
        style[target] = `rgb(${codes[i + 2]}, ${codes[i + 3]}, ${codes[i + 4]})`;
        i += 4;
      }
    }
  }
}

function isPlain(style) {
  return !style.fg && !style.bg && !style.bold && !style.dim && !style.italic && !style.underline && !style.inverse;
}

function styledSpan(text, style) {
  const classes = ["ansi"];
  if (style.bold) classes.push("ansi-bold");
  if (style.dim) classes.push("ansi-dim");
  if (style.italic) classes.push("ansi-italic");
  if (style.underline) classes.push("ansi-underline");
  const span = h("span", { class: classes });
  const fg = style.inverse ? style.bg || "#0d1117" : style.fg;
  const bg = style.inverse ? style.fg || "#e6edf3" : style.bg;
  if (fg) span.style.color = fg;
  if (bg) span.style.backgroundColor = bg;
  span.textContent = text;
  return span;
}

// CSI sequences, OSC sequences (ended by BEL or ST), and lone two-byte escapes.
// eslint-disable-next-line no-control-regex
const ESCAPES = /\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

/**
 * A fragment for one line of output. `state` carries the style across lines
 * (a colour may be set on one line and reset on a later one).
 */
export function renderAnsiLine(line, state = freshStyle()) {
  const fragment = document.createDocumentFragment();
  // A carriage return rewrites the line (progress bars): keep what was written last.
  let text = line;
  const cr = text.lastIndexOf("\r", text.length - 2);
  if (cr !== -1) text = text.slice(cr + 1);
  text = text.replace(/\r$/, "");
  let last = 0;
  const emit = (chunk) => {
    if (!chunk) return;
    fragment.append(isPlain(state) ? document.createTextNode(chunk) : styledSpan(chunk, state));
  };
  ESCAPES.lastIndex = 0;
  let match;
  while ((match = ESCAPES.exec(text)) !== null) {
    emit(text.slice(last, match.index));
    last = ESCAPES.lastIndex;
    if (match[2] === "m") applyCodes(state, match[1]);
  }
  emit(text.slice(last));
  return fragment;
}

export function newAnsiState() {
  return freshStyle();
}

/** The text without any escape sequence (for searching and copying). */
export function stripAnsi(text) {
  return text.replace(ESCAPES, "");
}
