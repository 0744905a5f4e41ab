// The "Tetris" picture of a node: one bin per resource, filled bottom-up with its tasks in
// their apps' colours; a dark tick marks what the tasks actually use (CPU and memory).

import { colorOf, OTHER } from "./colors.js";
import { h, s } from "./dom.js";
import { amount, pct, RESOURCES } from "./format.js";
import { nodeStack } from "./packing.js";

/** The resources the cluster has at all (GPU bins only when some node has GPUs). */
export function binResources(nodes) {
  const gpus = nodes.some((n) => (n.capacity?.gpus || 0) > 0);
  return RESOURCES.filter((r) => r.key !== "gpus" || gpus);
}

function describe(node, resources) {
  const parts = resources.map((r) => {
    const cap = node.capacity?.[r.key] || 0;
    const alloc = node.allocated?.[r.key] || 0;
    const used = node.used?.[r.key];
    const u = typeof used === "number" ? `, ${amount(r.key, used)} used` : "";
    return `${r.label} ${amount(r.key, alloc)} of ${amount(r.key, cap)} allocated (${pct(alloc, cap)})${u}`;
  });
  const n = (node.tasks || []).length;
  const upkeep =
    (node.maintenance ? `, maintenance ${node.maintenance.phase}` : "") +
    (node.supervisor?.backing_off_until ? ", agent crash-looping" : "");
  return `${node.hostname} (${node.state}${upkeep}), ${n} ${n === 1 ? "task" : "tasks"}: ${parts.join("; ")}`;
}

/**
 * One node's bins as an SVG. size: {w, h, gap} of one bin. `ctx` holds the lookups
 * (tasksById, appsById, appOrder) shared by every node of one render.
 */
export function nodeBins(node, resources, ctx, size = { w: 12, h: 56, gap: 3 }) {
  const { segments, other } = nodeStack(node, ctx.tasksById, ctx.appsById, ctx.appOrder);
  const width = resources.length * (size.w + size.gap) - size.gap;
  const svg = s("svg", {
    class: "bins",
    width,
    height: size.h,
    viewBox: `0 0 ${width} ${size.h}`,
    "aria-hidden": "true",
    focusable: "false",
  });
  resources.forEach((r, i) => {
    const x = i * (size.w + size.gap);
    const cap = node.capacity?.[r.key] || 0;
    svg.append(
      s("rect", { class: "bin-bg", x: 0.5 + x, y: 0.5, width: size.w - 1, height: size.h - 1 }),
    );
    if (cap <= 0) {
      svg.append(s("line", { class: "bin-none", x1: x, y1: size.h, x2: x + size.w, y2: 0 }));
      return;
    }
    const inner = size.h - 2;
    let y = size.h - 1;
    const place = (value, fill, attrs) => {
      const hgt = Math.min(y - 1, (inner * value) / cap);
      if (hgt <= 0) return;
      y -= hgt;
      svg.append(
        s("rect", { x: x + 1, y, width: size.w - 2, height: hgt, fill, ...attrs }),
      );
    };
    for (const seg of segments) {
      const value = seg.amount[r.key];
      if (value > 0) place(value, colorOf(seg.app), { class: "seg", "data-app": seg.app });
    }
    if (other[r.key] > 0) place(other[r.key], OTHER, { class: "seg seg-other" });
    const used = node.used?.[r.key];
    if (typeof used === "number" && used > 0) {
      const uy = Math.max(1, size.h - 1 - (inner * Math.min(used, cap)) / cap);
      svg.append(s("rect", { class: "used", x, y: uy - 1, width: size.w, height: 2 }));
    }
  });
  return svg;
}

/** Bin sizes that let a grid of `count` nodes show each well: big bins for a handful of
 * nodes, small ones for hundreds. */
export function binSize(count) {
  if (count <= 8) return { w: 18, h: 100, gap: 4 };
  if (count <= 48) return { w: 12, h: 60, gap: 3 };
  return { w: 8, h: 36, gap: 2 };
}

