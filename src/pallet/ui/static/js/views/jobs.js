// Jobs (Metronome's /v1/jobs): every job with its schedules, next run, active runs and how
// its last runs went, a "Run now" button; and one job's page with its active runs and their
// tasks (each linking to its log), its schedules and its history.

import { api } from "../api.js";
import { modal } from "../dialog.js";
import { announce, h, scrollTable, swap, viewTitle } from "../dom.js";
import { ago, amount, clock, num, shortId } from "../format.js";
import { want } from "../store.js";
import { stateBadge } from "./tasks.js";

function jobPath(id) {
  return `#/jobs/${encodeURIComponent(id)}`;
}

export function runBadge(status) {
  const s = String(status || "unknown").toLowerCase();
  return h("span", { class: `badge run-${s}` }, s);
}

/** "every minute (* * * * *, UTC)" style text for one schedule. */
function scheduleText(s) {
  const zone = s.timezone && s.timezone !== "UTC" ? `, ${s.timezone}` : "";
  return `${s.cron}${zone}`;
}

function schedulesCell(job) {
  const schedules = job.schedules || [];
  if (!schedules.length) return h("span", { class: "muted" }, "manual");
  return schedules.map((s) =>
    h(
      "div",
      { "data-schedule": s.id },
      h("code", {}, scheduleText(s)),
      s.enabled === false ? [" ", runBadge("disabled")] : null,
    ),
  );
}

/** The earliest nextRunAt of the job's enabled schedules, or null. */
export function nextRun(job) {
  const next = (job.schedules || [])
    .map((s) => s.nextRunAt)
    .filter(Boolean)
    .sort((a, b) => new Date(a) - new Date(b));
  return next[0] || null;
}

function untilText(iso, now = Date.now()) {
  if (!iso) return "–";
  const secs = Math.max(0, Math.round((new Date(iso).getTime() - now) / 1000));
  if (secs < 60) return `in ${secs}s`;
  if (secs < 3600) return `in ${Math.floor(secs / 60)}m`;
  if (secs < 86400) return `in ${Math.floor(secs / 3600)}h`;
  return `in ${Math.floor(secs / 86400)}d`;
}

/** "12 of 50 done" for a parallel run, the run's state otherwise. */
function progress(run) {
  if (run.completions) {
    return h(
      "span",
      { class: "run-progress" },
      h("progress", {
        max: run.completions,
        value: run.succeeded || 0,
        "aria-label": `Run ${run.id}: ${run.succeeded || 0} of ${run.completions} completed`,
      }),
      h("span", { class: "small" }, ` ${run.succeeded || 0} of ${run.completions}`),
    );
  }
  return null;
}

function activeCell(job) {
  const runs = job.activeRuns || [];
  if (!runs.length) return h("span", { class: "muted" }, "–");
  return runs.map((r) => h("div", { "data-run": r.id }, runBadge(r.status), " ", progress(r)));
}

function lastRunsCell(job) {
  const s = job.historySummary;
  if (!s || (!s.successCount && !s.failureCount)) return h("span", { class: "muted" }, "never ran");
  const lastOk = s.lastSuccessAt ? new Date(s.lastSuccessAt).getTime() : 0;
  const lastBad = s.lastFailureAt ? new Date(s.lastFailureAt).getTime() : 0;
  const last = lastOk >= lastBad ? ["success", s.lastSuccessAt] : ["failed", s.lastFailureAt];
  return h(
    "div",
    {},
    runBadge(last[0]),
    h("span", { class: "small", title: last[1] }, ` ${ago(last[1])}`),
    h("div", { class: "small muted" }, `${num(s.successCount, 0)} ok · ${num(s.failureCount, 0)} failed`),
  );
}

export function runNow(job) {
  return modal({
    title: `Run ${job.id} now?`,
    submitLabel: "Run now",
    body: h(
      "p",
      {},
      "A new run of ",
      h("strong", {}, job.id),
      " starts at once: ",
      h("code", { class: "break" }, job.run?.cmd || (job.run?.args || []).join(" ") || "(its image's command)"),
    ),
    run: async () => {
      const run = await api.runJob(job.id);
      announce(`Started run ${run.id} of ${job.id}.`);
      want("jobs", "tasks");
    },
  });
}

function stopRun(job, run) {
  return modal({
    title: `Stop run ${run.id}?`,
    submitLabel: "Stop run",
    danger: true,
    body: h("p", {}, `Its tasks are killed and the run of `, h("strong", {}, job.id), " ends FAILED."),
    run: async () => {
      await api.stopRun(job.id, run.id);
      announce(`Stopping run ${run.id} of ${job.id}.`);
      want("jobs", "tasks");
    },
  });
}

