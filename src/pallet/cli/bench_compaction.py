"""``pallet bench compaction``: machines needed per policy, with lower bounds."""

from __future__ import annotations

from pathlib import Path

import typer

from pallet.bench.runner import default_jobs
from pallet.cli.common import console, parse_ints, parse_names, print_json, table
from pallet.core.policies import POLICY_NAMES
from pallet.sim.compaction import compaction_workloads


def compaction(
    workload: str = typer.Option(
        "all", help=f"One of {', '.join(compaction_workloads())}, or 'all'."
    ),
    policies: str = typer.Option(",".join(POLICY_NAMES), help="Policies to compare."),
    seeds: str = typer.Option("0", help="Machine-order seeds; with several, the 90th percentile."),
    jobs: int = typer.Option(0, help="Processes to use (0 = every core)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    plot: Path | None = typer.Option(None, help="Write PNG plots into this directory."),
) -> None:
    """Cell compaction (Borg, EuroSys'15): the fewest machines of the trace's list on
    which the whole workload fits, per policy, against volume, assignment-LP and
    configuration-LP lower bounds (the last takes a minute or two per workload)."""
    from pallet.bench.compaction import run_compaction_bench

    names = parse_names(policies, "--policies", POLICY_NAMES)
    workloads = (
        compaction_workloads()
        if workload == "all"
        else parse_names(workload, "--workload", compaction_workloads())
    )
    rows = run_compaction_bench(
        workloads, names, parse_ints(seeds, "--seeds"), jobs or default_jobs()
    )
    docs = [r.to_json() for r in rows]
    if plot is not None:
        from pallet.sim.plots import plot_bars

        for w in workloads:
            mine = [d for d in docs if d["workload"] == w and d["machines"] is not None]
            plot_bars(
                f"Cell compaction: {w}",
                [str(d["policy"]) for d in mine],
                [float(d["machines"]) for d in mine],  # type: ignore[arg-type]
                "machines needed",
                plot / f"compaction-{w}.png",
                baseline=float(mine[0]["lower_bound"]) if mine and mine[0]["lower_bound"] else None,  # type: ignore[arg-type]
                baseline_label="lower bound (max of volume, LP, configuration LP)",
            )
    if json_out:
        print_json({"results": docs})
        return
    for w in workloads:
        mine = [d for d in docs if d["workload"] == w]
        console.print(
            table(
                f"Cell compaction — {w} (seeds {seeds}; bounds took "
                f"{mine[0]['bound_seconds'] if mine else 0} s)",
                [
                    "policy",
                    "machines",
                    "lower bound",
                    "volume",
                    "LP",
                    "config LP",
                    "ratio",
                    "seconds",
                ],
                [
                    [
                        d["policy"],
                        d["machines"] if d["machines"] is not None else "did not fit",
                        d["lower_bound"],
                        d["volume_bound"],
                        d["lp_bound"],
                        d["config_lp_bound"],
                        d["ratio"],
                        d["seconds"],
                    ]
                    for d in mine
                ],
            )
        )
