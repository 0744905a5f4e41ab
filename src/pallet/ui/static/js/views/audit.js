// Audit: every write to the master (and every refused request), who made it and how it
// ended, newest first (GET /v1/audit; the master keeps it when authentication is on).

import { api } from "../api.js";
import { h, scrollTable, swap, viewTitle } from "../dom.js";
import { ago } from "../format.js";

const HEAD = [
  { label: "When" },
  { label: "Who" },
  { label: "Request" },
  { label: "Outcome" },
  { label: "From" },
];

function row(e) {
  const who = e.uid ? `${e.uid}${e.kind && e.kind !== "user" ? ` (${e.kind})` : ""}` : "anonymous";
  return h(
    "tr",
    { class: `outcome-${e.outcome}` },
    h("td", { title: e.time }, ago(e.time)),
    h("td", {}, who),
    h("td", {}, h("code", {}, `${e.method} ${e.path}`)),
    h("td", {}, `${e.outcome} (${e.status})`),
    h("td", {}, e.client || "—"),
  );
}

export function auditView() {
  const region = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const root = h(
    "div",
    { class: "view" },
    viewTitle("Audit log"),
    h("p", { class: "muted" }, "Writes and refused requests, newest first (the last 200)."),
    region,
  );
  let loading = false;
  async function load() {
    if (loading) return;
    loading = true;
    try {
      const { entries } = await api.audit(200);
      swap(region, scrollTable("Audit log", HEAD, entries.map(row), { empty: "No writes yet." }));
    } catch (err) {
      const why = err.status === 404 ? "Authentication is off on this master: nothing is audited." : err.message;
      swap(region, h("p", { class: "muted" }, why));
    } finally {
      loading = false;
    }
  }
  load();
  // A change seen on the event stream was someone's write: read the log again.
  return { title: "Audit", root, render: (_state, kinds) => kinds.size && load() };
}
