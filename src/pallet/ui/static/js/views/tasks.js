// Tasks: the live ones (state, node, ports, start), the ones that ended with their reason,
// and one task's page with its log viewer.

import { colorOf } from "../colors.js";
import { h, scrollTable, swap, viewTitle } from "../dom.js";
import { ago, clock, shortId, stateName } from "../format.js";
import { isTerminal } from "../store.js";
import { logViewer } from "./logs.js";

export function stateBadge(state) {
  return h("span", { class: `badge st-${stateName(state)}` }, stateName(state));
}

const JOB_OWNER = /^job:([^/]+)\/(.+)$/;

/** A task's owner: an app's page, or for a job task ("job:<job>/<run>") its job's page. */
export function appLink(appId) {
  const job = JOB_OWNER.exec(appId || "");
  if (job) {
    return h("a", { href: `#/jobs/${encodeURIComponent(job[1])}`, class: "app-link" }, `job ${job[1]}`);
  }
  return h(
    "a",
    { href: `#/services${appId}`, class: "app-link" },
    h("span", { class: "swatch", style: `background:${colorOf(appId)}`, "aria-hidden": "true" }),
    appId,
  );
}

function nodeLink(task, nodes) {
  const node = task.slaveId ? nodes.get(task.slaveId) : undefined;
  if (!task.slaveId) return task.host || "–";
  return h("a", { href: `#/nodes/${encodeURIComponent(task.slaveId)}` }, node?.hostname || task.host);
}

/** Live tasks as a table; `columns` may leave out "app" or "node". */
export function taskTable(tasks, nodes, { label = "Tasks", omit = [], empty } = {}) {
  const head = [
    { label: "Task" },
    omit.includes("app") ? null : { label: "App" },
    { label: "State" },
    omit.includes("node") ? null : { label: "Node" },
    { label: "Ports", cls: "opt" },
    { label: "Started" },
    { label: "Version", cls: "opt" },
  ].filter(Boolean);
  const rows = tasks.map((t) =>
    h(
      "tr",
      { "data-task": t.id },
      h("td", {}, h("a", { href: `#/tasks/${encodeURIComponent(t.id)}`, title: t.id, "data-key": `task:${t.id}` }, shortId(t.id))),
      omit.includes("app") ? null : h("td", {}, appLink(t.appId)),
      h("td", {}, stateBadge(t.state)),
      omit.includes("node") ? null : h("td", {}, nodeLink(t, nodes)),
      h("td", { class: "opt mono" }, (t.ports || []).join(", ") || "–"),
      h("td", { title: t.startedAt || t.stagedAt || "" }, clock(t.startedAt || t.stagedAt)),
      h("td", { class: "opt", title: t.version || "" }, clock(t.version)),
    ),
  );
  return scrollTable(label, head, rows, { empty: empty || "No tasks." });
}

/** Ended tasks: those seen ending through the event stream, plus each app's last failure. */
export function endedTasks(state) {
  const out = [...state.ended];
  const seen = new Set(out.map((t) => t.id));
  for (const app of state.apps) {
    const f = app.lastTaskFailure;
    if (!f || seen.has(f.taskId)) continue;
    seen.add(f.taskId);
    out.push({
      id: f.taskId,
      appId: f.appId,
      host: f.host,
      slaveId: f.slaveId,
      state: f.state,
      message: f.message,
      version: f.version,
      endedAt: f.timestamp,
    });
  }
  return out.sort((a, b) => String(b.endedAt).localeCompare(String(a.endedAt)));
}

function endedTable(ended, nodes) {
  const rows = ended.map((t) =>
    h(
      "tr",
      { "data-task": t.id },
      h("td", {}, h("a", { href: `#/tasks/${encodeURIComponent(t.id)}`, title: t.id, "data-key": `ended:${t.id}` }, shortId(t.id))),
      h("td", {}, appLink(t.appId)),
      h("td", {}, stateBadge(t.state)),
      h("td", { class: "opt" }, nodeLink(t, nodes)),
      h("td", { title: t.endedAt || "" }, ago(t.endedAt)),
      h("td", { class: "reason" }, t.message || "–"),
    ),
  );
  return scrollTable(
    "Ended tasks",
    [{ label: "Task" }, { label: "App" }, { label: "State" }, { label: "Node", cls: "opt" }, { label: "Ended" }, { label: "Reason" }],
    rows,
    { empty: "No task has ended since this page opened, and no app has a recorded failure." },
  );
}

