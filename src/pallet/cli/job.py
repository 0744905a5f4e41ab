"""``pallet job ...``: Metronome jobs from files, their runs (started now, with
parameters, followed with ``--wait``), history and cron schedules; does I/O through
``pallet.client``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from pallet.cli import client_opts
from pallet.cli.appfile import AppFileError, load_app_file
from pallet.cli.client_opts import DEFAULT_MASTER, JsonOption, MasterOption, TimeoutOption, connect
from pallet.cli.common import console, print_json
from pallet.cli.render import age, details, listing, print_table, say, short
from pallet.client import ApiError, Client, InvalidRequest
from pallet.client.jobs import job_calls, run_progress, watch_run
from pallet.model.errors import PalletError

__all__ = ["app"]

app = typer.Typer(
    help="Jobs: batch and cron work, one run at a time or many (Metronome's job format).",
    no_args_is_help=True,
)
schedule_app = typer.Typer(help="Cron schedules of a job.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")

JobIdArg = Annotated[str, typer.Argument(help="Job id, such as prod.backup.")]
FileArg = Annotated[
    str, typer.Argument(help="Metronome job definition, JSON or YAML; - reads stdin.")
]
WaitRunOption = Annotated[
    bool, typer.Option("--wait", help="Show the run's progress until it ends.")
]


def _load(path: str) -> dict[str, Any]:
    try:
        return load_app_file(path)
    except AppFileError as exc:
        raise PalletError(f"job file {exc.name}: {exc.problem}") from None


def _rejected(name: str, exc: ApiError) -> PalletError:
    if isinstance(exc, InvalidRequest) and exc.details:
        fields = "".join(f"\n  {d.describe()}" for d in exc.details)
        return PalletError(f"{name}: the master rejected it ({exc.server_message}); fix:{fields}")
    return PalletError(f"{name}: the master rejected it: {exc.server_message}")


def _when(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


def _in(text: object) -> str:
    """``in 5m`` / ``in 2h`` for a time to come."""
    moment = _when(text)
    if moment is None:
        return "—"
    seconds = max(0, int((moment - datetime.now(UTC)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"in {seconds // size}{unit}"
    return f"in {seconds}s"


def _send(client: Client, name: str, call: Any) -> Any:
    try:
        return client.run(call)
    except ApiError as exc:
        if exc.status is not None and exc.status >= 500:
            raise
        raise _rejected(name, exc) from None


# ------------------------------------------------------------------ jobs


@app.command("add")
def add(file: FileArg, json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER) -> None:
    """Create a job (and the schedules the file gives), as POST /v1/jobs."""
    job = _load(file)
    with connect(master) as client:
        created = _send(client, "<stdin>" if file == "-" else file, job_calls.create(job))
    if json_out:
        print_json(created)
        return
    schedules = ", ".join(s["cron"] for s in created.get("schedules") or ())
    say(console, f"Created job {created['id']}" + (f" (cron {schedules})" if schedules else ""))


@app.command("update")
def update(
    file: FileArg, json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER
) -> None:
    """Replace a job's definition. A file with ``schedules`` replaces the schedules too
    (PUT /v0/scheduled-jobs); without, they stay (PUT /v1/jobs)."""
    job = _load(file)
    job_id = job.get("id")
    if not isinstance(job_id, str):
        raise PalletError(f"job file {file}: give the job's id")
    call = job_calls.replace(job_id, job) if "schedules" in job else job_calls.update(job_id, job)
    with connect(master) as client:
        updated = _send(client, file, call)
    if json_out:
        print_json(updated)
    else:
        say(console, f"Updated job {job_id}")


@app.command("list")
def list_jobs(json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER) -> None:
    """List the jobs with their next scheduled run, active runs and last outcome."""
    with connect(master) as client:
        jobs = client.run(job_calls.list_jobs(["activeRuns", "historySummary"]))
    if json_out:
        print_json(jobs)
        return
    if not jobs:
        say(console, "No jobs. Add one with `pallet job add FILE`.")
        return
    rows = []
    for job in jobs:
        nexts = sorted(s["nextRunAt"] for s in job.get("schedules") or () if s.get("nextRunAt"))
        summary = job.get("historySummary") or {}
        last = max(
            (
                (summary.get(k), word)
                for k, word in (("lastSuccessAt", "success"), ("lastFailureAt", "failure"))
                if summary.get(k)
            ),
            default=None,
        )
        rows.append(
            [
                job["id"],
                _in(nexts[0]) if nexts else "—",
                len(job.get("activeRuns") or ()),
                f"{last[1]} {age(_when(last[0]))}" if last else "—",
                summary.get("successCount", 0),
                summary.get("failureCount", 0),
                short(_command(job["run"]), 40),
            ]
        )
    columns = ["ID", "NEXT RUN", "ACTIVE>", "LAST", "SUCCESS>", "FAILED>", "CMD"]
    print_table(console, listing(None, columns, rows))


def _run_rows(runs: list[dict[str, Any]]) -> list[list[object]]:
    rows = []
    for run in runs:
        p = run_progress(run)
        rows.append(
            [
                run["id"],
                run["status"],
                f"{p.done}/{p.total}",
                age(_when(run.get("createdAt"))),
                age(_when(run.get("completedAt"))) if run.get("completedAt") else "—",
                short(run.get("reason") or run.get("waiting") or "", 60),
            ]
        )
    return rows


_RUN_COLUMNS = ["RUN", "STATUS", "DONE>", "CREATED", "ENDED", "REASON"]


@app.command("show")
def show(
    job_id: JobIdArg, json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER
) -> None:
    """A job's definition, schedules, active runs and history."""
    with connect(master) as client:
        job = client.run(job_calls.get(job_id))
    if json_out:
        print_json(job)
        return
    run = job["run"]
    summary = job.get("historySummary") or {}
    print_table(
        console,
        details(
            job["id"],
            [
                ("description", job.get("description")),
                ("command", _command(run)),
                (
                    "resources",
                    f"{run['cpus']:g} cpus, {run['mem']:g} MiB, {run['disk']:g} MiB disk",
                ),
                ("tasks", _width(run)),
                ("image", _image(run)),
                ("user", run.get("user")),
                ("artifacts", ", ".join(a["uri"] for a in run.get("artifacts") or ())),
                ("volumes", ", ".join(_volume(v) for v in run.get("volumes") or ())),
                ("network", ", ".join(n["mode"] for n in run.get("networks") or ())),
                ("restart", run["restart"]["policy"]),
                ("depends on", ", ".join(d["id"] for d in job.get("dependencies") or ())),
                (
                    "runs",
                    f"{summary.get('successCount', 0)} succeeded, "
                    f"{summary.get('failureCount', 0)} failed",
                ),
            ],
        ),
    )
    for s in job.get("schedules") or ():
        state = "" if s["enabled"] else " (disabled)"
        say(
            console,
            f"schedule {s['id']}: {s['cron']} {s['timezone']}{state}, next {_in(s.get('nextRunAt'))}",
        )
    if job.get("activeRuns"):
        print_table(console, listing("Active runs", _RUN_COLUMNS, _run_rows(job["activeRuns"])))


