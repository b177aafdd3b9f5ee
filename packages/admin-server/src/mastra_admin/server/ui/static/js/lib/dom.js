// Building DOM without a framework: h() for HTML, svg() for SVG, mount() to replace
// a slot's content. Text always goes in as text nodes, never as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function applyProps(el, props, isSvg) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") {
      const names = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
      if (isSvg) el.setAttribute("class", names);
      else el.className = names;
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "style" && typeof value === "object") {
      Object.assign(el.style, value);
    } else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "value" && "value" in el && !isSvg) {
      el.value = value;
      if ("defaultValue" in el) el.defaultValue = value;
    } else if (key === "checked" && !isSvg) {
      // The default too, so that resetting a form brings the box back as it was made.
      el.checked = Boolean(value);
      el.defaultChecked = Boolean(value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
}

function appendChildren(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false || child === "") continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** An HTML element: h("a", {href: "/"}, "Home"). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  applyProps(el, props, false);
  appendChildren(el, children);
  return el;
}

/** An SVG element. */
export function svg(tag, props = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyProps(el, props, true);
  appendChildren(el, children);
  return el;
}

/** Replace the content of target. */
export function mount(target, ...children) {
  target.replaceChildren();
  appendChildren(target, children);
  target.removeAttribute("aria-busy");
  return target;
}

/** The element marked data-slot="name" (in the page skeleton). */
export function slot(name, root = document) {
  const el = root.querySelector(`[data-slot="${name}"]`);
  if (!el) throw new Error(`the page has no slot named ${name}`);
  return el;
}

let counter = 0;
/** A unique id for label/aria wiring. */
export function uid(prefix = "id") {
  counter += 1;
  return `${prefix}-${counter}`;
}
