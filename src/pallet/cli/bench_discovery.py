"""``pallet bench discovery``: the edge LB, VIPs and DNS on a real cluster, measured."""

from __future__ import annotations

import typer

from pallet.cli.common import console, print_json, table

__all__ = ["discovery"]


def discovery(
    upgrades: int = typer.Option(10, min=0, help="Rolling upgrades under load."),
    rate: float = typer.Option(
        200.0, min=1.0, help="Requests per second through each of LB, VIP, baseline."
    ),
    dns_tasks: int = typer.Option(200, min=1, help="Tasks whose DNS records are timed."),
    dns_seconds: float = typer.Option(5.0, min=0.5, help="Seconds of DNS load per server."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """A 5-instance HTTP app behind the edge LB and a VIP under steady load through rolling
    upgrades and a scale 5 -> 10 -> 2 (baseline: a client that keeps its first task's
    address); DNS: SRV ready after TASK_RUNNING, and queries/s of Pallet's DNS (unbound
    fed at run time) against a stock unbound and Pallet's Python server. Goals: 0 failed
    requests; ready p99 <= 1 s; >= 20,000 queries/s with p99 <= 5 ms."""
    from pallet.bench.discovery import run_discovery_bench

    result = run_discovery_bench(upgrades, rate, dns_tasks, dns_seconds)
    if json_out:
        print_json(result.to_json())
        return

    def row(name: str, c: object) -> list[object]:
        from pallet.bench.httpload import LoadCount

        assert isinstance(c, LoadCount)
        errors = ", ".join(f"{k} {v}" for k, v in c.errors.most_common(3)) or None
        return [name, c.requests, c.failed, f"{c.rate:.0f}", errors]

    console.print(
        table(
            f"HTTP through {upgrades} rolling upgrades and a scale 5 -> 10 -> 2",
            ["path", "requests", "failed", "req/s", "errors"],
            [
                row("edge LB (vhost)", result.lb),
                row("VIP", result.vip),
                row("first task's address (baseline)", result.direct),
            ],
        )
    )
    d = result.dns

    def dns_row(name: str, r: object) -> list[object]:
        from pallet.bench.dnsload import LoadResult

        assert isinstance(r, LoadResult)
        return [name, f"{r.qps:.0f}", f"{r.percentile(50):.2f}", f"{r.percentile(99):.2f}", r.lost]

    console.print(
        table(
            f"DNS: SRV answering after TASK_RUNNING over {d.tasks} tasks: "
            f"p50 {d.ready_p50_s:.3f} s, p99 {d.ready_p99_s:.3f} s, max {d.ready_max_s:.3f} s",
            ["server (same records, loopback)", "queries/s", "p50 ms", "p99 ms", "lost"],
            [
                dns_row("Pallet's DNS: unbound fed at run time", d.served),
                dns_row("stock unbound (baseline)", d.unbound),
                dns_row("Pallet's Python server", d.python),
            ],
        )
    )
