// Services: every app with its instances, version and deployment progress, and one app's
// page with its tasks, last failure, how clients reach it (DNS, VIPs, LB) and definition.

import { h, scrollTable, swap, viewTitle } from "../dom.js";
import { amount, clock, num } from "../format.js";
import { appCondition } from "../packing.js";
import { api } from "../api.js";
import { deploymentsByApp } from "../store.js";
import { appActions, deploymentActions } from "./actions.js";
import { appLink, taskTable } from "./tasks.js";

export function conditionBadge(app) {
  const c = appCondition(app);
  return h("span", { class: `badge ap-${c}` }, c);
}

/** `queued`: the app's /v2/queue item, if some instances have no node yet. */
function instances(app, queued) {
  const running = app.tasksRunning ?? 0;
  const staged = app.tasksStaged ?? 0;
  const healthy = app.tasksHealthy ?? 0;
  const unhealthy = app.tasksUnhealthy ?? 0;
  const extra = [];
  if (staged) extra.push(`${staged} staged`);
  if (healthy || unhealthy) extra.push(`${healthy} healthy`);
  if (unhealthy) extra.push(`${unhealthy} unhealthy`);
  return h(
    "div",
    { class: "instances" },
    h("span", { class: "count", "data-running": running, "data-instances": app.instances }, `${running} / ${app.instances}`),
    h("span", { class: "muted small" }, extra.length ? ` ${extra.join(", ")}` : " running"),
    queued?.count
      ? h(
          "a",
          { class: "small waiting", href: "#/queue" },
          queued.delay?.timeLeftSeconds > 0
            ? `${queued.count} backing off after failures`
            : `${queued.count} waiting for a node`,
        )
      : null,
  );
}

function deploymentCell(app, deployments) {
  if (!deployments.length) return h("span", { class: "muted" }, "–");
  return deployments.map((d) => {
    const actions = (d.currentActions || []).map((a) => a.action).join(", ");
    const target = Math.max(app.instances, 1);
    return h(
      "div",
      { class: "deploy" },
      h("progress", {
        max: target,
        value: Math.min(app.tasksRunning ?? 0, target),
        "aria-label": `Deployment of ${app.id}: ${app.tasksRunning ?? 0} of ${app.instances} running`,
      }),
      h("span", { class: "small" }, `step ${d.currentStep}/${d.totalSteps}${actions ? ` · ${actions}` : ""}`),
      d.canary && d.canary.paused && !d.canary.promoted
        ? h("span", { class: "small warn canary-note", "data-canary": d.id }, `${d.canary.instances} canary ready, waiting to be promoted`)
        : null,
      deploymentActions(d),
    );
  });
}

function resources(app) {
  const parts = [`${num(app.cpus)} cpu`, amount("mem", app.mem)];
  if (app.disk) parts.push(`${amount("disk", app.disk)} disk`);
  if (app.gpus) parts.push(`${num(app.gpus)} gpu`);
  return parts.join(" · ");
}

export function servicesView() {
  const region = h("div", { class: "region" });
  const root = h(
    "div",
    { class: "view" },
    h(
      "div",
      { class: "title-row" },
      viewTitle("Services"),
      h("a", { class: "btn primary", href: "#/create" }, "Create app"),
    ),
    region,
  );
  return {
    title: "Services",
    root,
    render(state) {
      const byApp = deploymentsByApp();
      const waiting = new Map(state.queue.map((q) => [q.app?.id, q]));
      const rows = state.apps.map((app) =>
        h(
          "tr",
          { "data-app": app.id },
          h("td", {}, appLink(app.id)),
          h("td", {}, conditionBadge(app)),
          h("td", {}, instances(app, waiting.get(app.id))),
          h("td", { class: "opt small" }, resources(app)),
          h("td", { class: "opt", title: app.version || "" }, clock(app.versionInfo?.lastConfigChangeAt || app.version)),
          h("td", {}, deploymentCell(app, byApp.get(app.id) || [])),
          h("td", {}, appActions(app)),
        ),
      );
      swap(
        region,
        state.loaded.has("apps")
          ? scrollTable(
              "Apps",
              [
                { label: "App" },
                { label: "Status" },
                { label: "Instances" },
                { label: "Per instance", cls: "opt" },
                { label: "Version", cls: "opt" },
                { label: "Deployment" },
                { label: "Actions" },
              ],
              rows,
              { empty: "No apps yet. Create one to see it packed onto the nodes." },
            )
          : h("p", { class: "muted" }, "Loading…"),
      );
    },
  };
}

function field(name, value) {
  return [h("dt", {}, name), h("dd", {}, value ?? "–")];
}

