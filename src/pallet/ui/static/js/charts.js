// Small SVG charts: a resource gauge (capacity, allocated, used) and a stacked share bar.
// Each chart is an image with a text alternative that carries the same numbers.

import { h, s } from "./dom.js";
import { amount, num, pct } from "./format.js";

/** Capacity as the track, allocated as the fill, used as a thinner dark bar inside it. */
export function resourceGauge(resource, total) {
  const { capacity, allocated, used } = total;
  const W = 300;
  const H = 28;
  const frac = (x) => (capacity > 0 ? Math.min(1, Math.max(0, x / capacity)) : 0);
  const usedText = used === null ? "" : `, ${amount(resource.key, used)} used`;
  const label =
    capacity > 0
      ? `${resource.label}: ${amount(resource.key, allocated)} of ${amount(resource.key, capacity)} allocated (${pct(allocated, capacity)})${usedText}`
      : `${resource.label}: none in the cluster`;
  const svg = s(
    "svg",
    { class: "gauge", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": label },
    s("title", {}, label),
    s("rect", { class: "gauge-track", x: 0, y: 0, width: W, height: H, rx: 4 }),
    s("rect", { class: "gauge-alloc", x: 0, y: 0, width: W * frac(allocated), height: H, rx: 4 }),
  );
  if (used !== null && capacity > 0) {
    svg.append(
      s("rect", { class: "gauge-used", x: 0, y: H * 0.35, width: W * frac(used), height: H * 0.3 }),
    );
  }
  return h(
    "section",
    { class: "card gauge-card", "aria-labelledby": `g-${resource.key}`, "data-resource": resource.key },
    h("h3", { id: `g-${resource.key}` }, resource.label),
    h(
      "p",
      { class: "big" },
      capacity > 0
        ? [h("span", { class: "alloc-pct" }, pct(allocated, capacity)), h("span", { class: "muted" }, " allocated")]
        : h("span", { class: "muted" }, "none in the cluster"),
    ),
    svg,
    h(
      "dl",
      { class: "figures" },
      h("dt", {}, "Capacity"),
      h("dd", { "data-figure": "capacity", "data-value": capacity }, amount(resource.key, capacity)),
      h("dt", {}, h("span", { class: "key key-alloc", "aria-hidden": "true" }), "Allocated"),
      h("dd", { "data-figure": "allocated", "data-value": allocated }, amount(resource.key, allocated)),
      h("dt", {}, h("span", { class: "key key-used", "aria-hidden": "true" }), "Used"),
      h(
        "dd",
        { "data-figure": "used", "data-value": used ?? "" },
        used === null ? "not reported" : amount(resource.key, used),
      ),
    ),
  );
}

/** parts: [{label, value, cls}] as one bar, with a list of the same numbers under it. */
export function shareBar(title, parts, emptyText) {
  const total = parts.reduce((a, p) => a + p.value, 0);
  const W = 300;
  const H = 16;
  const svg = s("svg", {
    class: "share",
    viewBox: `0 0 ${W} ${H}`,
    preserveAspectRatio: "none",
    "aria-hidden": "true",
    focusable: "false",
  });
  if (total === 0) {
    svg.append(s("rect", { class: "share-empty", x: 0, y: 0, width: W, height: H, rx: 3 }));
  }
  let x = 0;
  for (const p of parts) {
    if (!p.value) continue;
    const w = (W * p.value) / total;
    svg.append(s("rect", { class: `share-part ${p.cls}`, x, y: 0, width: w, height: H }));
    x += w;
  }
  return [
    svg,
    total === 0
      ? h("p", { class: "muted" }, emptyText)
      : h(
          "ul",
          { class: "share-list", "aria-label": title },
          parts
            .filter((p) => p.value)
            .map((p) =>
              h(
                "li",
                { "data-part": p.label },
                h("span", { class: `dot ${p.cls}`, "aria-hidden": "true" }),
                h("span", {}, p.label),
                h("strong", {}, num(p.value, 0)),
              ),
            ),
        ),
  ];
}
