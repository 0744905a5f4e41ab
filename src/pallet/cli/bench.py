"""``pallet bench ...``: benchmarks that print a table with their baseline, or ``--json``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from pallet.bench.runner import default_jobs
from pallet.cli.bench_cli import cli
from pallet.cli.bench_cluster import api, containers, e2e
from pallet.cli.bench_deploy import deploy
from pallet.cli.bench_discovery import discovery
from pallet.cli.bench_faults import faults
from pallet.cli.bench_invariants import invariants
from pallet.cli.bench_jobs import jobs as jobs_bench
from pallet.cli.bench_scale import scale
from pallet.cli.bench_security import security
from pallet.cli.bench_throughput import throughput
from pallet.cli.common import console, parse_ints, parse_names, print_json, table
from pallet.cli.extras import command_settings, sim_stand_in
from pallet.core.policies import POLICY_NAMES
from pallet.model.errors import ValidationError
from pallet.sim.traces.openb import OPENB_WORKLOADS

compaction: Callable[..., None]
try:  # the simulator's solvers come with the sim extra; without it, say so when run
    from pallet.cli.bench_compaction import compaction as _compaction

    compaction = _compaction
except ModuleNotFoundError as missing:
    compaction = sim_stand_in(missing, "bench compaction")

app = typer.Typer(
    help=(
        "Benchmarks: packing, compaction, throughput, e2e, api, cli, discovery, deploy, "
        "faults, containers, invariants, jobs, scale, security (see bench/README.md)."
    ),
    no_args_is_help=True,
)

_SEEDS = "42-51"
"""``pallet.bench.packing.DEFAULT_SEEDS``, written here so that listing the benchmarks
needs no solver (a test checks that they agree)."""

app.command()(throughput)
app.command(name="compaction", **command_settings(compaction))(compaction)
app.command(name="e2e")(e2e)
app.command(name="api")(api)
app.command(name="cli")(cli)
app.command(name="discovery")(discovery)
app.command(name="deploy")(deploy)
app.command(name="faults")(faults)
app.command(name="invariants")(invariants)
app.command(name="containers")(containers)
app.command(name="scale")(scale)
app.command(name="jobs")(jobs_bench)
app.command(name="security")(security)


@app.command()
def packing(
    workload: str = typer.Option(
        "default",
        help=f"One of {', '.join(OPENB_WORKLOADS)}, 'all', or a pod list file (openb format).",
    ),
    seeds: str = typer.Option(_SEEDS, help="Seeds, e.g. 42,43 or 42-51."),
    policies: str | None = typer.Option(
        None, help="Policies to compare (default: all of them; pallet,fgd with --sweep)."
    ),
    jobs: int = typer.Option(0, help="Processes to use (0 = every core)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    plot: Path | None = typer.Option(None, help="Write PNG plots into this directory."),
    with_ceiling: bool | None = typer.Option(
        None,
        "--ceiling/--no-ceiling",
        help="Also bound what any policy could reach at 100 % and 130 % on these seeds "
        "(LPs over arrival prefixes; a few seconds per seed and point). On by default "
        "with --sweep.",
    ),
    sweep: str | None = typer.Option(
        None,
        help="Run on pod lists scaled from --workload, one per point, with the ceiling: "
        "cpu-only=0:3:0.25 (CPU of the pods without GPUs, x the list's), "
        "pod-cpu=1,1.5 (every pod's CPU request, x its own).",
    ),
    sweep_seed: int = typer.Option(0, help="Seed of the pods --sweep drops or draws again."),
    sequence: str = typer.Option(
        "go",
        help="Whose draws build each seed's arrivals: go (Go's math/rand, as the paper's "
        "simulator: seed 42 is the paper's seed 42) or numpy (a second sample).",
    ),
) -> None:
    """GPU allocation under the FGD arrival protocol, every policy side by side."""
    from pallet.bench.packing import run_packing_bench  # needs the sim extra

    seed_list = parse_ints(seeds, "--seeds")
    default_policies = "pallet,fgd" if sweep is not None else ",".join(POLICY_NAMES)
    names = parse_names(policies or default_policies, "--policies", POLICY_NAMES)
    if sequence not in ("go", "numpy"):
        raise ValidationError("--sequence", f"unknown {sequence!r}; choose go or numpy")
    if sweep is not None:
        _sweep(
            workload,
            sweep,
            sweep_seed,
            seed_list,
            names,
            jobs,
            json_out,
            plot,
            sequence,
            with_ceiling is not False,
        )
        return
    workloads = list(OPENB_WORKLOADS) if workload == "all" else [workload]
    docs = []
    for w in workloads:
        report = run_packing_bench(
            w, seed_list, names, jobs or default_jobs(), bool(with_ceiling), sequence
        )
        doc = report.to_json()
        docs.append(doc)
        if plot is not None:
            from pallet.sim.plots import plot_packing

            plot_packing(report.workload, report.summaries, plot)
        if not json_out:
            rows = [
                [
                    r["policy"],
                    f"{r['alloc_at_100']:.2f}",
                    f"{r['alloc_at_130']:.2f}",
                    r["published_at_100"],
                    r["published_at_130"],
                    r["failed_pods"],
                    r["seconds_per_run"],
                ]
                for r in doc["results"]  # type: ignore[attr-defined]
            ]
            console.print(
                table(
                    f"GPU allocation % — workload {report.workload}, seeds {seeds} "
                    f"({report.sequence} draws)",
                    [
                        "policy",
                        "@100%",
                        "@130%",
                        "paper @100%",
                        "paper @130%",
                        "failed pods",
                        "s/run",
                    ],
                    rows,
                )
            )
            if report.ceilings is not None:
                console.print(
                    "No policy can exceed (mean bound over the seeds, sim.ceiling): "
                    + ", ".join(f"{v:.2f} @{p}%" for p, v in report.ceilings.items())
                )
    if json_out:
        print_json(docs[0] if len(docs) == 1 else docs)


def _sweep(
    workload: str,
    spec: str,
    sweep_seed: int,
    seeds: tuple[int, ...],
    names: tuple[str, ...],
    jobs: int,
    json_out: bool,
    plot: Path | None,
    sequence: str,
    with_ceiling: bool,
) -> None:
    """``bench packing --sweep``: a table with one row per point, or JSON, and a plot."""
    from pallet.bench.packing import run_packing_sweep
    from pallet.sim.sweep import parse_sweep

    if workload == "all":
        raise ValidationError("--workload", "a sweep scales one pod list; name one, not 'all'")
    points = parse_sweep(spec, "--sweep")
    report = run_packing_sweep(
        workload,
        points,
        seeds,
        names,
        jobs or default_jobs(),
        with_ceiling=with_ceiling,
        list_seed=sweep_seed,
        sequence=sequence,
    )
    if plot is not None:
        from pallet.sim.plots import plot_gaps

        plot_gaps(
            f"openb {report.workload}: sweep {report.kind}, seeds {','.join(map(str, seeds))}",
            [row.point.factor for row in report.rows],
            f"{report.kind} factor",
            report.panels(),
            plot / f"sweep-{report.workload}-{report.kind}.png",
        )
    if json_out:
        print_json(report.to_json())
        return
    columns, rows = report.table()
    console.print(
        table(
            f"GPU allocation % @100 / @130 — {report.workload}, sweep {report.kind} "
            f"(lists drawn with seed {sweep_seed}), seeds {','.join(map(str, seeds))} "
            f"({sequence} draws)",
            columns,
            rows,
        )
    )
