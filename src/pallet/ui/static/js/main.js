// The dashboard's entry point: hash routes to views, the live connection indicator, and one
// render per animation frame when data changes.

import { signOut, token } from "./auth.js";
import { h } from "./dom.js";
import { start, state, subscribe } from "./store.js";
import { createView } from "./views/appform.js";
import { dashboardView } from "./views/dashboard.js";
import { jobDetailView, jobsView } from "./views/jobs.js";
import { nodeDetailView, nodesView } from "./views/nodes.js";
import { auditView } from "./views/audit.js";
import { queueView } from "./views/queue.js";
import { appDetailView, servicesView } from "./views/services.js";
import { taskDetailView, tasksView } from "./views/tasks.js";

const ROUTES = [
  [/^\/?$/, () => dashboardView(), "dashboard"],
  [/^\/nodes\/?$/, () => nodesView(), "nodes"],
  [/^\/nodes\/(.+)$/, (m) => nodeDetailView(decodeURIComponent(m[1])), "nodes"],
  [/^\/services\/?$/, () => servicesView(), "services"],
  [/^\/create\/?$/, () => createView(), "services"],
  [/^\/services(\/.+)$/, (m) => appDetailView(decodeURIComponent(m[1])), "services"],
  [/^\/tasks\/?$/, () => tasksView(), "tasks"],
  [/^\/tasks\/(.+)$/, (m) => taskDetailView(decodeURIComponent(m[1])), "tasks"],
  [/^\/queue\/?$/, () => queueView(), "queue"],
  [/^\/jobs\/?$/, () => jobsView(), "jobs"],
  [/^\/jobs\/(.+)$/, (m) => jobDetailView(decodeURIComponent(m[1])), "jobs"],
  [/^\/audit\/?$/, () => auditView(), "audit"],
];

const main = document.getElementById("main");
let view = null;

function notFound(path) {
  const root = h(
    "div",
    { class: "view" },
    h("h2", { class: "view-title", tabindex: -1 }, "Not found"),
    h("p", {}, `Nothing lives at ${path}. `, h("a", { href: "#/" }, "Back to the dashboard")),
  );
  return { title: "Not found", root, render() {} };
}

function route() {
  const path = location.hash.replace(/^#/, "") || "/";
  let next = null;
  let section = null;
  for (const [pattern, make, name] of ROUTES) {
    const m = pattern.exec(path);
    if (m) {
      next = make(m);
      section = name;
      break;
    }
  }
  next = next || notFound(path);
  view?.destroy?.();
  view = next;
  main.replaceChildren(view.root);
  document.title = `${view.title} · Pallet`;
  for (const link of document.querySelectorAll("nav a[data-section]")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  view.render(state, new Set());
  main.dataset.route = path;
  // Move focus to the new view's heading so keyboard and screen reader users start there;
  // not on the first load, where the page itself has focus.
  if (route.moved) view.root.querySelector(".view-title")?.focus({ preventScroll: false });
  route.moved = true;
  window.scrollTo(0, 0);
}

function showConnection() {
  const el = document.getElementById("live");
  const words = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…" };
  el.textContent = words[state.connection] || state.connection;
  el.dataset.state = state.connection;
  const info = state.info;
  const who = document.getElementById("cluster-name");
  if (info && who) who.textContent = `${info.name} ${info.version} · ${info.leader}`;
  const problems = Object.entries(state.errors);
  const banner = document.getElementById("problem");
  banner.hidden = problems.length === 0;
  banner.textContent = problems.length ? `Cannot load ${problems.map(([k, v]) => `${k} (${v})`).join(", ")}. Retrying on the next change.` : "";
  const cluster = state.cluster;
  document.getElementById("insecure").hidden = !cluster?.insecure;
  document.getElementById("audit-link").hidden = !cluster?.auth;
}

subscribe((kinds) => {
  showConnection();
  const onlyMeta = [...kinds].every((k) => k === "connection" || k === "info");
  if (view && !onlyMeta) view.render(state, kinds);
});

document.querySelector(".skip").addEventListener("click", (e) => {
  e.preventDefault(); // the hash is the route; skipping must not change it
  main.focus();
});
if (token()) {
  // Signed in to a master with authentication on: offer to sign out.
  const out = h("button", { type: "button", class: "btn sign-out" }, "Sign out");
  out.addEventListener("click", signOut);
  document.querySelector("header.top").append(out);
}
window.addEventListener("hashchange", route);
route();
showConnection();
start();
