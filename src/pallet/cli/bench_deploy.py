"""``pallet bench deploy``: rolling upgrades, a rollback and dry runs on a real cluster."""

from __future__ import annotations

import typer

from pallet.cli.common import console, print_json, table

__all__ = ["deploy"]


def deploy(
    instances: int = typer.Option(10, help="Instances of the HTTP app."),
    upgrades: int = typer.Option(20, help="Upgrades in a row per strategy."),
    agents: int = typer.Option(4, help="Agents of the `pallet up` cluster."),
    deadline: float = typer.Option(20.0, help="progressDeadlineSeconds of the broken version."),
    dry_apps: int = typer.Option(1000, help="Apps in the master for the dry runs."),
    dry_runs: int = typer.Option(200, help="Dry runs to time."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Upgrades sampled every 100 ms against each strategy's bounds (goal: 0 violations),
    an automatic rollback (goal: back within the deadline + 10 s, never below the old
    version's minimum) and dry runs (goal: nothing changed, p99 <= 100 ms)."""
    from pallet.bench.deploy import run_deploy_bench

    if instances < 1 or upgrades < 1 or agents < 1:
        raise typer.BadParameter("--instances, --upgrades and --agents must be at least 1")
    result = run_deploy_bench(
        instances, upgrades, agents=agents, deadline=deadline, dry_apps=dry_apps, dry_runs=dry_runs
    )
    doc = result.to_json()
    if json_out:
        print_json(doc)
        return
    console.print(
        table(
            f"{upgrades} upgrades of a {instances}-instance HTTP app per strategy, sampled every 0.1 s",
            ["minHealth, maxOver", "samples", "violations", "least ready", "most live", "median s"],
            [
                [
                    f"{u['strategy'][0]:g}, {u['strategy'][1]:g}",
                    u["samples"],
                    u["violations"],
                    u["least_ready"],
                    u["most_live"],
                    u["median_upgrade_s"],
                ]
                for u in doc["upgrades"]
            ],
        )
    )
    rb = doc["rollback"]
    dr = doc["dry_run"]
    console.print(
        table(
            "Automatic rollback and dry runs",
            ["what", "figure", "goal"],
            [
                [
                    "rollback: seconds back on the old version",
                    rb["seconds"],
                    f"<= {rb['deadline_s'] + 10:g}",
                ],
                ["rollback: fewest ready old tasks", rb["min_ready_old"], f">= {rb['minimum']}"],
                [f"dry run: p99 ms ({dr['apps']} apps)", dr["p99_ms"], "<= 100"],
                ["baseline: GET /v2/apps/{id} p99 ms", dr["get_p99_ms"], ""],
                ["dry run: anything changed", dr["changed"], "False"],
            ],
        )
    )
