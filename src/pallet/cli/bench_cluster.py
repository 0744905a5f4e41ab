"""``pallet bench e2e`` and ``pallet bench api``: a real cluster and a real master, measured."""

from __future__ import annotations

import typer

from pallet.cli.common import console, print_json, table

__all__ = ["api", "e2e"]


def e2e(
    tasks: int = typer.Option(1000, help="Instances of `sleep 600` to run."),
    agents: int = typer.Option(10, help="Agents of the `pallet up` cluster."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Seconds until an app's instances all run on `pallet up`, against spawning as many
    processes directly (measured in the same run). Goal: at most 3x."""
    from pallet.bench.e2e import run_e2e_bench

    result = run_e2e_bench(tasks, agents)
    if json_out:
        print_json(result.to_json())
        return
    doc = result.to_json()
    console.print(
        table(
            f"{tasks} tasks of `sleep 600` (10 millicpus, 8 MiB) on {agents} agents",
            ["what", "seconds", "x baseline"],
            [
                ["spawn directly (baseline)", doc["raw_spawn_s"], "1.00"],
                ["pallet: POST to all RUNNING", doc["pallet_s"], f"{doc['ratio']:.2f}"],
            ],
        )
    )
    if result.leftover_processes or result.leftover_cgroups:
        typer.secho(
            f"cleaned up after the cluster: {result.leftover_processes} processes, "
            f"{result.leftover_cgroups} cgroups",
            fg=typer.colors.YELLOW,
            err=True,
        )


def api(
    apps: int = typer.Option(1000, help="Apps in the master."),
    clients: int = typer.Option(50, help="Concurrent clients."),
    requests: int = typer.Option(20, help="Requests per client."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Latency of GET /v2/apps with many apps under concurrent clients. Goal: p99 <= 50 ms."""
    from pallet.bench.api import run_api_bench

    result = run_api_bench(apps, clients, requests)
    if json_out:
        print_json(result.to_json())
        return
    console.print(
        table(
            f"GET /v2/apps: {apps} apps, {clients} clients x {requests} requests",
            ["p50 ms", "p99 ms", "max ms", "body bytes (gzip)"],
            [
                [
                    f"{result.p50_ms:.1f}",
                    f"{result.p99_ms:.1f}",
                    f"{result.max_ms:.1f}",
                    result.body_bytes,
                ]
            ],
        )
    )