def _command(run: dict[str, Any]) -> str:
    """The run's cmd or args, else (with an image) that the image's own command runs."""
    command = run.get("cmd") or " ".join(run.get("args") or ())
    if not command and (run.get("docker") or run.get("ucr")):
        return "(its image's command)"
    return str(command)


def _image(run: dict[str, Any]) -> str:
    """``busybox:1 (docker, force pull, privileged)``, or "" without an image."""
    docker, ucr = run.get("docker"), run.get("ucr")
    if docker is not None:
        image, how = docker["image"], ["docker"]
        force, privileged = docker.get("forcePullImage"), docker.get("privileged")
    elif ucr is not None:
        image, how = ucr["image"]["id"], ["ucr"]
        force, privileged = ucr["image"].get("forcePull"), ucr.get("privileged")
    else:
        return ""
    how += ["force pull"] if force else []
    how += ["privileged"] if privileged else []
    return f"{image} ({', '.join(how)})"


def _volume(volume: dict[str, Any]) -> str:
    if "hostPath" in volume:
        return f"{volume['hostPath']} -> {volume['containerPath']} ({volume['mode']})"
    return f"{volume.get('secret')} -> {volume['containerPath']} (secret)"


def _width(run: dict[str, Any]) -> str:
    if run.get("placement", {}).get("perNode"):
        return "one per node"
    if run.get("parallelism") or run.get("completions"):
        return f"{run.get('parallelism', 1)} at a time, {run.get('completions', run.get('parallelism'))} to succeed"
    return ""


