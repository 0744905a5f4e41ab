"""``pallet bench scale``: one real master, thousands of simulated agents over HTTP, many tasks."""

from __future__ import annotations

import sys
from typing import Any

import typer

from pallet.cli.common import console, print_json, table
from pallet.model import ValidationError

__all__ = ["scale"]


def scale(
    nodes: int = typer.Option(12_500, help="Simulated agents (nodes)."),
    tasks: int = typer.Option(100_000, help="Tasks to place and run."),
    apps: int = typer.Option(1_000, help="Apps the tasks belong to."),
    processes: int = typer.Option(2, help="Processes playing the agents."),
    steady: float = typer.Option(10.0, help="Seconds held at rest after all run (RSS)."),
    timeout: float = typer.Option(900.0, help="Seconds a stage may take before giving up."),
    baseline: bool = typer.Option(True, help="First run a tenth of the size (same run)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """A master (SQLite) with NODES simulated agents speaking the real agent protocol and
    TASKS tasks of APPS apps created through /v2/apps: master RSS (goal <= 1 GiB), seconds
    to place all (<= 60) and to all RUNNING, GET /v2/apps p99 (<= 250 ms), nodes that
    went UNREACHABLE (0); a tenth of the size as the baseline."""
    for name, value in (("--nodes", nodes), ("--tasks", tasks), ("--apps", apps)):
        if value < 1:
            raise ValidationError(name, "must be at least 1")
    if apps > tasks:
        raise ValidationError("--apps", "must not exceed --tasks")
    if not 1 <= processes <= 64:
        raise ValidationError("--processes", "must be between 1 and 64")
    if steady < 0:
        raise ValidationError("--steady", "must be >= 0 seconds")
    if timeout <= 0:
        raise ValidationError("--timeout", "must be a positive number of seconds")
    from pallet.bench.scale import run_scale_bench

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    result = run_scale_bench(
        nodes,
        tasks,
        apps,
        processes=processes,
        baseline=baseline,
        steady_s=steady,
        timeout=timeout,
        say=say,
    )
    doc = result.to_json()
    if json_out:
        print_json(doc)
    else:
        console.print(_table(doc))
    if doc["failed"]:
        raise typer.Exit(1)


def _table(doc: dict[str, Any]) -> Any:
    tenth = doc["baseline_tenth"] or {}
    goals = doc["goals"]

    def row(what: str, name: str, goal: str = "") -> list[Any]:
        return [what, doc[name], tenth.get(name), goal]

    rows = [
        row("nodes", "nodes"),
        row("tasks", "tasks"),
        row("apps", "apps"),
        row("seconds: all registered", "register_s"),
        row("seconds: apps created", "create_s"),
        row("seconds: all placed", "place_s", f"<= {goals['place_s']:.0f}"),
        row("seconds: all RUNNING", "running_s"),
        row("master RSS peak (MiB)", "rss_peak_mib", f"<= {goals['rss_mib']:.0f}"),
        row("master RSS at rest (MiB)", "rss_after_mib"),
        row("master CPU s, registering", "register_cpu_s"),
        row("simulated agents' CPU s, registering", "register_agents_cpu_s"),
        row("master CPU s, POST to RUNNING", "master_cpu_s"),
        row("simulated agents' CPU s, POST to RUNNING", "agents_cpu_s"),
        row("GET /v2/apps p50 (ms)", "apps_p50_ms"),
        row("GET /v2/apps p99 (ms)", "apps_p99_ms", f"<= {goals['apps_p99_ms']:.0f}"),
        row("tasks RUNNING in /v2/apps", "running_seen"),
        row("nodes gone UNREACHABLE", "unreachable", "0"),
        row("heartbeats", "heartbeats"),
        row("heartbeat p99 (ms)", "heartbeat_p99_ms"),
        row("heartbeat interval asked (s)", "heartbeat_interval_s"),
        row("long-poll wait granted (s)", "poll_wait_s"),
        row("long-polls answered", "polls"),
        row("status batches acknowledged", "status_posts"),
        row("longest heartbeat gap (s)", "heartbeat_max_gap_s", "< interval + 15 (grace)"),
        [
            "agent-side errors",
            doc["errors"] or 0,
            (tenth.get("errors") or 0) if tenth else None,
            "",
        ],
    ]
    title = "pallet bench scale: one master, simulated agents over HTTP"
    if doc["failed"]:
        title += f" (stopped short: {doc['failed']})"
    return table(title, ["what", "full size", "a tenth (baseline)", "goal"], rows)
