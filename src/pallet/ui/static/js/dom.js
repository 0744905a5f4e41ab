// Building DOM without a framework: h() for HTML, s() for SVG, and swap() to replace a
// region's children while keeping keyboard focus on the element with the same data-key.
// Text always goes in as text nodes, never as HTML, so API data cannot inject markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: h("a", {href: "#/"}, "Home"). */
export function h(tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element: s("rect", {x: 0, y: 0, width: 4, height: 4}). */
export function s(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replace the children of `region`; focus and text selection inside it survive when the
 * new content has an element with the same data-key as the focused one. */
export function swap(region, ...children) {
  const active = document.activeElement;
  const key = active && region.contains(active) ? active.dataset.key : undefined;
  region.replaceChildren();
  append(region, children);
  if (key) {
    const again = region.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
}

/** `fn` at most once per `ms`, the last call winning (trailing debounce). */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** A view's heading; the router moves focus here when the view opens. */
export function viewTitle(...children) {
  return h("h2", { class: "view-title", tabindex: -1, "data-key": "view-title" }, ...children);
}

/** A table inside a region that scrolls sideways on its own on narrow screens, so the page
 * itself never does; the region is focusable so keyboards can scroll it. */
export function scrollTable(label, head, rows, { empty = "Nothing to show." } = {}) {
  if (!rows.length) return h("p", { class: "muted empty" }, empty);
  // On phones each row becomes a small card whose cells name their column (data-label).
  for (const row of rows) {
    [...row.children].forEach((cell, i) => {
      if (head[i] && !cell.dataset.label) cell.dataset.label = head[i].label;
    });
  }
  return h(
    "div",
    { class: "table-wrap", role: "region", "aria-label": label, tabindex: 0 },
    h(
      "table",
      { class: "stack" },
      h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col", class: c.cls }, c.label)))),
      h("tbody", {}, rows),
    ),
  );
}

/** Say `text` in the page's status line (a polite live region) for a few seconds. */
export function announce(text, { error = false } = {}) {
  const line = document.getElementById("announce");
  if (!line) return;
  line.textContent = text;
  line.classList.toggle("error", error);
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => {
    line.textContent = "";
  }, 5000);
}

/** Make `container`'s children exactly `elements`, in order, touching only what differs: an
 * element already in its place is left alone (no re-layout of hundreds of unchanged tiles). */
export function syncChildren(container, elements) {
  elements.forEach((el, i) => {
    const at = container.children[i];
    if (at !== el) container.insertBefore(el, at || null);
  });
  while (container.children.length > elements.length) container.lastElementChild.remove();
}
