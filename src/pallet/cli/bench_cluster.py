"""``pallet bench e2e`` and ``pallet bench api``: a real cluster and a real master, measured."""

from __future__ import annotations

from pathlib import Path

import typer

from pallet.cli.common import console, print_json, table

__all__ = ["api", "containers", "e2e"]


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
                [
                    "pallet: POST to all placed (staged or running)",
                    doc["placed_s"],
                    f"{doc['placed_s'] / doc['raw_spawn_s']:.2f}",
                ],
                ["pallet: POST to all RUNNING", doc["pallet_s"], f"{doc['ratio']:.2f}"],
                [
                    "pallet: POST to the last RUNNING recorded",
                    doc["recorded_s"],
                    f"{doc['recorded_s'] / doc['raw_spawn_s']:.2f}",
                ],
                [
                    "CPU seconds: master / agents",
                    f"{doc['master_cpu_s']} / {doc['agents_cpu_s']}",
                    "",
                ],
                [
                    "CPU seconds: direct spawn / its children",
                    f"{doc['raw_spawn_cpu_s']} / {doc['raw_children_cpu_s']}",
                    "",
                ],
                [
                    f"floor if CPU-bound on {doc['cores']} cores",
                    "",
                    f"{doc['cpu_bound_ratio']:.2f}",
                ],
                ["CPU seconds: pallet's / the direct spawn's", "", f"{doc['cpu_ratio']:.2f}"],
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
    apps: int | None = typer.Option(
        None, help="Apps in the master (default 1,000; with --mixed 3,000)."
    ),
    clients: int | None = typer.Option(
        None, help="Concurrent clients (default 50; with --mixed 200)."
    ),
    requests: int = typer.Option(20, help="Requests per client (not with --mixed)."),
    mixed: bool = typer.Option(
        False, "--mixed", help="70 % GET /v2/apps, 30 % creates, updates and deletes."
    ),
    seconds: float = typer.Option(60.0, help="Seconds of mixed load (with --mixed)."),
    keep_store: Path | None = typer.Option(
        None, help="With --mixed: copy the store's file (and WAL) after the load to this directory."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Latency of GET /v2/apps with many apps under concurrent clients (goal: p99 <= 50
    ms). With --mixed: 200 clients, 3,000 apps, 70 % reads and 30 % writes for 60 s:
    errors (0), read p99 (<= 250 ms) against read-only in the same run, writes/s
    (>= 300), store size against live records (<= 10x)."""
    if mixed:
        _mixed(apps or 3_000, clients or 200, seconds, json_out, keep_store)
        return
    from pallet.bench.api import run_api_bench

    apps, clients = apps or 1_000, clients or 50
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


def _mixed(
    apps: int, clients: int, seconds: float, json_out: bool, keep_store: Path | None = None
) -> None:
    from pallet.bench.apimixed import run_mixed_bench
    from pallet.model import ValidationError

    if apps < clients:
        raise ValidationError("--apps", f"must be at least --clients ({clients})")
    if not 1 <= clients <= 2_000:
        raise ValidationError("--clients", "must be between 1 and 2000")
    if not 0 < seconds <= 3_600:
        raise ValidationError("--seconds", "must be between 0 and 3600")
    doc = run_mixed_bench(apps, clients, seconds, keep_store=keep_store).to_json()
    if keep_store is not None:
        typer.echo(f"store file kept in {keep_store.resolve()}", err=True)
    if json_out:
        print_json(doc)
        return
    before, after = doc["store_before"], doc["store_after"]
    console.print(
        table(
            f"{clients} clients, {apps} apps, {seconds:.0f} s: 70 % GET /v2/apps, 30 % writes",
            ["what", "mixed", "read-only (same run)", "goal"],
            [
                ["requests", doc["requests"], doc["readonly_requests"], ""],
                ["errors", doc["errors"], "", "0"],
                ["read p50 ms", doc["read_p50_ms"], doc["readonly_p50_ms"], ""],
                ["read p99 ms", doc["read_p99_ms"], doc["readonly_p99_ms"], "<= 250"],
                ["write p99 ms", doc["write_p99_ms"], "", ""],
                ["writes/s", doc["writes_per_s"], "", ">= 300"],
                [
                    "no-op GET /ping per s (same clients)",
                    doc["noop_per_s"],
                    "",
                    "",
                ],
                ["writes/s bound (30 % of no-op)", doc["writes_per_s_bound"], "", ""],
                [
                    "master CPU s (busy share)",
                    f"{doc['master_cpu_s']} ({doc['master_busy']})",
                    "",
                    "",
                ],
                ["master CPU ms per read", "", doc["readonly_cpu_ms"], ""],
                ["master CPU ms per write", doc["cpu_per_write_ms"], "", ""],
                [
                    "store MB before / after",
                    f"{before['file_bytes'] / 1e6:.1f} / {after['file_bytes'] / 1e6:.1f}",
                    "",
                    "",
                ],
                [
                    "live records MB before / after",
                    f"{before['live_bytes'] / 1e6:.2f} / {after['live_bytes'] / 1e6:.2f}",
                    "",
                    "",
                ],
                ["store / live after", after["ratio"], "", "<= 10"],
            ],
        )
    )
    if doc["errors"]:
        typer.secho(f"errors: {doc['error_kinds']}", fg=typer.colors.YELLOW, err=True)


def containers(
    tasks: int = typer.Option(200, help="Instances of one image (its Cmd: sleep 600)."),
    agents: int = typer.Option(4, help="Agents of the `pallet up` cluster."),
    pull_mib: int = typer.Option(100, help="Size of the image whose pull is timed."),
    survivors: int = typer.Option(50, help="Containers running when every agent is killed."),
    image: str = typer.Option(
        "busybox",
        help="The image run: busybox (1.2 MiB) or python (this machine's Python, ~36 MiB).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Containers on `pallet up` (root; runc, skopeo, docker-registry): time to run an
    image's instances against plain `runc run`, pulls per agent, root filesystem disk,
    a pull against `skopeo copy`, and restarts when every agent is SIGKILLed."""
    from pallet.agent.images import ImageStore
    from pallet.bench.containers import IMAGES, run_containers_bench
    from pallet.model import ValidationError
    from pallet.model.images import parse_image

    if image not in IMAGES:
        raise ValidationError("--image", f"one of {', '.join(IMAGES)}, not {image!r}")

    def pull(ref: str, directory: Path) -> object:  # as an agent pulls, into a fresh store
        return ImageStore(directory).ensure(parse_image(ref))

    result = run_containers_bench(pull, tasks, agents, pull_mib, survivors, image=image)
    doc = result.to_json()
    if json_out:
        print_json(doc)
        return
    console.print(
        table(
            f"{tasks} containers of the {image} image on {agents} agents; a {pull_mib} MiB pull",
            ["what", "pallet", "baseline (same run)", "ratio", "goal"],
            [
                [
                    f"{tasks} containers running",
                    f"{doc['pallet_s']} s",
                    f"{doc['raw_runc_s']} s (runc run)",
                    f"{doc['ratio']:.2f}",
                    "<= 2",
                ],
                ["pulls of the image per agent", doc["pulls_per_agent"], "", "", "1"],
                [
                    "root filesystems' disk / image",
                    "",
                    "",
                    f"{doc['rootfs_disk_ratio']:.3f}",
                    "<= 1.1",
                ],
                [
                    f"pull {pull_mib} MiB",
                    f"{doc['pull_s']} s",
                    f"{doc['skopeo_s']} s (skopeo copy)",
                    f"{doc['pull_ratio_to_skopeo']:.2f}",
                    "<= 1.5",
                ],
                [
                    f"restarts of {survivors} containers, agents SIGKILLed",
                    doc["restarts_after_agent_kill"],
                    "",
                    "",
                    "0",
                ],
            ],
        )
    )
