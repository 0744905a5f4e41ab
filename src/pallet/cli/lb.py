"""``pallet lb ...``: the edge load balancer (HAProxy driven by Marathon-LB labels), an
agent's VIP proxy, and what every load balancer is doing."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from pallet.cli.client_opts import DEFAULT_MASTER, JsonOption, MasterOption
from pallet.model import ValidationError

__all__ = ["app"]

app = typer.Typer(help="Load balancing: the edge LB and the VIP proxies.", no_args_is_help=True)


def _logging(level: str, who: str) -> None:
    logging.basicConfig(
        level=level.upper(), format=f"%(asctime)s {who} %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


@app.command("run")
def run(
    master: MasterOption = DEFAULT_MASTER,
    bind: str = typer.Option("127.0.0.1", help="Address the frontends bind (a public agent's)."),
    group: str = typer.Option(
        "external", help="HAPROXY_GROUP values served, comma-separated; * serves every app."
    ),
    http_port: int = typer.Option(80, min=1, max=65535, help="Port of the vhost frontend."),
    https_port: int = typer.Option(443, min=1, max=65535, help="Port of the TLS frontend."),
    stats_port: int = typer.Option(
        9090, min=1, max=65535, help="Port of /haproxy?stats and /_haproxy_health_check."
    ),
    ssl_cert: list[Path] = typer.Option([], help="A PEM certificate for HTTPS (repeatable)."),
    state_dir: Path = typer.Option(Path("pallet-lb"), help="HAProxy's configuration and sockets."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Run the edge load balancer: Debian's HAProxy in master-worker mode, configured from
    the apps' Marathon-LB labels, only ready and healthy tasks as servers, changed by
    seamless reloads (a configuration haproxy -c refuses is never loaded)."""
    from pallet.client.transport import master_url
    from pallet.lb.service import LbConfig, serve_lb

    groups = tuple(g.strip() for g in group.split(",") if g.strip())
    if not groups:
        raise ValidationError("--group", "give at least one group, or * for every app")
    for cert in ssl_cert:
        if not cert.is_file():
            raise ValidationError("--ssl-cert", f"{cert} is not a file")
    _logging(log_level, "lb")
    serve_lb(
        LbConfig(
            master=master_url(master),
            kind="edge",
            bind=bind,
            groups=groups,
            http_port=http_port,
            https_port=https_port,
            stats_port=stats_port,
            ssl_certs=tuple(str(c.resolve()) for c in ssl_cert),
            state_dir=state_dir.resolve(),
        )
    )


@app.command("vip")
def vip(
    master: MasterOption = DEFAULT_MASTER,
    name: str = typer.Option("", help="This proxy's name in `pallet lb status` (an agent's)."),
    state_dir: Path = typer.Option(Path("pallet-vip"), help="HAProxy's configuration and sockets."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Run an agent's VIP proxy: HAProxy in TCP mode binding every VIP (named VIPs on
    127.11.x.y, from a hash of the name), balancing over the ready tasks."""
    from pallet.client.transport import master_url
    from pallet.lb.service import LbConfig, serve_lb

    _logging(log_level, "vip")
    serve_lb(
        LbConfig(master=master_url(master), kind="vip", id=name, state_dir=state_dir.resolve())
    )


@app.command("status")
def status(json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER) -> None:
    """The DNS server and each load balancer: configuration loaded, reloads, backends, errors."""
    from pallet.cli.client_opts import connect
    from pallet.cli.common import console, print_json, table
    from pallet.cli.render import print_table

    with connect(master) as client:
        doc = client.discovery()
    if json_out:
        print_json(doc)
        return
    dns = doc.get("dns")
    console.print(
        f"DNS: {dns['address']} ({dns.get('server')}, {dns.get('names', 0)} names)"
        if dns
        else "DNS: none reported"
    )
    lbs = doc.get("lbs") or []
    if not lbs:
        console.print("No load balancer reported.")
        return
    rows = [
        [
            lb["id"],
            lb["kind"],
            lb["address"],
            ",".join(lb.get("groups") or []) or None,
            lb.get("config_version"),
            lb.get("reloads"),
            lb.get("backends"),
            lb.get("error"),
        ]
        for lb in lbs
    ]
    columns = ["ID", "KIND", "ADDRESS", "GROUPS", "CONFIG", "RELOADS", "BACKENDS", "ERROR"]
    print_table(console, table("Load balancers", columns, rows))
    for lb in lbs:
        services = lb.get("services") or []
        if not services:
            continue
        if lb["kind"] == "edge":
            srows = [
                [
                    s["app"],
                    s.get("port"),
                    s["mode"],
                    ",".join(s.get("vhosts") or []) or None,
                    s.get("path"),
                    s["backends"],
                ]
                for s in services
            ]
            print_table(
                console,
                table(lb["id"], ["APP", "PORT", "MODE", "VHOSTS", "PATH", "BACKENDS"], srows),
            )
        else:
            srows = [
                [s["name"] or s["address"], s["address"], ",".join(s["apps"]), s["backends"]]
                for s in services
            ]
            print_table(console, table(lb["id"], ["VIP", "ADDRESS", "APPS", "BACKENDS"], srows))


if __name__ == "__main__":  # `pallet up` starts `python -m pallet.cli.lb ...`: fewer imports
    from pallet.cli.standalone import run_standalone

    run_standalone(app)
