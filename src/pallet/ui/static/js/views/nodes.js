// Nodes: every node as its bins (a grid that holds hundreds), and one node's page with its
// state, attributes, resources and tasks.

import { binContext, binResources, binSize, hasOther, legend, nodeBins, tileCache } from "../bins.js";
import { h, scrollTable, swap, syncChildren, viewTitle } from "../dom.js";
import { ago, amount, num, pct } from "../format.js";
import { taskTable } from "./tasks.js";

/** A node's maintenance window, as `pallet node show` says it: "DRAINING, from … for 2h
 * (pending)"; "" outside the schedule. */
export function maintenanceText(node) {
  const m = node.maintenance;
  if (!m) return "";
  // Nanoseconds past 2^53 lose digits as JSON numbers; milliseconds are all a date needs.
  const start = new Date(m.unavailability.start.nanoseconds / 1e6);
  const ns = m.unavailability.duration?.nanoseconds;
  const span = ns === undefined ? "indefinitely" : `for ${num(Number(ns) / 3.6e12)} h`;
  return `${m.mode}, from ${start.toISOString().replace(".000Z", "Z")} ${span} (${m.phase})`;
}

/** What `pallet up` says of the node's agent: "restarted 6 times, 5 in the last minute;
 * next start in 12 s; it said: …"; "" when nothing supervises it or it never exited. */
export function supervisorText(node, now = Date.now()) {
  const sup = node.supervisor;
  if (!sup) return "";
  const parts = [`${sup.supervisor} restarted its agent ${sup.restarts} ${sup.restarts === 1 ? "time" : "times"}`];
  if (sup.exits_last_minute) parts[0] += `, ${sup.exits_last_minute} in the last minute`;
  if (sup.backing_off_until) {
    const s = Math.max(0, Math.round((Date.parse(sup.backing_off_until) - now) / 1000));
    parts.push(`backing off: next start in ${s} s`);
  }
  if (sup.last_line) parts.push(`it said: ${sup.last_line}`);
  return parts.join("; ");
}

function matches(node, needle) {
  if (!needle) return true;
  const text = [node.id, node.hostname, node.state, ...Object.entries(node.attributes || {}).flat()]
    .join(" ")
    .toLowerCase();
  return text.includes(needle);
}

const SORTS = {
  name: () => 0, // the API already sorts by hostname
  allocated: (a, b) => fill(b) - fill(a),
  free: (a, b) => fill(a) - fill(b),
};

function fill(node) {
  const c = node.capacity || {};
  const a = node.allocated || {};
  return Math.max(c.cpus ? a.cpus / c.cpus : 0, c.mem ? a.mem / c.mem : 0);
}

export function nodesView() {
  let needle = "";
  let sort = "name";
  let last = null;
  const tile = tileCache();
  const region = h("div", { class: "region" });
  const filter = h("input", {
    type: "search",
    id: "node-filter",
    placeholder: "hostname, id, state or attribute",
    oninput: () => {
      needle = filter.value.trim().toLowerCase();
      if (last) render(last);
    },
  });
  const sorter = h(
    "select",
    {
      id: "node-sort",
      onchange: () => {
        sort = sorter.value;
        if (last) render(last);
      },
    },
    h("option", { value: "name" }, "hostname"),
    h("option", { value: "allocated" }, "fullest first"),
    h("option", { value: "free" }, "emptiest first"),
  );
  const root = h(
    "div",
    { class: "view" },
    viewTitle("Nodes"),
    h(
      "div",
      { class: "toolbar" },
      h("label", { for: "node-filter" }, "Filter"),
      filter,
      h("label", { for: "node-sort" }, "Sort by"),
      sorter,
    ),
    region,
  );
  const count = h("p", { class: "muted", role: "status" });
  const tiles = h("div", { class: "tiles", role: "list", "aria-label": "Nodes" });
  const none = h("p", { class: "muted empty", hidden: true });
  const legendRegion = h("div");
  region.append(count, tiles, none, legendRegion);
  function render(state) {
    last = state;
    const bins = binResources(state.nodes);
    const ctx = binContext(state);
    const shown = state.nodes.filter((n) => matches(n, needle)).sort(SORTS[sort]);
    const usedApps = new Set(state.tasks.map((t) => t.appId));
    const size = binSize(shown.length);
    const many = shown.length > 48;
    count.textContent = `${shown.length} of ${state.nodes.length} nodes`;
    tiles.classList.toggle("compact-tiles", many);
    syncChildren(tiles, shown.map((n) => tile(n, bins, ctx, { size, compact: many })));
    none.hidden = shown.length > 0 || !state.loaded.has("nodes");
    none.textContent = state.nodes.length ? "No node matches." : "No nodes have registered yet.";
    swap(
      legendRegion,
      legend(bins, state.apps.filter((a) => usedApps.has(a.id)), { withOther: hasOther(shown, ctx) }),
    );
  }
  return { title: "Nodes", root, render };
}