function runNowButton(job, onDone) {
  return h(
    "button",
    {
      type: "button",
      class: "btn small primary",
      "data-key": `run:${job.id}`,
      "aria-label": `Run ${job.id} now`,
      onclick: async () => {
        const ok = await runNow(job);
        if (ok && onDone) onDone();
      },
    },
    "Run now",
  );
}

export function jobsView() {
  const region = h("div", { class: "region" });
  const root = h("div", { class: "view" }, viewTitle("Jobs"), region);
  return {
    title: "Jobs",
    root,
    render(state) {
      const rows = state.jobs.map((job) =>
        h(
          "tr",
          { "data-job": job.id },
          h("td", {}, h("a", { href: jobPath(job.id), "data-key": `job:${job.id}` }, job.id)),
          h("td", {}, schedulesCell(job)),
          h("td", { title: nextRun(job) || "" }, nextRun(job) ? [clock(nextRun(job)), h("div", { class: "small muted" }, untilText(nextRun(job)))] : h("span", { class: "muted" }, "–")),
          h("td", {}, activeCell(job)),
          h("td", {}, lastRunsCell(job)),
          h("td", {}, runNowButton(job)),
        ),
      );
      swap(
        region,
        state.loaded.has("jobs")
          ? scrollTable(
              "Jobs",
              [
                { label: "Job" },
                { label: "Schedules" },
                { label: "Next run" },
                { label: "Active runs" },
                { label: "Last run" },
                { label: "Actions" },
              ],
              rows,
              { empty: "No jobs yet. Create one with `pallet job add` or POST /v1/jobs." },
            )
          : h("p", { class: "muted" }, "Loading…"),
      );
    },
  };
}

function field(name, value) {
  return [h("dt", {}, name), h("dd", {}, value ?? "–")];
}

function perTask(run) {
  const parts = [`${num(run.cpus)} cpu`, amount("mem", run.mem)];
  if (run.disk) parts.push(`${amount("disk", run.disk)} disk`);
  if (run.gpus) parts.push(`${num(run.gpus)} gpu`);
  return parts.join(" · ");
}

function runTasks(run) {
  const rows = (run.tasks || []).map((t) =>
    h(
      "tr",
      { "data-task": t.id },
      h("td", {}, h("a", { href: `#/tasks/${encodeURIComponent(t.id)}`, title: t.id, class: "mono" }, shortId(t.id))),
      h("td", {}, t.index ?? "–"),
      h("td", {}, stateBadge(t.status)),
      h("td", {}, clock(t.startedAt)),
      h("td", {}, t.completedAt ? clock(t.completedAt) : "–"),
      h("td", { class: "reason" }, t.exitCode !== undefined ? `exit ${t.exitCode}` : "", t.message ? ` ${t.message}` : ""),
    ),
  );
  return scrollTable(
    `Tasks of run ${run.id}`,
    [{ label: "Task" }, { label: "Index" }, { label: "State" }, { label: "Started" }, { label: "Ended" }, { label: "Exit" }],
    rows,
    { empty: run.waiting ? `No task yet: ${run.waiting}` : "No task yet." },
  );
}

function activeRunCard(job, run) {
  return h(
    "section",
    { class: "card", "data-run": run.id, "aria-label": `Run ${run.id}` },
    h(
      "div",
      { class: "title-row" },
      h("h4", {}, h("span", { class: "mono" }, run.id), " ", runBadge(run.status), " ", progress(run)),
      h(
        "button",
        {
          type: "button",
          class: "btn small danger",
          "data-key": `stop:${run.id}`,
          "aria-label": `Stop run ${run.id}`,
          onclick: () => stopRun(job, run),
        },
        "Stop",
      ),
    ),
    h("p", { class: "small muted" }, `Started ${clock(run.createdAt)} (${ago(run.createdAt)})`, run.waiting ? ` · waiting: ${run.waiting}` : ""),
    runTasks(run),
  );
}

/** Finished runs, newest first, with their status (history keeps the last runs whole). */
export function historyRows(history) {
  const runs = [
    ...(history?.successfulFinishedRuns || []).map((r) => ({ ...r, status: "SUCCESS" })),
    ...(history?.failedFinishedRuns || []).map((r) => ({ ...r, status: "FAILED" })),
  ];
  return runs.sort((a, b) => new Date(b.finishedAt || 0) - new Date(a.finishedAt || 0));
}

function seconds(from, to) {
  if (!from || !to) return "–";
  const s = (new Date(to) - new Date(from)) / 1000;
  return Number.isFinite(s) ? `${num(s, 1)} s` : "–";
}

