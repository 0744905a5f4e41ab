// Queue: instances waiting for a node, and why each node said no (Marathon's
// processedOffersSummary: Pallet counts one "offer" per node considered).

import { h, swap, viewTitle } from "../dom.js";
import { ago, amount, num } from "../format.js";
import { appLink } from "./tasks.js";

const REASONS = {
  UnfulfilledRole: "the node is reserved for another role",
  UnfulfilledConstraint: "a placement constraint rules the node out",
  NoCorrespondingReservationFound: "no matching reservation on the node",
  AgentMaintenance: "the node is not active (draining, down or unreachable)",
  InsufficientCpus: "not enough free CPU",
  InsufficientMemory: "not enough free memory",
  InsufficientDisk: "not enough free disk",
  InsufficientGpus: "not enough free GPUs, or the wrong GPU model",
  InsufficientPorts: "the host ports it asks for are taken",
  DeclinedScarceResources: "the node's scarce resources (GPUs) are kept for tasks that need them",
};

/** The most any active node has free of each resource, to compare with what an app asks. */
function largestFree(nodes) {
  const out = { cpus: 0, mem: 0, disk: 0, gpus: 0 };
  for (const n of nodes) {
    if (n.state !== "ACTIVE") continue;
    for (const k of Object.keys(out)) {
      out[k] = Math.max(out[k], (n.capacity?.[k] || 0) - (n.allocated?.[k] || 0));
    }
  }
  return out;
}

function item(q, free) {
  const app = q.app || {};
  const s = q.processedOffersSummary || {};
  const steps = (s.rejectSummaryLastOffers || []).filter((r) => r.declined > 0);
  const considered = s.processedOffersCount ?? 0;
  const asks = ["cpus", "mem", "disk", "gpus"]
    .filter((k) => (app[k] || 0) > 0)
    .map((k) => {
      const short = (app[k] || 0) > free[k];
      return h(
        "li",
        { class: short ? "short" : "" },
        `${k}: asks ${amount(k, app[k])}, the most free on one node is ${amount(k, free[k])}`,
        short ? h("strong", {}, " — no node has enough") : "",
      );
    });
  const delay = q.delay || {};
  return h(
    "li",
    { class: "card queue-item", "data-app": app.id },
    h(
      "div",
      { class: "queue-head" },
      h("h3", {}, appLink(app.id)),
      h("p", { class: "big" }, num(q.count, 0), h("span", { class: "muted" }, ` waiting since ${ago(q.since)}`)),
    ),
    delay.timeLeftSeconds > 0
      ? h("p", {}, `Backing off after failures: next launch attempt in ${delay.timeLeftSeconds}s.`)
      : null,
    steps.length
      ? [
          h("p", {}, `${s.unusedOffersCount ?? 0} of ${considered} nodes considered said no:`),
          h(
            "ul",
            { class: "reasons" },
            steps.map((r) =>
              h(
                "li",
                { "data-reason": r.reason },
                h(
                  "span",
                  { class: "decline-bar", "aria-hidden": "true" },
                  h("span", { style: `width:${Math.round((100 * r.declined) / Math.max(considered, 1))}%` }),
                ),
                h("strong", {}, `${r.declined} × ${r.reason}`),
                h("span", { class: "muted" }, ` — ${REASONS[r.reason] || r.reason}`),
              ),
            ),
          ),
        ]
      : h("p", { class: "muted" }, considered ? `No node declined it at the last attempt (${considered} considered).` : "Not considered yet."),
    h("ul", { class: "asks small" }, asks),
  );
}

function waitingText(waiting) {
  const n = waiting.reduce((a, q) => a + q.count, 0);
  const apps = waiting.length === 1 ? "1 app" : `${waiting.length} apps`;
  return `${n} ${n === 1 ? "instance" : "instances"} of ${apps} ${n === 1 ? "is" : "are"} waiting for a node.`;
}

export function queueView() {
  const region = h("div", { class: "region" });
  const root = h("div", { class: "view" }, viewTitle("Queue"), region);
  return {
    title: "Queue",
    root,
    render(state) {
      const free = largestFree(state.nodes);
      const waiting = state.queue.filter((q) => q.count > 0);
      swap(
        region,
        waiting.length
          ? [
              h("p", { class: "muted" }, waitingText(waiting)),
              h("ul", { class: "queue" }, waiting.map((q) => item(q, free))),
            ]
          : h("p", { class: "muted empty" }, state.loaded.has("queue") ? "Nothing is waiting: every instance has a node." : "Loading…"),
      );
    },
  };
}