function resourceRows(node) {
  return binResources([node]).map((r) => {
    const cap = node.capacity?.[r.key] || 0;
    const alloc = node.allocated?.[r.key] || 0;
    const used = node.used?.[r.key];
    return h(
      "tr",
      { "data-resource": r.key },
      h("th", { scope: "row" }, r.label),
      h("td", {}, amount(r.key, cap)),
      h("td", {}, `${amount(r.key, alloc)} (${pct(alloc, cap)})`),
      h("td", {}, typeof used === "number" ? `${amount(r.key, used)} (${pct(used, cap)})` : "–"),
      h("td", {}, amount(r.key, Math.max(0, cap - alloc))),
    );
  });
}

export function nodeDetailView(nodeId) {
  const region = h("div", { class: "region" });
  const title = h("span", {}, nodeId);
  const root = h(
    "div",
    { class: "view" },
    h("p", { class: "crumbs" }, h("a", { href: "#/nodes" }, "Nodes"), " / "),
    viewTitle(title),
    region,
  );
  return {
    title: `Node ${nodeId}`,
    root,
    render(state) {
      const node = state.nodes.find((n) => n.id === nodeId);
      if (!node) {
        swap(region, h("p", { class: "muted" }, state.loaded.has("nodes") ? `No node ${nodeId} is registered.` : "Loading…"));
        return;
      }
      title.textContent = node.hostname;
      const ctx = binContext(state);
      const bins = binResources([node]);
      const tasks = state.tasks.filter((t) => t.slaveId === node.id);
      const attrs = Object.entries(node.attributes || {});
      const usedApps = new Set(tasks.map((t) => t.appId));
      swap(
        region,
        h(
          "div",
          { class: "node-top" },
          h(
            "section",
            { class: "card" },
            h("h3", {}, "Node"),
            h(
              "dl",
              { class: "facts" },
              h("dt", {}, "State"),
              h("dd", {}, h("span", { class: `badge node-${String(node.state).toLowerCase()}` }, node.state)),
              h("dt", {}, "Id"),
              h("dd", { class: "mono break" }, node.id),
              h("dt", {}, "Hostname"),
              h("dd", {}, node.hostname),
              h("dt", {}, "Heartbeat"),
              h("dd", { title: node.last_heartbeat || "" }, ago(node.last_heartbeat)),
              h("dt", {}, "Ports"),
              h("dd", { class: "mono" }, (node.capacity?.ports || []).join(", ") || "–"),
              node.gpu_model ? [h("dt", {}, "GPU model"), h("dd", {}, node.gpu_model)] : null,
              node.maintenance
                ? [h("dt", {}, "Maintenance"), h("dd", { class: "maintenance" }, maintenanceText(node))]
                : null,
              node.supervisor
                ? [h("dt", {}, "Supervisor"), h("dd", { class: "supervisor" }, supervisorText(node))]
                : null,
            ),
            h("h3", {}, "Attributes"),
            attrs.length
              ? h("dl", { class: "facts" }, attrs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]))
              : h("p", { class: "muted" }, "None."),
          ),
          h(
            "section",
            { class: "card node-bins", "aria-labelledby": "nb-title" },
            h("h3", { id: "nb-title" }, "Packing"),
            h(
              "div",
              { class: "big-bins", role: "img", "aria-label": `Bins of ${node.hostname}, filled by its tasks` },
              nodeBins(node, bins, ctx, { w: 40, h: 160, gap: 10 }),
              h("div", { class: "bin-labels", "aria-hidden": "true" }, bins.map((r) => h("span", {}, r.short))),
            ),
            legend(bins, state.apps.filter((a) => usedApps.has(a.id)), { withOther: hasOther([node], ctx) }),
          ),
        ),
        h(
          "section",
          { class: "card", "aria-labelledby": "nr-title" },
          h("h3", { id: "nr-title" }, "Resources"),
          scrollTable(
            "Resources",
            [{ label: "Resource" }, { label: "Capacity" }, { label: "Allocated" }, { label: "Used" }, { label: "Free" }],
            resourceRows(node),
          ),
        ),
        h(
          "section",
          { class: "card", "aria-labelledby": "nt-title" },
          h("h3", { id: "nt-title" }, `Tasks (${tasks.length})`),
          taskTable(tasks, new Map([[node.id, node]]), { label: "Tasks on this node", omit: ["node"], empty: "No tasks on this node." }),
        ),
      );
    },
  };
}
