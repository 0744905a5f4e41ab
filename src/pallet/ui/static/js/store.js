// The dashboard's copy of the cluster, kept live: Marathon's event stream says what changed,
// and the affected lists are fetched again, batched (one fetch per list per window, never two
// at once). Node usage has no events, so nodes (and a waiting queue) refresh every 5 s, and
// jobs too (a cron schedule starts runs without any event).

import { api, eventsUrl } from "./api.js";
import { assignColors } from "./colors.js";

const KINDS = ["nodes", "apps", "tasks", "deployments", "queue", "jobs"];
const PERIODIC_MS = 5000;
const MIN_WINDOW_MS = 250;
const MAX_WINDOW_MS = 1000;
const ENDED_KEPT = 200;

const TERMINAL = new Set([
  "TASK_FINISHED",
  "TASK_FAILED",
  "TASK_KILLED",
  "TASK_ERROR",
  "TASK_LOST",
  "TASK_GONE",
  "TASK_DROPPED",
]);

export function isTerminal(state) {
  return TERMINAL.has(state);
}

// What each Marathon event may have changed.
const AFFECTS = {
  status_update_event: ["tasks", "apps", "nodes", "queue", "jobs"],
  instance_changed_event: ["tasks", "apps"],
  api_post_event: ["apps", "deployments", "queue"],
  app_terminated_event: ["apps", "tasks", "nodes", "queue", "deployments"],
  deployment_info: ["deployments", "apps", "queue"],
  deployment_step_success: ["deployments", "apps", "queue"],
  deployment_step_failure: ["deployments", "apps", "queue"],
  deployment_success: ["deployments", "apps", "queue"],
  deployment_failed: ["deployments", "apps", "queue"],
  health_status_changed_event: ["apps", "tasks"],
  failed_health_check_event: ["apps", "tasks"],
  unhealthy_instance_kill_event: ["apps", "tasks"],
};

export const state = {
  nodes: [],
  apps: [],
  tasks: [],
  deployments: [],
  queue: [],
  /** Metronome's jobs, each with activeRuns and historySummary. */
  jobs: [],
  info: null,
  /** {auth, tls, exposed, insecure} from /v1/cluster. */
  cluster: null,
  /** Tasks that ended while this page was open, newest first, from status_update_event. */
  ended: [],
  loaded: new Set(),
  errors: {},
  /** "connecting", "live", "reconnecting" */
  connection: "connecting",
};

const listeners = new Set();
const pending = new Set();
const inFlight = new Set();
const dirty = new Set();
const lastDuration = {};
let timer = null;
let notifyQueued = false;

/** Call `fn(changedKinds)` after data changes; returns the unsubscribe function. */
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

const changedSince = new Set();

function notify(kind) {
  changedSince.add(kind);
  if (notifyQueued) return;
  notifyQueued = true;
  requestAnimationFrame(() => {
    notifyQueued = false;
    const kinds = new Set(changedSince);
    changedSince.clear();
    for (const fn of listeners) fn(kinds);
  });
}

const LOADERS = {
  nodes: api.nodes,
  apps: api.apps,
  tasks: api.tasks,
  deployments: api.deployments,
  queue: api.queue,
  jobs: api.jobs,
};

async function load(kind) {
  if (inFlight.has(kind)) {
    dirty.add(kind);
    return;
  }
  inFlight.add(kind);
  const started = performance.now();
  try {
    state[kind] = await LOADERS[kind]();
    delete state.errors[kind];
    state.loaded.add(kind);
    if (kind === "apps") assignColors(state.apps.map((a) => a.id));
  } catch (e) {
    state.errors[kind] = e.message;
  } finally {
    lastDuration[kind] = performance.now() - started;
    inFlight.delete(kind);
    notify(kind);
    if (dirty.delete(kind)) want(kind);
  }
}

// The batching window grows with the slowest fetch (a big cluster's lists take longer), so
// an event storm costs at most one fetch per list per window, and never two at once.
function windowMs() {
  const slowest = Math.max(0, ...Object.values(lastDuration));
  return Math.min(MAX_WINDOW_MS, Math.max(MIN_WINDOW_MS, slowest));
}

/** Ask for `kinds` to be fetched again; calls within one window share one fetch each. */
export function want(...kinds) {
  for (const k of kinds) pending.add(k);
  if (timer !== null) return;
  timer = setTimeout(() => {
    timer = null;
    const batch = [...pending];
    pending.clear();
    for (const k of batch) load(k);
  }, windowMs());
}

/** Fetch everything now (first load, reconnects, a tab coming back into view). */
export function refreshAll() {
  for (const k of KINDS) load(k);
  api.info().then(
    (info) => {
      state.info = info;
      notify("info");
    },
    () => {},
  );
  api.cluster().then(
    (cluster) => {
      state.cluster = cluster;
      notify("info");
    },
    () => {},
  );
}

function remember(ev) {
  if (!isTerminal(ev.taskStatus)) return;
  state.ended = [
    {
      id: ev.taskId,
      appId: ev.appId,
      host: ev.host,
      slaveId: ev.slaveId,
      state: ev.taskStatus,
      message: ev.message || "",
      ports: ev.ports || [],
      version: ev.version,
      endedAt: ev.timestamp,
    },
    ...state.ended.filter((t) => t.id !== ev.taskId),
  ].slice(0, ENDED_KEPT);
  notify("ended");
}

function setConnection(value) {
  if (state.connection === value) return;
  state.connection = value;
  notify("connection");
}

let source = null;

/** Open the event stream and the slow periodic refresh. */
export function start() {
  refreshAll();
  source = new EventSource(eventsUrl());
  let wasDown = false;
  source.addEventListener("open", () => {
    setConnection("live");
    if (wasDown) refreshAll(); // events were missed while away
    wasDown = false;
  });
  source.addEventListener("error", () => {
    wasDown = true;
    setConnection("reconnecting");
  });
  for (const [type, kinds] of Object.entries(AFFECTS)) {
    source.addEventListener(type, (msg) => {
      if (type === "status_update_event") {
        try {
          remember(JSON.parse(msg.data));
        } catch {
          // a frame we cannot read still tells us something changed
        }
      }
      want(...kinds);
    });
  }
  setInterval(() => {
    if (document.hidden) return;
    want("nodes", "jobs");
    if (state.queue.length > 0) want("queue");
  }, PERIODIC_MS);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refreshAll();
  });
}

// ------------------------------------------------------------------ lookups views share

export function appsById() {
  return new Map(state.apps.map((a) => [a.id, a]));
}

export function tasksById() {
  return new Map(state.tasks.map((t) => [t.id, t]));
}

export function nodesById() {
  return new Map(state.nodes.map((n) => [n.id, n]));
}

/** Deployments by app id. */
export function deploymentsByApp() {
  const out = new Map();
  for (const d of state.deployments) {
    for (const app of d.affectedApps || []) {
      if (!out.has(app)) out.set(app, []);
      out.get(app).push(d);
    }
  }
  return out;
}
