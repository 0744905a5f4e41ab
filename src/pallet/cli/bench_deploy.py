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
    strategies: str = typer.Option(
        "1,1;0.5,0;1,0;0,1",
        help="minimumHealthCapacity,maximumOverCapacity pairs to upgrade under, ';' between.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Upgrades sampled every 100 ms against each strategy's bounds (goal: 0 violations),
    an automatic rollback (goal: back within the deadline + 10 s, never below the old
    version's minimum) and dry runs (goal: nothing changed, p99 <= 100 ms)."""
    from pallet.bench.deploy import run_deploy_bench

    if instances < 1 or upgrades < 1 or agents < 1:
        raise typer.BadParameter("--instances, --upgrades and --agents must be at least 1")
    pairs = _strategies(strategies)
    result = run_deploy_bench(
        instances,
        upgrades,
        pairs,
        agents=agents,
        deadline=deadline,
        dry_apps=dry_apps,
        dry_runs=dry_runs,
    )
    doc = result.to_json()
    if json_out:
        print_json(doc)
        return
    console.print(
        table(
            f"{upgrades} upgrades of a {instances}-instance HTTP app per strategy, sampled every 0.1 s",
            [
                "minHealth, maxOver",
                "samples",
                "violations",
                "check dips",
                "least ready",
                "most live",
                "median s",
            ],
            [
                [
                    f"{u['strategy'][0]:g}, {u['strategy'][1]:g}",
                    u["samples"],
                    u["violations"],
                    u["check_dips"],
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


def _strategies(text: str) -> tuple[tuple[float, float], ...]:
    """``"1,1;0.5,0"`` -> ((1.0, 1.0), (0.5, 0.0)); a bad one names --strategies."""
    pairs = []
    for part in text.split(";"):
        try:
            low, high = (float(x) for x in part.split(","))
        except ValueError:
            raise typer.BadParameter(
                f"{part!r}: give minimumHealthCapacity,maximumOverCapacity, e.g. 0.5,0",
                param_hint="--strategies",
            ) from None
        if not (0 <= low <= 1 and 0 <= high <= 1):
            raise typer.BadParameter(
                f"{part!r}: both must be between 0 and 1", param_hint="--strategies"
            )
        pairs.append((low, high))
    return tuple(pairs)
