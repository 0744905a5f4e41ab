"""``pallet node ...``: the machines of the cluster, what they have, promise and use; does
I/O through ``pallet.client``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.text import Text

from pallet.cli import node_maintenance
from pallet.cli.client_opts import DEFAULT_MASTER, JsonOption, MasterOption, connect
from pallet.cli.common import console, print_json
from pallet.cli.render import age, details, listing, num, print_table, say, task_table
from pallet.client import Node, NodeResources

__all__ = ["app"]

app = typer.Typer(help="Nodes: the machines that run tasks.", no_args_is_help=True)
app.add_typer(node_maintenance.app, name="maintenance")


def _share(allocated: float, capacity: float) -> str:
    """``1.5/8``: promised of the total."""
    return f"{num(allocated)}/{num(capacity)}"


def _state(node: Node) -> Text:
    colour = {"ACTIVE": "green", "DRAINING": "yellow", "GONE": "dim", "DOWN": "dim"}.get(
        node.state, "red"
    )
    text = Text(node.state, style=colour)
    sup = node.raw.get("supervisor")
    if sup and sup.get("backing_off_until"):
        text.append(f" (agent crash-looping, next start {_until(sup['backing_off_until'])})", "red")
    return text


def _until(iso: str) -> str:
    """``in 12s`` until an ISO 8601 time (``now`` once it has passed)."""
    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    seconds = int((at - datetime.now(UTC)).total_seconds())
    return f"in {seconds}s" if seconds > 0 else "now"


def _supervisor_text(node: Node) -> str:
    """What ``pallet up`` said of the node's agent: restarts, back-off, last words."""
    sup = node.raw.get("supervisor")
    if not sup:
        return ""
    parts = [f"{sup['supervisor']} restarted its agent {sup['restarts']} time(s)"]
    if sup.get("exits_last_minute"):
        parts.append(f"{sup['exits_last_minute']} in the last minute")
    if sup.get("backing_off_until"):
        parts.append(f"next start {sup['backing_off_until']}")
    if sup.get("last_line"):
        parts.append(f"it said: {sup['last_line']}")
    return "; ".join(parts)


NodeIdArg = Annotated[str, typer.Argument(help="Node id, as `pallet node list` shows it.")]


def _drain_text(node: Node) -> str:
    drain = node.raw.get("drain")
    if not drain:
        return ""
    deadline = drain.get("deadline")
    return f"since {drain.get('started_at')}" + (f", deadline {deadline}" if deadline else "")


def _maintenance_text(node: Node) -> str:
    m = node.raw.get("maintenance")
    if not m:
        return ""
    u = m["unavailability"]
    start = node_maintenance.iso_ns(u["start"]["nanoseconds"])
    span = node_maintenance.span_ns(u.get("duration", {}).get("nanoseconds"))
    return f"{m['mode']}, window {start} for {span} ({m['phase']})"


@app.command("list")
def list_nodes(json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER) -> None:
    """List the nodes: state, resources allocated of capacity, tasks, last heartbeat."""
    with connect(master) as client:
        nodes = client.list_nodes()
    if json_out:
        print_json([dict(n.raw) for n in nodes])
        return
    if not nodes:
        say(console, "No nodes. Start agents with `pallet up` or `pallet agent --master URL`.")
        return
    rows = [
        [
            n.id,
            n.hostname,
            _state(n),
            _share(n.allocated.cpus, n.capacity.cpus),
            _share(n.allocated.mem, n.capacity.mem),
            _share(n.allocated.gpus, n.capacity.gpus) if n.capacity.gpus else "",
            len(n.task_ids),
            age(n.last_heartbeat),
        ]
        for n in sorted(nodes, key=lambda n: n.id)
    ]
    columns = ["ID", "HOSTNAME", "STATE", "CPUS>", "MEM MiB>", "GPUS>", "TASKS>", "HEARTBEAT"]
    print_table(console, listing(None, columns, rows))


def _resources(label: str, r: NodeResources, with_gpus: bool) -> list[object]:
    row: list[object] = [label, num(r.cpus), num(r.mem), num(r.disk)]
    if with_gpus:
        row.append(num(r.gpus))
    return row


@app.command("show")
def show(
    node_id: NodeIdArg,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Show one node: attributes, capacity against allocated and used, and its tasks."""
    with connect(master) as client:
        detail = client.get_node(node_id)
    if json_out:
        print_json(dict(detail.raw))
        return
    n = detail.node
    attributes = ", ".join(f"{k}={v}" for k, v in sorted(n.attributes.items()))
    print_table(
        console,
        details(
            n.id,
            [
                ("hostname", n.hostname),
                ("state", _state(n)),
                ("role", n.role),
                ("attributes", attributes),
                ("gpu model", n.gpu_model),
                ("ports", ", ".join(n.capacity.ports)),
                ("heartbeat", age(n.last_heartbeat)),
                ("drained", _drain_text(n)),
                ("maintenance", _maintenance_text(n)),
                ("supervisor", _supervisor_text(n)),
            ],
        ),
    )
    gpus = bool(n.capacity.gpus)
    columns = ["", "CPUS>", "MEM MiB>", "DISK MiB>", *(["GPUS>"] if gpus else [])]
    rows: list[list[object]] = [
        _resources("capacity", n.capacity, gpus),
        _resources("allocated", n.allocated, gpus),
        # Agents measure CPU and memory use only.
        ["used", num(n.used.cpus), num(n.used.mem), None, *([None] if gpus else [])],
    ]
    print_table(console, listing(None, columns, rows))
    if detail.tasks:
        print_table(console, task_table("Tasks", sorted(detail.tasks, key=lambda t: t.id), True))
    elif n.task_ids:
        say(console, f"Tasks: {', '.join(n.task_ids)}")


@app.command("drain")
def drain(
    node_id: NodeIdArg,
    deadline: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Seconds after which tasks that have not moved are killed (default: none).",
        ),
    ] = None,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Take a node out of service: it gets no new task and its tasks move elsewhere, each
    app keeping its minimumHealthCapacity. It stays drained across agent restarts until
    `pallet node undrain`."""
    with connect(master) as client:
        node = client.drain_node(node_id, deadline)
    if json_out:
        print_json(dict(node.raw))
        return
    moving = len(node.task_ids)
    when = f"; what has not moved in {deadline:g} s is killed" if deadline is not None else ""
    say(console, f"Draining {node.id}: {moving} task(s) to move elsewhere{when}")


@app.command("undrain")
def undrain(
    node_id: NodeIdArg, json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER
) -> None:
    """Put a drained node back in service: it takes new tasks again."""
    with connect(master) as client:
        node = client.undrain_node(node_id)
    if json_out:
        print_json(dict(node.raw))
        return
    say(console, f"{node.id} is {node.state}")


@app.command("remove")
def remove(
    node_id: NodeIdArg, json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER
) -> None:
    """Forget a node that is down (UNREACHABLE, GONE, DOWN) or drained; an ACTIVE node is
    refused. If its agent comes back, it registers as a new node would."""
    with connect(master) as client:
        node = client.remove_node(node_id)
    if json_out:
        print_json(dict(node.raw))
        return
    say(console, f"Removed {node.id} ({node.hostname}, was {node.state})")
