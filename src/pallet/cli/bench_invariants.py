"""``pallet bench invariants``: the whole master under random use, invariants after each step."""

from __future__ import annotations

import typer

from pallet.cli.common import console, print_json, table

__all__ = ["invariants"]


def invariants(
    steps: int = typer.Option(20_000, help="Steps to run (apps, agents, nodes, restarts)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Random use of one master (memory store, fake clock, simulated agents): no node
    overcommitted, the view in step with the tasks, only legal task moves, no acknowledged
    app lost across restarts, never above maximumOverCapacity. Goal: 0 violations."""
    try:
        from pallet.bench.invariants import run_invariants
    except ModuleNotFoundError as e:
        raise typer.BadParameter(
            f"needs {e.name} (the test extra: pip install 'pallet[test]')"
        ) from None
    if not 50 <= steps <= 10_000_000:
        raise typer.BadParameter("--steps must be between 50 and 10,000,000")
    result = run_invariants(steps)
    if json_out:
        print_json(result)
        return
    console.print(
        table(
            "The master under random use",
            ["steps", "violations", "seconds", "first violation"],
            [
                [
                    result["steps"],
                    result["violations"],
                    result["seconds"],
                    result["first_violation"] or "—",
                ]
            ],
        )
    )
