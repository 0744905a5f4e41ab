"""``pallet node maintenance ...``: Mesos-style maintenance windows (schedule machines,
take them down, bring them up, see their status); does I/O through ``pallet.client``.

A machine is named ``HOST``, ``IP`` or ``HOST@IP``, as Mesos's ``{hostname, ip}``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from pallet.cli.client_opts import DEFAULT_MASTER, JsonOption, MasterOption, connect
from pallet.cli.common import console, print_json
from pallet.cli.render import listing, print_table, say
from pallet.errors import ValidationError

__all__ = ["app", "iso_ns", "machine_id", "parse_duration", "parse_start", "span_ns"]

app = typer.Typer(
    help="Maintenance windows (Mesos's): machines scheduled are drained, down ones run "
    "nothing until up.",
    no_args_is_help=True,
)

_NS = 1_000_000_000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd]?)")

MachinesArg = Annotated[
    list[str], typer.Argument(help="Machines: HOST, IP or HOST@IP (as the agents registered).")
]


def machine_id(text: str) -> dict[str, str]:
    """``HOST``, ``IP`` or ``HOST@IP`` -> Mesos's ``MachineID``."""
    host, _, ip = text.partition("@")
    if not ip:
        try:
            return {"ip": str(ipaddress.ip_address(host))}
        except ValueError:
            pass
    if not host:
        raise ValidationError("MACHINE", f"{text!r}: give HOST, IP or HOST@IP")
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ValidationError("MACHINE", f"{text!r}: {ip!r} is not an IP address") from None
        return {"hostname": host, "ip": ip}
    return {"hostname": host}


def parse_duration(text: str, option: str = "--duration") -> int:
    """``90``, ``90s``, ``30m``, ``2h``, ``1d`` -> nanoseconds."""
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise ValidationError(option, f"{text!r} is not a duration like 90s, 30m, 2h or 1d")
    return int(float(m.group(1)) * _UNITS[m.group(2) or "s"] * _NS)


def parse_start(text: str, now: float) -> int:
    """``now``, ``+30m`` (from now) or an ISO 8601 time (UTC unless it says) ->
    epoch nanoseconds."""
    if text == "now":
        return int(now * _NS)
    if text.startswith("+"):
        return int(now * _NS) + parse_duration(text[1:], "--start")
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            "--start", f"{text!r} is not now, +DURATION or an ISO 8601 time"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp()) * _NS + at.microsecond * 1000


def iso_ns(ns: int) -> str:
    return (
        datetime.fromtimestamp(ns / _NS, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def span_ns(ns: int | None) -> str:
    if ns is None:
        return "indefinite"
    seconds = ns / _NS
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _machine_text(m: dict[str, str]) -> str:
    return "@".join(p for p in (m.get("hostname"), m.get("ip")) if p)


def _show_schedule(doc: dict[str, Any], status: dict[str, Any]) -> None:
    windows = doc.get("windows") or []
    if not windows:
        say(console, "No maintenance scheduled.")
        return
    down = {_machine_text(m) for m in status.get("down_machines") or []}
    rows = []
    for w in windows:
        u = w["unavailability"]
        duration = u.get("duration", {}).get("nanoseconds")
        for m in w["machine_ids"]:
            name = _machine_text(m)
            mode = "DOWN" if name in down else "DRAINING"
            rows.append([name, mode, iso_ns(u["start"]["nanoseconds"]), span_ns(duration)])
    print_table(console, listing(None, ["MACHINE", "MODE", "START", "DURATION"], rows))


def _get(client: Any, path: str) -> dict[str, Any]:
    from pallet.client import calls

    doc = client.run(calls.json("GET", path))
    return doc if isinstance(doc, dict) else {}


@app.command("schedule")
def schedule(
    machines: Annotated[
        list[str] | None,
        typer.Argument(help="Machines to add in one new window: HOST, IP or HOST@IP."),
    ] = None,
    start: Annotated[
        str, typer.Option(help="When the window starts: now, +DURATION or an ISO 8601 time.")
    ] = "now",
    duration: Annotated[
        str | None, typer.Option(help="How long: 90s, 30m, 2h, 1d (default: indefinite).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Replace the whole schedule with this Mesos JSON."),
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Cancel every window (DOWN machines stay).")
    ] = False,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Show the maintenance schedule, or change it: add a window for MACHINES, replace it
    with --file, or --clear it. Scheduled machines drain at once: they get no new task
    and their tasks move elsewhere, each app keeping its minimumHealthCapacity."""
    import time

    from pallet.client import calls

    given = [bool(machines), file is not None, clear]
    if sum(given) > 1:
        raise ValidationError("MACHINES", "give machines, --file or --clear, one of them")
    with connect(master) as client:
        doc = _get(client, "/maintenance/schedule")
        new: dict[str, Any] | None = None
        if file is not None:
            try:
                new = json.loads(file.read_text())
            except (OSError, ValueError) as e:
                raise ValidationError("--file", f"cannot read {file}: {e}") from None
        elif clear:
            new = {"windows": []}
        elif machines:
            unavailability: dict[str, Any] = {
                "start": {"nanoseconds": parse_start(start, time.time())}
            }
            if duration is not None:
                unavailability["duration"] = {"nanoseconds": parse_duration(duration)}
            window = {
                "machine_ids": [machine_id(m) for m in machines],
                "unavailability": unavailability,
            }
            new = {"windows": [*(doc.get("windows") or []), window]}
        if new is not None:
            client.run(calls.json("POST", "/maintenance/schedule", new))
            doc = _get(client, "/maintenance/schedule")
        status = _get(client, "/maintenance/status")
    if json_out:
        print_json(doc)
        return
    _show_schedule(doc, status)


def _post_machines(path: str, machines: list[str], master: str) -> dict[str, Any]:
    from pallet.client import calls

    body = [machine_id(m) for m in machines]
    with connect(master) as client:
        client.run(calls.json("POST", path, body))
        return _get(client, "/maintenance/status")


@app.command("down")
def down(
    machines: MachinesArg, json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER
) -> None:
    """Start maintenance on scheduled machines: their nodes are DOWN, their tasks killed
    (replaced elsewhere), and their agents may not register until `up`."""
    status = _post_machines("/machine/down", machines, master)
    if json_out:
        print_json(status)
        return
    say(console, f"DOWN: {', '.join(machines)}")


@app.command("up")
def up(
    machines: MachinesArg, json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER
) -> None:
    """End maintenance on DOWN machines: they leave the schedule and take tasks again."""
    status = _post_machines("/machine/up", machines, master)
    if json_out:
        print_json(status)
        return
    say(console, f"UP: {', '.join(machines)}")


@app.command("status")
def status(json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER) -> None:
    """Which machines are draining and which are down (Mesos's /maintenance/status)."""
    with connect(master) as client:
        doc = _get(client, "/maintenance/status")
        sched = _get(client, "/maintenance/schedule")
    if json_out:
        print_json(doc)
        return
    _show_schedule(sched, doc)
