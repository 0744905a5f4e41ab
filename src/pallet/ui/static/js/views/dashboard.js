// The first screen: cluster resources, tasks by state, apps by condition, packing, and the
// Tetris view of every node.

import { binContext, binResources, binSize, hasOther, legend, tileCache } from "../bins.js";
import { resourceGauge, shareBar } from "../charts.js";
import { h, swap, syncChildren, viewTitle } from "../dom.js";
import { num, RESOURCES, stateName } from "../format.js";
import { appCondition, countStates, packing, possibleSurplus, totals } from "../packing.js";

const STATE_ORDER = [
  "TASK_RUNNING",
  "TASK_STARTING",
  "TASK_STAGING",
  "TASK_KILLING",
  "TASK_UNREACHABLE",
  "TASK_UNKNOWN",
];

function tasksCard(state) {
  const counts = countStates(state.tasks);
  const recentFailed = state.ended.filter((t) => t.state !== "TASK_FINISHED" && t.state !== "TASK_KILLED").length;
  const states = [...new Set([...STATE_ORDER, ...Object.keys(counts)])];
  const surplus = possibleSurplus(state.apps, state.tasks);
  const parts = states.map((st) => ({
    label: stateName(st),
    value: counts[st] || 0,
    cls: `st-${stateName(st)}`,
  }));
  return h(
    "section",
    { class: "card", "aria-labelledby": "c-tasks", "data-card": "tasks" },
    h("h3", { id: "c-tasks" }, h("a", { href: "#/tasks" }, "Tasks"), " by state"),
    h("p", { class: "big" }, num(state.tasks.length, 0), h("span", { class: "muted" }, " live")),
    shareBar("Tasks by state", parts, "No tasks yet."),
    recentFailed
      ? h("p", { class: "muted small" }, `${recentFailed} failed since this page opened.`)
      : null,
    surplus
      ? h(
          "p",
          { class: "small warn", "data-figure": "surplus" },
          `${surplus} unreachable ${surplus === 1 ? "task was" : "tasks were"} replaced and may still run `,
          "until ",
          h("a", { href: "#/nodes" }, "their nodes"),
          " return (possible surplus).",
        )
      : null,
  );
}

function appsCard(state) {
  const by = { healthy: 0, unhealthy: 0, deploying: 0, suspended: 0 };
  for (const app of state.apps) by[appCondition(app)] += 1;
  const waiting = state.queue.reduce((a, q) => a + (q.count || 0), 0);
  return h(
    "section",
    { class: "card", "aria-labelledby": "c-apps", "data-card": "apps" },
    h("h3", { id: "c-apps" }, h("a", { href: "#/services" }, "Apps")),
    h("p", { class: "big" }, num(state.apps.length, 0), h("span", { class: "muted" }, " apps")),
    shareBar(
      "Apps by condition",
      [
        { label: "healthy", value: by.healthy, cls: "ap-healthy" },
        { label: "deploying", value: by.deploying, cls: "ap-deploying" },
        { label: "unhealthy", value: by.unhealthy, cls: "ap-unhealthy" },
        { label: "suspended", value: by.suspended, cls: "ap-suspended" },
      ],
      "No apps yet.",
    ),
    waiting
      ? h("p", { class: "small" }, h("a", { href: "#/queue" }, `${waiting} waiting for placement`))
      : null,
  );
}

const BOUND_HELP =
  "Lower bound by volume: for each resource, add up what tasks have allocated and count how " +
  "many of the largest active nodes it takes to hold that much; the resource needing the most " +
  "nodes sets the bound. Nodes in use minus that bound is the most a perfect repacking could " +
  "free. It ignores task shapes, ports and constraints, so the real number may be lower.";

function packingCard(state, help) {
  const p = packing(state.nodes);
  const shown = RESOURCES.filter((r) => p.efficiency[r.key] !== null);
  return h(
    "section",
    { class: "card", "aria-labelledby": "c-packing", "data-card": "packing" },
    h("h3", { id: "c-packing" }, "Packing"),
    h(
      "p",
      { class: "big" },
      `${p.inUse}`,
      h("span", { class: "muted" }, ` of ${p.nodes} nodes in use`),
    ),
    shown.length
      ? h(
          "ul",
          { class: "eff-list", "aria-label": "Allocated share of the nodes in use" },
          shown.map((r) =>
            h(
              "li",
              {},
              h("span", {}, r.label),
              h("meter", {
                min: 0,
                max: 1,
                value: p.efficiency[r.key],
                "aria-label": `${r.label} packing efficiency`,
              }),
              h("strong", {}, `${Math.round(100 * p.efficiency[r.key])}%`),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No node runs anything yet."),
    h(
      "p",
      { class: "small" },
      h("span", { "data-figure": "freeable" }, p.freeable > 0 ? `Up to ${p.freeable}` : "No"),
      ` ${p.freeable === 1 ? "node" : "nodes"} could be freed`,
      p.binding
        ? `: what is allocated needs at least ${p.lowerBound} ${p.lowerBound === 1 ? "node" : "nodes"} (${RESOURCES.find((r) => r.key === p.binding).label}).`
        : ".",
      " ",
      h(
        "button",
        {
          type: "button",
          class: "info-btn",
          title: BOUND_HELP,
          "aria-label": "How is this computed?",
          "aria-controls": "bound-help",
          "aria-expanded": String(help.open),
          "data-key": "bound-help-btn",
          onclick: (e) => {
            help.open = !help.open;
            document.getElementById("bound-help").hidden = !help.open;
            e.currentTarget.setAttribute("aria-expanded", String(help.open));
          },
        },
        "?",
      ),
    ),
    h("p", { id: "bound-help", class: "tip", hidden: !help.open }, BOUND_HELP),
  );
}

export function dashboardView() {
  const help = { open: false };
  const tile = tileCache();
  const gauges = h("div", { class: "gauges", role: "group", "aria-label": "Cluster resources" });
  const heading = h("h3", { id: "c-tetris" });
  const tiles = h("div", { class: "tiles", role: "list", "aria-label": "Nodes" });
  const noNodes = h("p", { class: "muted", hidden: true }, "No nodes have registered yet.");
  const legendRegion = h("div");
  const side = h("div", { class: "side" });
  // A fixed skeleton: each part is updated on its own, and the node tiles in place.
  const root = h(
    "div",
    { class: "view" },
    viewTitle("Cluster"),
    gauges,
    h(
      "div",
      { class: "dash-grid" },
      h("section", { class: "card tetris", "aria-labelledby": "c-tetris" }, heading, tiles, noNodes, legendRegion),
      side,
    ),
  );
  return {
    title: "Dashboard",
    root,
    render(state) {
      const t = totals(state.nodes);
      const bins = binResources(state.nodes);
      const ctx = binContext(state);
      const usedApps = new Set(state.tasks.map((task) => task.appId));
      const size = binSize(state.nodes.length);
      const many = state.nodes.length > 48;
      swap(gauges, RESOURCES.map((r) => resourceGauge(r, t[r.key])));
      swap(heading, h("a", { href: "#/nodes" }, "Nodes"), ` (${state.nodes.length}): how they are packed`);
      tiles.classList.toggle("compact-tiles", many);
      syncChildren(tiles, state.nodes.map((n) => tile(n, bins, ctx, { size, compact: many })));
      noNodes.hidden = state.nodes.length > 0 || !state.loaded.has("nodes");
      swap(
        legendRegion,
        legend(bins, state.apps.filter((a) => usedApps.has(a.id)), { withOther: hasOther(state.nodes, ctx) }),
      );
      swap(side, packingCard(state, help), appsCard(state), tasksCard(state));
    },
  };
}