@app.command("remove")
def remove(
    job_id: JobIdArg,
    stop_runs: Annotated[
        bool, typer.Option("--stop-runs", help="Stop its active runs first (else refused).")
    ] = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Delete a job with its schedules and history."""
    with connect(master) as client:
        _send(client, f"job {job_id}", job_calls.delete(job_id, stop_runs))
    say(console, f"Removed job {job_id}")


@app.command("history")
def history(
    job_id: JobIdArg, json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER
) -> None:
    """A job's finished runs: counts, and the last runs with their status and reason."""
    with connect(master) as client:
        job = client.run(job_calls.get(job_id, ("history",)))
        h = job["history"]
        runs = [
            client.run(job_calls.get_run(job_id, r["id"]))
            for r in sorted(
                h["successfulFinishedRuns"] + h["failedFinishedRuns"],
                key=lambda r: r["finishedAt"],
                reverse=True,
            )
        ]
    if json_out:
        print_json(h)
        return
    say(console, f"{job_id}: {h['successCount']} succeeded, {h['failureCount']} failed")
    if runs:
        print_table(console, listing(None, _RUN_COLUMNS, _run_rows(runs)))


# ------------------------------------------------------------------ runs


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name:
            raise PalletError(f"--env {pair!r}: write NAME=VALUE")
        env[name] = value
    return env


@app.command("run")
def run(
    job_id: JobIdArg,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", help="NAME=VALUE for this run only (repeat it)."),
    ] = None,
    arg: Annotated[
        list[str] | None,
        typer.Option("--arg", help="The run's args instead of the job's (repeat it, in order)."),
    ] = None,
    wait: WaitRunOption = False,
    timeout: TimeoutOption = 300.0,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Start a run now (with parameters over the job's); ``--wait`` follows it to its end
    and exits 2 if it failed."""
    with connect(master) as client:
        started = _send(client, f"job {job_id}", job_calls.run(job_id, _parse_env(env or []), arg))
        if not json_out:
            say(console, f"Started run {started['id']} of {job_id}")
        final = started
        if wait:
            final = _follow(client, job_id, started["id"], timeout)
    if json_out:
        print_json(final)
    if wait and final["status"] != "SUCCESS":
        raise PalletError(
            f"run {final['id']} of {job_id} FAILED: {final.get('reason') or 'see pallet job history'}"
        )


def _follow(client: Client, job_id: str, run_id: str, timeout: float) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pallet.cli.waiting import err_console

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("completed"),
        TimeElapsedColumn(),
    )
    last: dict[str, Any] = {}
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(f"run {run_id}", total=None)
        for p in watch_run(
            client,
            job_id,
            run_id,
            timeout=timeout,
            clock=client_opts.clock,
            sleep=client_opts.sleep,
        ):
            bar.update(
                task,
                completed=p.done,
                total=p.total,
                description=f"run {run_id} {p.status.lower()} ({p.running} running)",
            )
            last = p.run
    say(err_console, f"run {run_id} of {job_id}: {last['status']}")
    return last


@app.command("kill")
def kill(
    job_id: JobIdArg,
    run_id: Annotated[str, typer.Argument(help="Run id, as `pallet job show` lists it.")],
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Stop a run: its tasks are killed and it ends FAILED."""
    with connect(master) as client:
        stopped = _send(client, f"run {run_id}", job_calls.stop(job_id, run_id))
    if json_out:
        print_json(stopped)
    else:
        say(console, f"Stopped run {run_id} of {job_id}")


# ------------------------------------------------------------------ schedules

ScheduleIdArg = Annotated[str, typer.Argument(help="Schedule id, such as nightly.")]
CronOption = Annotated[
    str | None, typer.Option("--cron", help='Cron expression, e.g. "0 3 * * *".')
]
ZoneOption = Annotated[
    str | None, typer.Option("--timezone", help="IANA time zone, e.g. Europe/Berlin (UTC).")
]
PolicyOption = Annotated[
    str | None,
    typer.Option("--concurrency-policy", help="ALLOW, FORBID or REPLACE (ALLOW)."),
]
DeadlineOption = Annotated[
    int | None,
    typer.Option("--starting-deadline", help="Seconds a late instant may still start (900)."),
]
EnabledOption = Annotated[
    bool | None, typer.Option("--enabled/--disabled", help="Run the schedule or pause it.")
]


def _schedule_fields(
    cron: str | None,
    timezone: str | None,
    policy: str | None,
    deadline: int | None,
    enabled: bool | None,
) -> dict[str, Any]:
    fields = {
        "cron": cron,
        "timezone": timezone,
        "concurrencyPolicy": policy.upper() if policy else None,
        "startingDeadlineSeconds": deadline,
        "enabled": enabled,
    }
    return {k: v for k, v in fields.items() if v is not None}


@schedule_app.command("add")
def schedule_add(
    job_id: JobIdArg,
    schedule_id: ScheduleIdArg,
    cron: CronOption = None,
    timezone: ZoneOption = None,
    policy: PolicyOption = None,
    deadline: DeadlineOption = None,
    enabled: EnabledOption = None,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Add a cron schedule to a job."""
    if cron is None:
        raise PalletError('give the schedule\'s --cron, e.g. --cron "0 3 * * *"')
    body = {"id": schedule_id, **_schedule_fields(cron, timezone, policy, deadline, enabled)}
    with connect(master) as client:
        created = _send(client, f"schedule {schedule_id}", job_calls.add_schedule(job_id, body))
    if json_out:
        print_json(created)
    else:
        say(
            console, f"Schedule {schedule_id} of {job_id}: next run {_in(created.get('nextRunAt'))}"
        )


@schedule_app.command("list")
def schedule_list(
    job_id: JobIdArg, json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER
) -> None:
    """A job's schedules and when each runs next."""
    with connect(master) as client:
        schedules = client.run(job_calls.schedules(job_id))
    if json_out:
        print_json(schedules)
        return
    if not schedules:
        say(console, f"{job_id} has no schedules.")
        return
    rows = [
        [
            s["id"],
            s["cron"],
            s["timezone"],
            s["concurrencyPolicy"],
            s["startingDeadlineSeconds"],
            "yes" if s["enabled"] else "no",
            _in(s.get("nextRunAt")) if s["enabled"] else "—",
        ]
        for s in schedules
    ]
    columns = ["ID", "CRON", "TIMEZONE", "POLICY", "DEADLINE>", "ENABLED", "NEXT RUN"]
    print_table(console, listing(None, columns, rows))


@schedule_app.command("update")
def schedule_update(
    job_id: JobIdArg,
    schedule_id: ScheduleIdArg,
    cron: CronOption = None,
    timezone: ZoneOption = None,
    policy: PolicyOption = None,
    deadline: DeadlineOption = None,
    enabled: EnabledOption = None,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Change a schedule; what is not given stays as it is."""
    changes = _schedule_fields(cron, timezone, policy, deadline, enabled)
    with connect(master) as client:
        current = next(
            (s for s in client.run(job_calls.schedules(job_id)) if s["id"] == schedule_id), None
        )
        if current is None:
            raise PalletError(f"job {job_id} has no schedule {schedule_id}")
        body = {k: v for k, v in {**current, **changes}.items() if k != "nextRunAt"}
        updated = _send(client, f"schedule {schedule_id}", job_calls.update_schedule(job_id, body))
    if json_out:
        print_json(updated)
    else:
        say(
            console, f"Schedule {schedule_id} of {job_id}: next run {_in(updated.get('nextRunAt'))}"
        )


@schedule_app.command("remove")
def schedule_remove(
    job_id: JobIdArg, schedule_id: ScheduleIdArg, master: MasterOption = DEFAULT_MASTER
) -> None:
    """Remove a schedule from a job."""
    with connect(master) as client:
        _send(client, f"schedule {schedule_id}", job_calls.remove_schedule(job_id, schedule_id))
    say(console, f"Removed schedule {schedule_id} of {job_id}")