function matches(task, needle) {
  if (!needle) return true;
  return [task.id, task.appId, task.host, task.state].some((v) => String(v || "").toLowerCase().includes(needle));
}

export function tasksView() {
  let needle = "";
  const region = h("div", { class: "region" });
  const filter = h("input", {
    type: "search",
    id: "task-filter",
    placeholder: "app, task id, host or state",
    oninput: () => {
      needle = filter.value.trim().toLowerCase();
      if (last) render(last);
    },
  });
  let last = null;
  const root = h(
    "div",
    { class: "view" },
    viewTitle("Tasks"),
    h("div", { class: "toolbar" }, h("label", { for: "task-filter" }, "Filter"), filter),
    region,
  );
  function render(state) {
    last = state;
    const nodes = new Map(state.nodes.map((n) => [n.id, n]));
    const live = state.tasks.filter((t) => matches(t, needle));
    const ended = endedTasks(state).filter((t) => matches(t, needle));
    swap(
      region,
      h(
        "section",
        { "aria-labelledby": "t-live" },
        h("h3", { id: "t-live" }, `Live (${live.length})`),
        taskTable(live, nodes, { label: "Live tasks", empty: needle ? "No live task matches." : "No tasks are running." }),
      ),
      h(
        "section",
        { "aria-labelledby": "t-ended" },
        h("h3", { id: "t-ended" }, `Ended (${ended.length})`),
        endedTable(ended, nodes),
      ),
    );
  }
  return { title: "Tasks", root, render };
}

function field(name, value) {
  return [h("dt", {}, name), h("dd", {}, value ?? "–")];
}

export function taskDetailView(taskId) {
  let current = null;
  const info = h("div", { class: "region" });
  const viewer = logViewer(taskId, { isLive: () => current !== null && !isTerminal(current.state) });
  const root = h(
    "div",
    { class: "view" },
    h("p", { class: "crumbs" }, h("a", { href: "#/tasks" }, "Tasks"), " / "),
    viewTitle(h("span", { class: "mono break" }, taskId)),
    info,
    viewer.root,
  );
  let lastState = null;
  return {
    title: `Task ${shortId(taskId)}`,
    root,
    render(state) {
      const live = state.tasks.find((t) => t.id === taskId);
      const ended = endedTasks(state).find((t) => t.id === taskId);
      current = live || ended || null;
      if (current && current.state !== lastState) {
        lastState = current.state;
        viewer.nudge();
      }
      const nodes = new Map(state.nodes.map((n) => [n.id, n]));
      if (!current) {
        const loading = !state.loaded.has("tasks");
        swap(info, h("p", { class: "muted" }, loading ? "Loading…" : "This task is not running and has no recorded end here; its log may still be readable."));
        return;
      }
      swap(
        info,
        h(
          "section",
          { class: "card" },
          h(
            "dl",
            { class: "facts" },
            field("App", appLink(current.appId)),
            field("State", stateBadge(current.state)),
            field("Node", nodeLink(current, nodes)),
            field("Ports", (current.ports || []).join(", ") || "–"),
            field("Staged", current.stagedAt ? clock(current.stagedAt) : null),
            field("Started", current.startedAt ? clock(current.startedAt) : null),
            current.endedAt ? field("Ended", clock(current.endedAt)) : null,
            current.message ? field("Reason", h("span", { class: "reason" }, current.message)) : null,
            field("Version", current.version ? clock(current.version) : null),
          ),
        ),
      );
    },
    destroy() {
      viewer.stop();
    },
  };
}
