"""``pallet bench throughput``: placements per second at 12,500 nodes, every policy."""

from __future__ import annotations

import typer

from pallet.cli.common import console, parse_names, print_json, table
from pallet.core.policies import POLICY_NAMES

DEFAULT_POLICIES = ("pallet", "first-fit", "bestfit", "k8s-default", "k8s-most", "nomad-binpack")


def throughput(
    policies: str = typer.Option(",".join(DEFAULT_POLICIES), help="Policies to measure."),
    nodes: int = typer.Option(12_500, min=1, help="Cluster size."),
    tasks: int = typer.Option(100_000, min=1, help="Tasks (Azure 2017 VMs in arrival order)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Placements per second on one core: Google 2011 machine shapes, Azure 2017 tasks,
    10 % of apps under hostname UNIQUE, half the tasks asking for a dynamic port."""
    from pallet.bench.throughput import build_throughput_case, run_throughput_apart

    names = parse_names(policies, "--policies", POLICY_NAMES)
    view, batches = build_throughput_case(nodes, tasks)
    results = [run_throughput_apart(p, view, batches) for p in names]
    doc = {
        "nodes": len(view),
        "tasks": sum(len(b) for b in batches),
        "results": [
            {
                "policy": r.policy,
                "placements_per_s": round(r.placements_per_s),
                "placed": r.placed,
                "unplaced": r.unplaced,
                "seconds": round(r.seconds, 2),
            }
            for r in results
        ],
    }
    if json_out:
        print_json(doc)
        return
    rows = [
        [r.policy, round(r.placements_per_s), r.placed, r.unplaced, round(r.seconds, 2)]
        for r in results
    ]
    console.print(
        table(
            f"Scheduling throughput — {doc['nodes']} nodes, {doc['tasks']} tasks, one core",
            ["policy", "placements/s", "placed", "unplaced", "seconds"],
            rows,
        )
    )