// Where clients reach the app: Mesos-DNS names, VIPs and the edge load balancers.
function reachCard(reach) {
  const body = !reach
    ? h("p", { class: "muted" }, "Loading…")
    : reach.error
      ? h("p", { class: "muted" }, reach.error)
      : h(
          "dl",
          { class: "facts", "data-key": "reach" },
          field("DNS", h("code", { class: "break" }, reach.dns.a)),
          field("SRV", h("code", { class: "break" }, reach.dns.srv)),
          field("Alias", h("code", { class: "break" }, reach.dns.pallet)),
          ...reach.vips.flatMap((v) =>
            field(
              "VIP",
              h("span", {}, h("code", { class: "break" }, `${v.name || v.address}:${v.port}`), ` (${v.address})`),
            ),
          ),
          ...(reach.lb.length
            ? reach.lb.flatMap((e) =>
                field(
                  `LB ${e.lb}`,
                  h(
                    "span",
                    { class: "break" },
                    [e.address, ...(e.urls || []).map((u) => `${u} via ${e.via}`)].filter(Boolean).join(", ") || "–",
                  ),
                ),
              )
            : field("Load balancer", h("span", { class: "muted" }, "none serves this app"))),
        );
  return h("section", { class: "card", "aria-labelledby": "reach-title" }, h("h3", { id: "reach-title" }, "Reachable as"), body);
}

export function appDetailView(appId) {
  const region = h("div", { class: "region" });
  const root = h(
    "div",
    { class: "view" },
    h("p", { class: "crumbs" }, h("a", { href: "#/services" }, "Services"), " / "),
    viewTitle(appId),
    region,
  );
  let definitionOpen = false;
  let reach = null;
  let reachVersion = null;
  let last = null;
  return {
    title: appId,
    root,
    render(state) {
      last = state;
      const app = state.apps.find((a) => a.id === appId);
      if (app && app.version !== reachVersion) {
        // Names follow the definition, LB endpoints its labels: fetch once per version.
        reachVersion = app.version;
        api.appDiscovery(appId).then(
          (doc) => {
            reach = doc;
            if (last) this.render(last);
          },
          (e) => {
            reach = { error: `Cannot say how it is reached: ${e.message}` };
            if (last) this.render(last);
          },
        );
      }
      if (!app) {
        swap(region, h("p", { class: "muted" }, state.loaded.has("apps") ? `No app ${appId}. It may have been destroyed.` : "Loading…"));
        return;
      }
      const nodes = new Map(state.nodes.map((n) => [n.id, n]));
      const tasks = state.tasks.filter((t) => t.appId === appId);
      const deployments = deploymentsByApp().get(appId) || [];
      const waiting = state.queue.find((q) => q.app?.id === appId);
      const failure = app.lastTaskFailure;
      const { tasks: _t, lastTaskFailure: _f, deployments: _d, ...definition } = app;
      swap(
        region,
        h(
          "div",
          { class: "node-top" },
          h(
            "section",
            { class: "card" },
            h("dl", { class: "facts" },
              field("Status", conditionBadge(app)),
              field("Instances", instances(app, waiting)),
              field("Per instance", resources(app)),
              field("Command", h("code", { class: "break" }, app.cmd || (app.args || []).join(" ") || "–")),
              field("Version", clock(app.version)),
              field("Deployment", deploymentCell(app, deployments)),
            ),
            appActions(app, { onDestroyed: () => (location.hash = "#/services") }),
          ),
          h(
            "section",
            { class: "card" },
            h("h3", {}, "Last task failure"),
            failure
              ? h("dl", { class: "facts" },
                  field("Task", h("a", { href: `#/tasks/${encodeURIComponent(failure.taskId)}`, class: "mono break" }, failure.taskId)),
                  field("State", failure.state),
                  field("When", clock(failure.timestamp)),
                  field("Host", failure.host),
                  field("Reason", h("span", { class: "reason" }, failure.message || "–")),
                )
              : h("p", { class: "muted" }, "None recorded."),
          ),
        ),
        reachCard(reach),
        h(
          "section",
          { class: "card", "aria-labelledby": "at-title" },
          h("h3", { id: "at-title" }, `Tasks (${tasks.length})`),
          taskTable(tasks, nodes, { label: `Tasks of ${appId}`, omit: ["app"], empty: "No tasks." }),
        ),
        h(
          "details",
          {
            class: "card",
            open: definitionOpen,
            ontoggle: (e) => {
              definitionOpen = e.currentTarget.open;
            },
          },
          h("summary", { "data-key": "definition" }, "Definition (JSON)"),
          h("pre", { class: "json", tabindex: 0 }, JSON.stringify(definition, null, 2)),
        ),
      );
    },
  };
}