/** A node as a link to its page: its bins and its name. */
export function nodeTile(node, resources, ctx, { size = binSize(1), compact = false } = {}) {
  const label = describe(node, resources);
  return h(
    "a",
    {
      class: `tile state-${String(node.state).toLowerCase()}${compact ? " compact" : ""}${
        node.supervisor?.backing_off_until ? " looping" : ""
      }`,
      href: `#/nodes/${encodeURIComponent(node.id)}`,
      title: label,
      "aria-label": label,
      "data-key": `node:${node.id}`,
      "data-node": node.id,
    },
    nodeBins(node, resources, ctx, size),
    h("span", { class: "tile-name" }, node.hostname),
    node.supervisor?.backing_off_until ? h("span", { class: "tile-flag" }, "agent restarting") : null,
    node.maintenance ? h("span", { class: "tile-flag maint" }, `${node.maintenance.mode.toLowerCase()}: window ${node.maintenance.phase}`) : null,
  );
}

/** The legend: what the bins are and which colour is which app (and grey, when some bin
 * holds allocation no known task explains). */
export function legend(resources, apps, { withOther = false } = {}) {
  const order = resources.map((r) => `${r.short} = ${r.label}`).join(", ");
  return h(
    "div",
    { class: "legend" },
    h("p", { class: "legend-key" }, `Bins left to right: ${order}. `, h("span", { class: "used-key", "aria-hidden": "true" }), " actual use."),
    h(
      "ul",
      { class: "legend-apps", "aria-label": "Apps by colour" },
      apps.map((a) =>
        h(
          "li",
          {},
          h("span", { class: "swatch", style: `background:${colorOf(a.id)}`, "aria-hidden": "true" }),
          h("a", { href: `#/services${a.id}` }, a.id),
        ),
      ),
      withOther
        ? h("li", {}, h("span", { class: "swatch", style: `background:${OTHER}`, "aria-hidden": "true" }), "other")
        : null,
    ),
  );
}

/** Whether any of `nodes` has allocation its known tasks do not explain. */
export function hasOther(nodes, ctx) {
  return nodes.some((n) => {
    const { other } = nodeStack(n, ctx.tasksById, ctx.appsById, ctx.appOrder);
    return Object.values(other).some((v) => v > 1e-9);
  });
}

/** The shared lookups for a render of many nodes. `stamp` changes whenever anything a
 * node's picture depends on besides the node itself changes (apps' sizes, their order). */
export function binContext(state) {
  return {
    tasksById: new Map(state.tasks.map((t) => [t.id, t])),
    appsById: new Map(state.apps.map((a) => [a.id, a])),
    appOrder: state.apps.map((a) => a.id),
    stamp: state.apps.map((a) => `${a.id}:${a.cpus}:${a.mem}:${a.disk}:${a.gpus}`).join("|"),
  };
}

/** Tiles (as list items) remembered between renders: a node whose picture has not changed
 * keeps its element, so re-rendering hundreds of nodes costs little and focus stays put. */
export function tileCache() {
  let cache = new Map();
  return (node, resources, ctx, opts) => {
    const sig = JSON.stringify([
      node.state,
      node.hostname,
      node.capacity,
      node.allocated,
      node.used,
      node.maintenance?.phase ?? null,
      node.supervisor?.backing_off_until ?? null,
      (node.tasks || []).map((id) => ctx.tasksById.get(id)?.appId ?? "?"),
      resources.map((r) => r.key),
      opts.size,
      opts.compact,
      ctx.stamp,
    ]);
    const hit = cache.get(node.id);
    if (hit && hit.sig === sig) return hit.el;
    const el = h("div", { role: "listitem", class: "tile-item" }, nodeTile(node, resources, ctx, opts));
    cache.set(node.id, { sig, el });
    if (cache.size > 4 * (opts.expected || 1000)) cache = new Map([[node.id, { sig, el }]]);
    return el;
  };
}