export function jobDetailView(jobId) {
  const region = h("div", { class: "region" });
  const root = h(
    "div",
    { class: "view" },
    h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "Jobs"), " / "),
    viewTitle(jobId),
    region,
  );
  let doc = null;
  let error = null;
  let fetching = false;
  let again = false;
  const reasons = new Map(); // run id -> reason of a failed run (fetched once)
  let definitionOpen = false;

  const draw = () => {
    if (error && !doc) {
      swap(region, h("p", { class: "muted" }, error));
      return;
    }
    if (!doc) {
      swap(region, h("p", { class: "muted" }, "Loading…"));
      return;
    }
    const job = doc;
    const history = historyRows(job.history);
    const { activeRuns: _a, history: _h, ...definition } = job;
    const spec = job.run || {};
    swap(
      region,
      h(
        "div",
        { class: "node-top" },
        h(
          "section",
          { class: "card" },
          h(
            "dl",
            { class: "facts" },
            field("Command", h("code", { class: "break" }, spec.cmd || (spec.args || []).join(" ") || "–")),
            field("Per task", perTask(spec)),
            spec.docker || spec.ucr
              ? field("Image", h("code", { class: "break" }, spec.docker?.image || spec.ucr?.image?.id))
              : null,
            spec.user ? field("User", spec.user) : null,
            spec.parallelism || spec.completions
              ? field("Parallel", `${spec.parallelism ?? 1} at once until ${spec.completions ?? spec.parallelism} succeed`)
              : null,
            field("Restart", spec.restart?.policy || "NEVER"),
            field("Next run", nextRun(job) ? `${clock(nextRun(job))} (${untilText(nextRun(job))})` : "–"),
            field("Runs", `${num(job.history?.successCount ?? 0, 0)} ok · ${num(job.history?.failureCount ?? 0, 0)} failed`),
          ),
          h("div", { class: "row-actions" }, runNowButton(job, () => refresh())),
        ),
        h(
          "section",
          { class: "card", "aria-labelledby": "sched-title" },
          h("h3", { id: "sched-title" }, "Schedules"),
          scrollTable(
            `Schedules of ${job.id}`,
            [{ label: "Schedule" }, { label: "Cron" }, { label: "Policy" }, { label: "Next run" }],
            (job.schedules || []).map((s) =>
              h(
                "tr",
                { "data-schedule": s.id },
                h("td", {}, s.id),
                h("td", {}, h("code", {}, scheduleText(s)), s.enabled === false ? [" ", runBadge("disabled")] : null),
                h("td", {}, s.concurrencyPolicy || "ALLOW"),
                h("td", { title: s.nextRunAt || "" }, s.nextRunAt ? clock(s.nextRunAt) : "–"),
              ),
            ),
            { empty: "No schedule: it runs when asked (Run now)." },
          ),
        ),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "active-title" },
        h("h3", { id: "active-title" }, `Active runs (${(job.activeRuns || []).length})`),
        (job.activeRuns || []).length
          ? job.activeRuns.map((r) => activeRunCard(job, r))
          : h("p", { class: "muted empty" }, "None running."),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "history-title" },
        h("h3", { id: "history-title" }, "History"),
        scrollTable(
          `History of ${job.id}`,
          [{ label: "Run" }, { label: "Status" }, { label: "Started" }, { label: "Took" }, { label: "Tasks" }, { label: "Reason" }],
          history.map((r) =>
            h(
              "tr",
              { "data-run": r.id, "data-status": r.status },
              h("td", { class: "mono" }, r.id),
              h("td", {}, runBadge(r.status)),
              h("td", { title: r.createdAt || "" }, clock(r.createdAt)),
              h("td", {}, seconds(r.createdAt, r.finishedAt)),
              h("td", {}, num((r.tasks || []).length, 0)),
              h("td", { class: "reason" }, r.status === "FAILED" ? reasons.get(r.id) || "…" : ""),
            ),
          ),
          { empty: "No finished runs yet." },
        ),
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
    // Why a run failed is on the run itself; ask once per failed run the page shows.
    for (const r of history) {
      if (r.status !== "FAILED" || reasons.has(r.id)) continue;
      reasons.set(r.id, "…");
      api.jobRun(job.id, r.id).then(
        (run) => {
          reasons.set(r.id, run.reason || (run.tasks || []).map((t) => t.message).filter(Boolean).join("; ") || "–");
          draw();
        },
        () => reasons.set(r.id, "–"),
      );
    }
  };

  async function refresh() {
    if (fetching) {
      again = true;
      return;
    }
    fetching = true;
    try {
      doc = await api.job(jobId);
      error = null;
    } catch (e) {
      error = e.status === 404 ? `No job ${jobId}. It may have been removed.` : `Cannot load ${jobId}: ${e.message}`;
      if (e.status === 404) doc = null;
    } finally {
      fetching = false;
    }
    draw();
    if (again) {
      again = false;
      refresh();
    }
  }

  return {
    title: jobId,
    root,
    render(_state, kinds) {
      // The job's whole page (its history too) is one GET; the list's change is the cue.
      if (!kinds || kinds.size === 0 || kinds.has("jobs") || kinds.has("tasks")) refresh();
      else draw();
    },
  };
}
