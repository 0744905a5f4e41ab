// The public API of the master, and only it: Marathon's /v2 and Pallet's /v1. URLs are
// relative to the page, so the dashboard also works behind a path prefix. On a master with
// authentication on, every call carries the kept token, and a 401 asks the user to sign in.

import { authHeaders, signIn } from "./auth.js";

export class ApiError extends Error {
  /** status: HTTP status (0 when the master could not be reached); body: the JSON answer. */
  constructor(status, body, fallback) {
    super((body && typeof body.message === "string" && body.message) || fallback);
    this.status = status;
    this.body = body;
  }

  /** Marathon's 422 details: [{path: "/cpus", errors: ["error.min"]}]. */
  get details() {
    const d = this.body && this.body.details;
    return Array.isArray(d) ? d.filter((x) => x && typeof x.path === "string") : [];
  }
}

function url(path, params) {
  const u = new URL(path.replace(/^\//, ""), document.baseURI);
  for (const [k, v] of Object.entries(params || {})) {
    for (const one of [v].flat()) if (one !== undefined) u.searchParams.append(k, String(one));
  }
  return u;
}

async function call(method, path, { params, body, signal } = {}) {
  let response;
  try {
    response = await fetch(url(path, params), {
      method,
      signal,
      headers: { ...authHeaders(), ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, null, "cannot reach the master");
  }
  const text = await response.text();
  let doc = null;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch {
    doc = null;
  }
  if (response.status === 401) signIn(doc && doc.message);
  if (!response.ok) {
    throw new ApiError(response.status, doc, `${method} ${path}: HTTP ${response.status}`);
  }
  return doc;
}

/** "/prod/web" -> "/prod/web" with each segment escaped (ids are paths). */
export function appPath(id) {
  return id
    .split("/")
    .map((part) => encodeURIComponent(part))
    .join("/");
}

const APP_EMBEDS = ["apps.counts", "apps.deployments", "apps.lastTaskFailure"];

export const api = {
  apps: async () => (await call("GET", "/v2/apps", { params: { embed: APP_EMBEDS } })).apps,
  tasks: async () => (await call("GET", "/v2/tasks")).tasks,
  nodes: async () => (await call("GET", "/v1/nodes")).nodes,
  node: (id) => call("GET", `/v1/nodes/${encodeURIComponent(id)}`),
  deployments: () => call("GET", "/v2/deployments"),
  queue: async () => (await call("GET", "/v2/queue")).queue,
  info: () => call("GET", "/v2/info"),
  /** How the master is protected: {auth, tls, exposed, insecure}. */
  cluster: () => call("GET", "/v1/cluster"),
  /** The newest writes to the master, who made them and how they ended. */
  audit: (limit) => call("GET", "/v1/audit", { params: { limit } }),
  /** An app's DNS names, VIPs and load-balancer endpoints. */
  appDiscovery: (id) => call("GET", `/v1/discovery/apps${appPath(id)}`),
  createApp: (definition) => call("POST", "/v2/apps", { body: definition }),
  scaleApp: (id, instances, force = false) =>
    call("PUT", `/v2/apps${appPath(id)}`, {
      params: force ? { force: "true" } : {},
      body: { instances },
    }),
  restartApp: (id, force = false) =>
    call("POST", `/v2/apps${appPath(id)}/restart`, { params: force ? { force: "true" } : {} }),
  destroyApp: (id, force = false) =>
    call("DELETE", `/v2/apps${appPath(id)}`, { params: force ? { force: "true" } : {} }),
  killTasks: (ids) => call("POST", "/v2/tasks/delete", { body: { ids } }),
  /** Let a deployment held at its canaries go on. */
  promoteDeployment: (id) => call("POST", `/v2/deployments/${encodeURIComponent(id)}/promote`),
  /** Stop a deployment and deploy back what ran before it (Marathon's DELETE without force). */
  rollBackDeployment: (id) => call("DELETE", `/v2/deployments/${encodeURIComponent(id)}`),
  /** Metronome's jobs with their active runs and history summary. */
  jobs: () => call("GET", "/v1/jobs", { params: { embed: ["activeRuns", "historySummary"] } }),
  /** One job with its active runs and its history (the last runs, whole). */
  job: (id) =>
    call("GET", `/v1/jobs/${encodeURIComponent(id)}`, {
      params: { embed: ["activeRuns", "history"] },
    }),
  /** A run of a job, active or in its history (with its tasks and reason). */
  jobRun: (id, runId) =>
    call("GET", `/v1/jobs/${encodeURIComponent(id)}/runs/${encodeURIComponent(runId)}`),
  runJob: (id) => call("POST", `/v1/jobs/${encodeURIComponent(id)}/runs`, { body: {} }),
  stopRun: (id, runId) =>
    call(
      "POST",
      `/v1/jobs/${encodeURIComponent(id)}/runs/${encodeURIComponent(runId)}/actions/stop`,
      { body: {} },
    ),
  /** A byte range of a task's log: {data, offset, next_offset, size}. */
  logs: (taskId, stream, offset, length, signal) =>
    call("GET", `/v1/tasks/${encodeURIComponent(taskId)}/logs`, {
      params: { stream, offset, length },
      signal,
    }),
};

/** The URL of Marathon's event stream for EventSource. */
export function eventsUrl() {
  return url("/v2/events").toString();
}
