// What a user can do to an app: scale, restart, destroy, each behind a dialog. A deployment
// already running locks the app (409); the dialog then offers to force it, as Marathon does.
// And to a deployment: promote it past its canaries, or roll it back.

import { api } from "../api.js";
import { modal } from "../dialog.js";
import { announce, h } from "../dom.js";
import { want } from "../store.js";

function lockedError(e) {
  if (e.status === 409 && Array.isArray(e.body?.deployments)) {
    const err = new Error(`${e.message}`);
    err.retry = "Force";
    return err;
  }
  return e;
}

export function scaleApp(app) {
  const input = h("input", {
    type: "number",
    id: "scale-instances",
    name: "instances",
    min: 0,
    step: 1,
    value: app.instances,
    required: true,
    inputmode: "numeric",
  });
  return modal({
    title: `Scale ${app.id}`,
    submitLabel: "Scale",
    body: [
      h("p", {}, `Now ${app.tasksRunning ?? 0} running of ${app.instances} wanted.`),
      h("div", { class: "field" }, h("label", { for: "scale-instances" }, "Instances"), input),
    ],
    run: async (_form, force) => {
      const n = Number(input.value);
      if (input.value.trim() === "" || !Number.isInteger(n) || n < 0) {
        throw new Error("Instances must be a whole number, 0 or more.");
      }
      try {
        await api.scaleApp(app.id, n, force);
      } catch (e) {
        throw lockedError(e);
      }
      announce(`Scaling ${app.id} to ${n} ${n === 1 ? "instance" : "instances"}.`);
      want("apps", "deployments", "tasks", "queue");
    },
  });
}

export function restartApp(app) {
  return modal({
    title: `Restart ${app.id}?`,
    submitLabel: "Restart",
    body: h("p", {}, `Every instance of ${app.id} is replaced by a new one, following its upgrade strategy.`),
    run: async (_form, force) => {
      try {
        await api.restartApp(app.id, force);
      } catch (e) {
        throw lockedError(e);
      }
      announce(`Restarting ${app.id}.`);
      want("apps", "deployments", "tasks");
    },
  });
}

export function destroyApp(app) {
  return modal({
    title: `Destroy ${app.id}?`,
    submitLabel: "Destroy",
    danger: true,
    body: h(
      "p",
      {},
      `This kills all ${app.tasksRunning ?? 0} running ${app.tasksRunning === 1 ? "task" : "tasks"} of `,
      h("strong", {}, app.id),
      " and removes the app. It cannot be undone.",
    ),
    run: async (_form, force) => {
      try {
        await api.destroyApp(app.id, force);
      } catch (e) {
        throw lockedError(e);
      }
      announce(`Destroying ${app.id}.`);
      want("apps", "deployments", "tasks", "queue", "nodes");
    },
  });
}

/** The three buttons of one app; `key` keeps focus on them across re-renders. */
export function appActions(app, { onDestroyed } = {}) {
  const b = (label, cls, fn) =>
    h(
      "button",
      {
        type: "button",
        class: `btn small ${cls}`,
        "data-key": `${label}:${app.id}`,
        "aria-label": `${label} ${app.id}`,
        onclick: async () => {
          const ok = await fn(app);
          if (ok && label === "Destroy" && onDestroyed) onDestroyed();
        },
      },
      label,
    );
  return h(
    "div",
    { class: "row-actions" },
    b("Scale", "", scaleApp),
    b("Restart", "", restartApp),
    b("Destroy", "danger", destroyApp),
  );
}

export function promoteDeployment(d) {
  return modal({
    title: `Promote ${d.affectedApps.join(", ")}?`,
    submitLabel: "Promote",
    body: h(
      "p",
      {},
      `The ${d.canary.instances} canary ${d.canary.instances === 1 ? "instance is" : "instances are"} ready. `,
      "Promoting replaces the remaining instances with the new version.",
    ),
    run: async () => {
      await api.promoteDeployment(d.id);
      announce(`Promoted deployment ${d.id}.`);
      want("apps", "deployments", "tasks");
    },
  });
}

export function rollBackDeployment(d) {
  return modal({
    title: `Roll back ${d.affectedApps.join(", ")}?`,
    submitLabel: "Roll back",
    danger: true,
    body: h(
      "p",
      {},
      "The deployment stops and the version that ran before it is deployed again, ",
      "keeping the minimum healthy capacity.",
    ),
    run: async () => {
      await api.rollBackDeployment(d.id);
      announce(`Rolling back deployment ${d.id}.`);
      want("apps", "deployments", "tasks", "queue");
    },
  });
}

/** A deployment's buttons: Promote while it waits at its canaries, and Roll back. */
export function deploymentActions(d) {
  const b = (label, cls, fn) =>
    h(
      "button",
      {
        type: "button",
        class: `btn small ${cls}`,
        "data-key": `${label}:${d.id}`,
        "aria-label": `${label} deployment of ${d.affectedApps.join(", ")}`,
        onclick: () => fn(d),
      },
      label,
    );
  const waiting = d.canary && d.canary.paused && !d.canary.promoted;
  return h(
    "div",
    { class: "row-actions" },
    waiting ? b("Promote", "", promoteDeployment) : null,
    b("Roll back", "danger", rollBackDeployment),
  );
}
