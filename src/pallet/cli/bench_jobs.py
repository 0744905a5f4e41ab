"""``pallet bench jobs``: batch throughput against tuned Slurm and plain fork/exec."""

from __future__ import annotations

import typer

from pallet.cli.common import console, print_json, table

__all__ = ["jobs"]


def jobs(
    count: int = typer.Option(1000, "--jobs", min=1, help="Trivial jobs to run."),
    agents: int = typer.Option(4, min=1, help="Agents of the `pallet up` cluster."),
    parallelism: int = typer.Option(50, min=1, help="Tasks at once of the parallel job."),
    cron_minutes: int = typer.Option(
        10, min=0, help="Minutes of the every-minute cron check (0 skips it)."
    ),
    slurm: bool = typer.Option(True, "--slurm/--no-slurm", help="Run tuned Slurm beside."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """1,000 trivial jobs to SUCCESS on `pallet up --agents 4` against tuned Slurm (in its
    own network namespace) and fork/exec, one parallel job of as many tasks, and a cron job
    every minute across a master crash. Goals: faster than Slurm; parallel <= 2x; each
    minute run once."""
    from pallet.bench.jobs import run_jobs_bench

    def say(text: str) -> None:
        typer.echo(text, err=True)

    result = run_jobs_bench(count, agents, parallelism, cron_minutes, slurm, say)
    for note in (result.slurm_note, result.cron_note):
        if note and not note.startswith("skipped"):
            typer.secho(note, fg=typer.colors.YELLOW, err=True)
    if json_out:
        print_json(result.to_json())
        return
    doc = result.to_json()

    def ratio(seconds: float | None) -> str:
        return "—" if seconds is None else f"{seconds / result.raw_spawn_s:.2f}"

    def show(x: object) -> object:
        return "—" if x is None else x

    rows = [
        ["fork/exec of `true`", doc["raw_spawn_s"], "1.00", "", "", "", ""],
        [
            "Slurm, tuned: sbatch --wrap=true",
            show(doc["slurm_s"]),
            ratio(result.slurm_s),
            show(doc["slurm_jobs_per_s"]),
            show(doc["slurm_queue_wait_p50_s"]),
            show(doc["slurm_queue_wait_p99_s"]),
            result.slurm_note,
        ],
        [
            "Pallet: a job each, run now",
            doc["pallet_s"],
            ratio(result.pallet_s),
            doc["pallet_jobs_per_s"],
            show(doc["pallet_queue_wait_p50_s"]),
            show(doc["pallet_queue_wait_p99_s"]),
            "" if doc["ratio_to_slurm"] is None else f"{doc['ratio_to_slurm']:.2f} x Slurm",
        ],
        [
            f"Pallet: one job, {parallelism} at a time",
            show(doc["parallel_s"]),
            ratio(result.parallel_s),
            round(count / result.parallel_s, 1) if result.parallel_s else "—",
            "",
            "",
            f"{result.parallel_s / result.pallet_s:.2f} x a job each" if result.parallel_s else "",
        ],
    ]
    console.print(
        table(
            f"{count} trivial jobs to all finished, {agents} agents",
            ["", "s", "x fork", "jobs/s", "wait p50", "wait p99", ""],
            rows,
        )
    )
    if result.cron_runs is not None:
        verdict = "each minute once" if not result.cron_note else result.cron_note
        console.print(
            f"cron every minute for {cron_minutes} minutes, master killed half way: "
            f"{result.cron_runs} runs ({verdict})"
        )
