"""``pallet dns ...``: serve Pallet's DNS (Mesos-DNS names, kept in step by events) and
look names up in it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from pallet.cli.client_opts import DEFAULT_MASTER, JsonOption, MasterOption
from pallet.model import ValidationError

__all__ = ["app"]

app = typer.Typer(
    help="Service discovery by DNS: <app>.marathon.mesos and friends.", no_args_is_help=True
)

DEFAULT_DNS_PORT = 8053


def _hostport(text: str, option: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValidationError(option, f"{text!r} is not HOST:PORT, such as 127.0.0.1:8053")
    return host, int(port)


@app.command("serve")
def serve(
    master: MasterOption = DEFAULT_MASTER,
    bind: str = typer.Option("127.0.0.1", help="Address to answer on."),
    port: int = typer.Option(
        DEFAULT_DNS_PORT, min=1, max=65535, help="UDP and TCP port (53 needs root)."
    ),
    server: str = typer.Option(
        "unbound",
        help="unbound (Debian's, fed at run time; the default: it measured faster) or python.",
    ),
    work_dir: Path = typer.Option(Path("pallet-dns"), help="unbound's configuration and sockets."),
    ttl: int = typer.Option(1, min=0, max=3600, help="TTL of the answers, in seconds."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Answer <app>.marathon.mesos, _<app>._tcp.marathon.mesos, <app>.pallet and VIP names
    for the master's apps; forward every other name to this machine's resolvers."""
    from pallet.client.transport import master_url
    from pallet.dns.service import DnsConfig, serve_dns

    if server not in ("unbound", "python"):
        raise ValidationError("--server", f"{server!r}: choose unbound or python")
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s dns %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    serve_dns(DnsConfig(master_url(master), bind, port, server, work_dir, ttl))


@app.command("lookup")
def lookup(
    name: Annotated[str, typer.Argument(help="A name, such as web-prod.marathon.mesos.")],
    qtype: str = typer.Option("A", "--type", help="A, SRV or ANY."),
    server: str | None = typer.Option(
        None, help="HOST:PORT of the DNS server (default: the one the master knows)."
    ),
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Ask Pallet's DNS server for NAME and print the records."""
    from dnslib import QTYPE, DNSRecord

    from pallet.cli.common import console, print_json, table
    from pallet.cli.render import print_table

    kind = qtype.upper()
    if kind not in ("A", "SRV", "ANY"):
        raise ValidationError("--type", f"{qtype!r}: choose A, SRV or ANY")
    if server is None:
        from pallet.cli.client_opts import connect

        with connect(master) as client:
            found = client.discovery().get("dns") or {}
        server = str(found.get("address") or f"127.0.0.1:{DEFAULT_DNS_PORT}")
    host, port = _hostport(server, "--server")
    query = DNSRecord.question(name, kind)
    try:
        reply = DNSRecord.parse(query.send(host, port, timeout=3))
        if reply.header.tc:
            reply = DNSRecord.parse(query.send(host, port, tcp=True, timeout=3))
    except OSError as e:
        raise ValidationError("--server", f"no answer from {host}:{port} ({e})") from None
    records = [
        {
            "name": str(rr.rname).rstrip("."),
            "type": QTYPE[rr.rtype],
            "ttl": rr.ttl,
            "data": str(rr.rdata),
        }
        for rr in reply.rr
    ]
    status = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN"}.get(
        reply.header.rcode, str(reply.header.rcode)
    )
    if json_out:
        print_json({"name": name, "type": kind, "status": status, "records": records})
        return
    if not records:
        console.print(f"{name}: {status}, no {kind} records")
        raise typer.Exit(1 if status == "NXDOMAIN" else 0)
    rows = [[r["name"], r["type"], r["ttl"], r["data"]] for r in records]
    print_table(
        console,
        table(f"{name} ({status}, from {host}:{port})", ["NAME", "TYPE", "TTL", "DATA"], rows),
    )


if __name__ == "__main__":  # `pallet up` starts `python -m pallet.cli.dns serve`: fewer imports
    from pallet.cli.standalone import run_standalone

    run_standalone(app)
