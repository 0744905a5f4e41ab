"""``pallet bench cli``: start-up time of the ``pallet`` command against the interpreter's."""

from __future__ import annotations

import typer

from pallet.cli.common import console, print_json, table

__all__ = ["cli"]


def cli(
    runs: int = typer.Option(5, min=1, max=100, help="Timed runs of each command (median)."),
    top: int = typer.Option(6, min=0, max=50, help="Costliest imports to show per command."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Milliseconds until `pallet --help`, `pallet version` and `pallet app list` (against
    a real master) exit, against `python -c pass` and `python -I -c pass`, with their
    costliest imports.
    Goal: 150 ms each."""
    from pallet.bench.cli import GOAL_MS, run_cli_bench

    result = run_cli_bench(runs, top)
    doc = result.to_json()
    if json_out:
        print_json(doc)
        return
    rows = [
        [b["command"], b["median_ms"], b["min_ms"], b["cpu_ms"], "", "", ""]
        for b in (doc["baseline"], doc["isolated_baseline"])
    ]
    for c in doc["commands"]:
        verdict = "yes" if c["median_ms"] <= GOAL_MS else "no"
        rows.append(
            [
                c["command"],
                c["median_ms"],
                c["min_ms"],
                c["cpu_ms"],
                c["x_baseline"],
                f"{c['over_baseline_ms']:+.1f}",
                verdict,
            ]
        )
    goal = f"≤ {GOAL_MS:.0f} ms"
    console.print(
        table(
            f"`pallet` start-up, median of {result.runs} runs ({result.executable})",
            ["command", "median ms", "min ms", "cpu ms", "x baseline", "over it ms", goal],
            rows,
        )
    )
    for c in doc["commands"]:
        heavy = ", ".join(c["heavy_imports"]) or "none"
        imports = ", ".join(f"{name} {ms:.0f}" for name, ms in c["top_imports_ms"])
        console.print(f"{c['command']}: costliest imports (ms) {imports}; heavy libraries: {heavy}")
