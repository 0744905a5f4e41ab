// How full the cluster is and how well it is packed, from /v1/nodes, /v2/tasks and /v2/apps.
// Pure: data in, numbers out (the browser tests call these directly too).

export const KEYS = ["cpus", "mem", "disk", "gpus"];

const EPS = 1e-9;

/** Sum capacity, allocated and used per resource over the nodes (a GONE or DOWN node's
 * resources are no longer the cluster's). */
export function totals(nodes) {
  const out = {};
  for (const k of KEYS) out[k] = { capacity: 0, allocated: 0, used: null };
  for (const n of nodes) {
    if (n.state === "GONE" || n.state === "DOWN") continue;
    for (const k of KEYS) {
      out[k].capacity += n.capacity?.[k] || 0;
      out[k].allocated += n.allocated?.[k] || 0;
      const used = n.used?.[k];
      if (typeof used === "number") out[k].used = (out[k].used || 0) + used;
    }
  }
  return out;
}

export function inUse(node) {
  return KEYS.some((k) => (node.allocated?.[k] || 0) > EPS);
}

/** The fewest nodes that could hold `need` of one resource: the largest capacities first. */
function fewestNodes(capacities, need) {
  if (need <= EPS) return 0;
  const sorted = [...capacities].sort((a, b) => b - a);
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) {
    sum += sorted[i];
    if (sum + EPS >= need) return i + 1;
  }
  return sorted.length;
}

/**
 * Packing of the nodes that run something:
 * - efficiency[k]: allocated / capacity over the nodes in use;
 * - lowerBound: the fewest active nodes that could hold what is allocated, by volume alone
 *   (for each resource, fill the largest nodes first; take the most any resource needs);
 * - freeable: inUse - lowerBound, an upper bound on the nodes a perfect repacking could empty
 *   (it ignores task shapes and constraints, so the real number can be lower).
 */
export function packing(nodes) {
  const active = nodes.filter((n) => n.state === "ACTIVE");
  const used = nodes.filter(inUse);
  const efficiency = {};
  const needed = {};
  let lowerBound = 0;
  let binding = null;
  for (const k of KEYS) {
    const cap = used.reduce((a, n) => a + (n.capacity?.[k] || 0), 0);
    const alloc = used.reduce((a, n) => a + (n.allocated?.[k] || 0), 0);
    efficiency[k] = cap > 0 ? alloc / cap : null;
    needed[k] = fewestNodes(
      active.map((n) => n.capacity?.[k] || 0),
      alloc,
    );
    if (needed[k] > lowerBound) {
      lowerBound = needed[k];
      binding = k;
    }
  }
  return {
    nodes: nodes.length,
    active: active.length,
    inUse: used.length,
    efficiency,
    needed,
    lowerBound,
    binding,
    freeable: Math.max(0, used.length - lowerBound),
  };
}

/**
 * The stack of one node's bins: per resource, segments bottom-up, one per app in the order
 * of `appOrder`, each {app, tasks, amount}; and `other`, allocation no known task explains.
 * `tasksById` maps task id -> task (appId), `appsById` app id -> app (cpus, mem, disk, gpus).
 */
export function nodeStack(node, tasksById, appsById, appOrder) {
  const perApp = new Map();
  for (const id of node.tasks || []) {
    const task = tasksById.get(id);
    const app = task && appsById.get(task.appId);
    if (!app) continue;
    let seg = perApp.get(app.id);
    if (!seg) {
      seg = { app: app.id, tasks: 0, amount: Object.fromEntries(KEYS.map((k) => [k, 0])) };
      perApp.set(app.id, seg);
    }
    seg.tasks += 1;
    for (const k of KEYS) seg.amount[k] += app[k] || 0;
  }
  const rank = new Map(appOrder.map((id, i) => [id, i]));
  const segments = [...perApp.values()].sort(
    (a, b) => (rank.get(a.app) ?? 1e9) - (rank.get(b.app) ?? 1e9) || (a.app < b.app ? -1 : 1),
  );
  const other = {};
  for (const k of KEYS) {
    const known = segments.reduce((a, seg) => a + seg.amount[k], 0);
    other[k] = Math.max(0, (node.allocated?.[k] || 0) - known);
  }
  return { segments, other };
}

/** Tasks counted by state. */
export function countStates(tasks) {
  const out = {};
  for (const t of tasks) out[t.state] = (out[t.state] || 0) + 1;
  return out;
}

/**
 * Tasks on unreachable nodes whose apps already run enough without them: their processes
 * may still run beside their replacements (a possible surplus) until the node returns and
 * is told to kill them, or is declared gone. Per app: of its unreachable tasks, those the
 * other live ones already cover.
 */
export function possibleSurplus(apps, tasks) {
  const byApp = new Map();
  for (const t of tasks) {
    const c = byApp.get(t.appId) || { lost: 0, live: 0 };
    if (t.state === "TASK_UNREACHABLE") c.lost += 1;
    else c.live += 1;
    byApp.set(t.appId, c);
  }
  let surplus = 0;
  for (const app of apps) {
    const c = byApp.get(app.id);
    if (c && c.lost) surplus += Math.max(0, Math.min(c.lost, c.live + c.lost - (app.instances || 0)));
  }
  return surplus;
}

/** An app's condition for the dashboard: deploying, unhealthy, healthy or suspended. */
export function appCondition(app) {
  if ((app.deployments || []).length > 0) return "deploying";
  if ((app.instances || 0) === 0) return "suspended";
  if ((app.tasksUnhealthy || 0) > 0 || (app.tasksRunning || 0) < app.instances) return "unhealthy";
  return "healthy";
}
