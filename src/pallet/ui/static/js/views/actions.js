// What a user can do to an app: scale, restart, destroy, each behind a dialog. A deployment
// already running locks the app (409); the dialog then offers to force it, as Marathon does.

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
