"""``pallet bench faults``: what an agent restart, an etcd member's death and a network
partition cost, on real processes (the partition needs root)."""

from __future__ import annotations

from typing import Any

import typer

from pallet.cli.common import console, parse_names, print_json, table

__all__ = ["faults"]

_SCENARIOS = ("agent-restart", "leader-kill", "etcd-member-kill", "partition")


def faults(
    scenarios: str = typer.Option(",".join(_SCENARIOS), help="Which, comma-separated."),
    tasks: int = typer.Option(100, help="Tasks on the agent that is restarted."),
    partition_s: float = typer.Option(60.0, help="Seconds the partitioned agent stays cut off."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Agent killed and restarted with TASKS running (goal: 0 restarts, re-attached in 5 s);
    the etcd leader killed under a writing client (goal: no error lasting over 2 s); an
    agent partitioned for PARTITION_S (goal: replacements RUNNING within 15 s of the cut,
    exactly the instances after healing)."""
    from pallet.bench.faults import run_faults
    from pallet.model.errors import ValidationError

    names = parse_names(scenarios, "--scenarios", _SCENARIOS)
    if not 1 <= tasks <= 1000:
        raise ValidationError("--tasks", "between 1 and 1000")
    if not 5 <= partition_s <= 3600:
        raise ValidationError("--partition-s", "between 5 and 3600 seconds")
    results = run_faults(names, tasks, partition_s)
    if json_out:
        print_json({"results": results})
        return
    for result in results:
        console.print(_table(result))


def _table(r: dict[str, Any]) -> Any:
    name = r["scenario"]
    if "skipped" in r:
        return table(name, ["skipped"], [[r["skipped"]]])
    if name == "agent-restart":
        return table(
            f"agent killed (SIGKILL) and restarted with {r['tasks']} tasks",
            ["what", "seconds", "task restarts"],
            [
                ["launch the tasks from nothing (baseline)", r["baseline_launch_s"], "—"],
                ["restart: re-attached, all RUNNING", r["reattach_s"], r["task_restarts"]],
            ],
        )
    if name == "leader-kill":
        b = r["baseline"]
        return table(
            "app creates against 3 masters on a 3-member etcd; the leader master killed",
            ["phase", "writes", "errors", "p99 ms", "writable after s", "lost writes",
             "task restarts"],
            [
                ["no fault (baseline)", b["writes"], b["errors"], b["p99_ms"], "—", "—", "—"],
                ["leader killed", r["writes"], r["errors"], r["p99_ms"], r["writable_after_s"],
                 r["lost_writes"], r["task_restarts"]],
            ],
        )  # fmt: skip
    if name == "etcd-member-kill":
        b = r["baseline"]
        return table(
            "app creates against one master on a 3-member etcd",
            ["phase", "writes", "errors", "max error s", "max stall s", "p50 ms", "p99 ms"],
            [
                ["no fault (baseline)", b["writes"], b["errors"], b["max_error_s"],
                 b["max_stall_s"], b["p50_ms"], b["p99_ms"]],
                ["etcd leader killed", r["writes"], r["errors"], r["max_error_s"],
                 r["max_stall_s"], r["p50_ms"], r["p99_ms"]],
            ],
        )  # fmt: skip
    return table(
        f"an agent cut off for {r['partition_s']:.0f} s (grace {r['heartbeat_grace_s']:.0f} s, "
        f"inactiveAfterSeconds {r['inactive_after_s']})",
        ["what", "value"],
        [
            ["launch the app from nothing (baseline), s", r["baseline_launch_s"]],
            ["tasks cut off / still alive in the partition",
             f"{r['tasks_cut_off']} / {r['tasks_alive_in_partition']}"],
            ["replacements RUNNING after the cut, s", r["replaced_after_s"]],
            ["running after healing / instances",
             f"{r['running_after_heal']} / {r['instances']}"],
            ["task processes after healing", r["processes_after_heal"]],
            ["converged after healing, s", r["converged_after_heal_s"]],
        ],
    )  # fmt: skip
