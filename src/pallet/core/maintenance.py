"""What the maintenance schedule means for each node: its machine's mode, its window and
where ``now`` stands in it, the state the node should take, and the schedules that give
one node two windows; pure (``now`` is an argument).

Mesos moves a machine between modes only when the operator says so, whatever the clock:
scheduled it is DRAINING at once (frameworks get inverse offers and should vacate it
before the window starts), ``/machine/down`` makes it DOWN, ``/machine/up`` UP. Pallet
is the framework here and always answers the inverse offer the same way: a DRAINING
machine's nodes take no new task and their tasks move elsewhere as each app's
minimumHealthCapacity allows (an operator's drain without deadline); a DOWN machine's
nodes run nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pallet.model.errors import ValidationError
from pallet.model.maintenance import MachineMode, Maintenance, Window
from pallet.model.node import NodeState

__all__ = ["NodeMaintenance", "check_one_window", "node_maintenance", "resting_state"]


@dataclass(frozen=True, slots=True)
class NodeMaintenance:
    mode: MachineMode
    window: Window | None
    phase: str | None
    """``pending``, ``active`` or ``past`` (None outside the schedule)."""


def node_maintenance(m: Maintenance, hostname: str, ip: str, now: float) -> NodeMaintenance:
    window = m.window_of(hostname, ip)
    return NodeMaintenance(
        m.mode_of(hostname, ip), window, window.phase(now) if window is not None else None
    )


def resting_state(current: NodeState, mode: MachineMode, drained: bool) -> NodeState:
    """The state a node takes from its machine's mode and an operator's drain. DOWN wins
    (an unreachable node's machine may be taken down too: its tasks are written off);
    otherwise a node not heard from (UNREACHABLE, GONE) stays so and takes the mode when
    it is back; then a scheduled window or a drain makes it DRAINING."""
    if mode is MachineMode.DOWN and current is not NodeState.GONE:
        return NodeState.DOWN
    if current in (NodeState.UNREACHABLE, NodeState.GONE):
        return current
    if mode is MachineMode.DRAINING or drained:
        return NodeState.DRAINING
    return NodeState.ACTIVE


def check_one_window(windows: tuple[Window, ...], nodes: Iterable[tuple[str, str, str]]) -> None:
    """Refuse a schedule that names one node, ``(node id, hostname, ip)``, in two
    windows (e.g. once by hostname and once by IP): its unavailability would be two."""
    for node_id, hostname, ip in nodes:
        found: list[str] = []
        for i, w in enumerate(windows):
            for j, mid in enumerate(w.machine_ids):
                if mid.matches(hostname, ip):
                    found.append(f"/windows({i})/machine_ids({j})")
        if len(found) > 1:
            raise ValidationError(
                found[1], f"names node {node_id} ({hostname}, {ip}) again, after {found[0]}"
            )
