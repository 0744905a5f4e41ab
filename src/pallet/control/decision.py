"""A Decision: one change of the master, as the store ops, the memory changes and the events
it makes; pure.

Every writer of the master (the applier's task and node decisions, the controllers, the
job controller) computes a ``Decision`` from (state, input, now) without I/O or clock,
and ``Applier.apply`` carries it out: ONE store transaction of ``ops`` guarded by
``compares`` (and the leader's fence), then the changes of ``ClusterState``, then the
events. A decision is whole: nothing of it is stored unless all of it is. An input too
large for one transaction (a plan of thousands of placements, a status batch of thousands
of reports) is decided in parts, each a whole decision of its own (``first_part``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TypeVar

from pallet.control.records import (
    AppRecord,
    BackoffRecord,
    DeploymentRecord,
    NodeRecord,
    TaskRecord,
)
from pallet.control.reservations import ReservationRecord
from pallet.model import NodeState
from pallet.model.maintenance import Maintenance
from pallet.store import MAX_TXN_BYTES, MAX_TXN_OPS, Compare, Delete, Op, Put

__all__ = ["CHAIN_ROOM", "GUARD_ROOM", "Decision", "first_part", "txn_bytes"]

_T = TypeVar("_T")

GUARD_ROOM = 8
"""Compares kept free for the guards ``apply`` adds (the leader's fence, the pipeline's
chain)."""

CHAIN_ROOM = 1
"""Operations kept free for the write of the pipeline's chain (``control.pipeline``)."""

_OPTIMISTIC = frozenset(
    {
        "compares",
        "ops",
        "backoff",
        "dropped_backoff",
        "apps",
        "dropped_apps",
        "deployments",
        "dropped_deployments",
        "events",
        "counts",
        "logs",
        "touch",
        "wake",
    }
)


@dataclass(frozen=True, slots=True)
class Decision:
    """What one decision changes. The memory changes are applied in the order of the
    fields below, after the transaction committed; then the events are published."""

    compares: tuple[Compare, ...] = ()
    """The decision's own guard: it is stored only if each holds (the leader's fence is
    added by ``apply``)."""
    ops: tuple[Op, ...] = ()
    """The store operations, committed in one transaction."""
    nodes: tuple[NodeRecord, ...] = ()
    """Nodes added or replaced (``ClusterState.put_node``)."""
    node_states: tuple[tuple[str, NodeState], ...] = ()
    """Nodes whose state alone changes (``set_node_state``)."""
    maintenance: Maintenance | None = None
    reservations: tuple[ReservationRecord, ...] = ()
    tasks: tuple[TaskRecord, ...] = ()
    """Tasks created or changed (``put_task``)."""
    dropped_tasks: tuple[str, ...] = ()
    dropped_reservations: tuple[str, ...] = ()
    dropped_nodes: tuple[str, ...] = ()
    backoff: tuple[tuple[str, BackoffRecord], ...] = ()
    """Apps' launch delays, by app id."""
    dropped_backoff: tuple[str, ...] = ()
    apps: tuple[AppRecord, ...] = ()
    dropped_apps: tuple[str, ...] = ()
    """Apps deleted (with their launch delay and queue entry)."""
    deployments: tuple[DeploymentRecord, ...] = ()
    dropped_deployments: tuple[str, ...] = ()
    after: tuple[Callable[[], None], ...] = ()
    """Changes of memory outside ``ClusterState`` (the job book), made once committed."""
    events: tuple[object, ...] = ()
    """Published on the bus, in order, once memory changed."""
    counts: tuple[tuple[str, int], ...] = ()
    """Counters to raise (``placed``, ``rejected``, ``illegal``), for ``/metrics``."""
    logs: tuple[tuple[int, str], ...] = ()
    """(level, message) to log once committed."""
    touch: bool = False
    """Raise ``ClusterState.generation`` even if no record above changed."""
    wake: bool = True
    """Wake the controllers once applied."""

    @property
    def empty(self) -> bool:
        """Nothing to store, change or say."""
        return not any(getattr(self, f.name) for f in fields(self) if f.name != "wake")

    @property
    def optimistic(self) -> bool:
        """Whether its memory changes may be made before it is durable (pipelined): only
        apps, deployments and launch delays, which are read again from the store if a
        commit fails. Tasks, slots and nodes wait for the commit (an agent must never be
        sent a task that is not stored), and so do changes outside ``ClusterState``."""
        return not any(getattr(self, f.name) for f in fields(self) if f.name not in _OPTIMISTIC)

    def fits(self) -> bool:
        """Whether the store takes it as one transaction."""
        return (
            len(self.ops) <= MAX_TXN_OPS - CHAIN_ROOM
            and len(self.compares) <= MAX_TXN_OPS - GUARD_ROOM
            and txn_bytes(self.ops) <= MAX_TXN_BYTES
        )

    def then(self, other: Decision) -> Decision:
        """This decision and then ``other``, as one: a key written by both keeps
        ``other``'s write (etcd refuses a key twice in one transaction)."""
        merged: dict[str, Op] = {}
        for op in (*self.ops, *other.ops):
            key = op.key if isinstance(op, Put | Delete) else f"\x00{id(op)}"
            merged.pop(key, None)
            merged[key] = op
        parts: dict[str, object] = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name == "ops":
                parts[f.name] = tuple(merged.values())
            elif f.name == "maintenance":
                parts[f.name] = b if b is not None else a
            elif isinstance(a, bool):
                parts[f.name] = a or b
            else:
                parts[f.name] = (*a, *b)
        return Decision(**parts)  # type: ignore[arg-type]


def txn_bytes(ops: Sequence[Op]) -> int:
    """The key and value bytes of ``ops``' writes (what the store's byte limit counts)."""
    total = 0
    for op in ops:
        if isinstance(op, Put):
            total += len(op.key.encode()) + len(op.value)
        elif isinstance(op, Delete):
            total += len(op.key.encode())
    return total


def first_part(
    items: Sequence[_T], decide: Callable[[Sequence[_T]], Decision]
) -> tuple[Decision, Sequence[_T]]:
    """The decision of the longest first part of ``items`` (halving) that fits one
    transaction, and the items left for later parts, each decided against the state the
    part before leaves. A single item's decision is returned whole even if it does not
    fit: the store refuses it then, and says why; it is never cut in two."""
    part = items
    decision = decide(part)
    while len(part) > 1 and not decision.fits():
        part = part[: len(part) // 2]
        decision = decide(part)
    return decision, items[len(part) :]
