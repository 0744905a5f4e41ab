"""The applier's node writes: registration, a node lost, back, gone, drained, removed or
in maintenance, each one decision of ``decide_nodes`` applied whole; asyncio.

Mixed into ``Applier``: the same lock, the same ``apply``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pallet.control.decide_nodes import (
    DrainMoves,
    decide_drain_set,
    decide_draining,
    decide_gone,
    decide_maintenance,
    decide_register,
    decide_remove,
    decide_returned,
    decide_unreachable,
    drain_moves,
)
from pallet.control.decision import Decision
from pallet.control.records import NodeDrain, NodeRecord, TaskRecord
from pallet.control.state import ClusterState
from pallet.model.maintenance import Maintenance
from pallet.store import Op, TxnResult

__all__ = ["DrainMoves", "NodeDecisions", "drain_moves"]


class NodeDecisions:
    state: ClusterState
    clock: Callable[[], float]
    kick: Callable[[], None]
    lock: asyncio.Lock
    apply: Callable[[Decision], Awaitable[TxnResult]]
    """``Applier.apply``."""
    on_task_end: Callable[[TaskRecord, float], list[Op]]
    """Ops stored with a task's end (``Applier.on_task_end``)."""

    async def _decide(self, decide: Callable[[float], Decision]) -> None:
        async with self.lock:
            decision = decide(self.clock())
            await self.apply(decision)
        if decision.wake:
            self.kick()

    async def register(self, record: NodeRecord) -> None:
        """Add or refresh a node. A new agent process (boot id) has lost its tasks."""
        await self._decide(lambda now: decide_register(self.state, record, now, self.on_task_end))

    async def node_unreachable(self, node_id: str) -> None:
        """The node missed its heartbeats: it and its tasks become UNREACHABLE."""
        await self._decide(lambda now: decide_unreachable(self.state, node_id, now))

    async def node_draining(self, node_id: str) -> None:
        """The agent is leaving (drained): no new task goes there."""
        await self._decide(lambda now: decide_draining(self.state, node_id))

    async def node_returned(self, node_id: str) -> None:
        """A heartbeat from an UNREACHABLE node: it is ACTIVE again."""
        await self._decide(lambda now: decide_returned(self.state, node_id, now))

    async def node_drain_set(self, node_id: str, drain: NodeDrain | None) -> None:
        """Start (``drain``) or end (None) an operator's drain."""
        await self._decide(lambda now: decide_drain_set(self.state, node_id, drain))

    async def maintenance_set(self, change: Callable[[Maintenance], Maintenance]) -> Maintenance:
        """Store the maintenance that ``change`` makes of the current one (it raises to
        refuse, under this lock, so two operators' calls never interleave) and move each
        node to its machine's mode in the same transaction."""
        async with self.lock:
            new = change(self.state.maintenance)
            now = self.clock()
            await self.apply(decide_maintenance(self.state, new, now, self.on_task_end))
        self.kick()
        return new

    async def node_gone(self, node_id: str) -> None:
        """An UNREACHABLE node stayed silent: GONE; its tasks are dropped."""
        await self._decide(lambda now: decide_gone(self.state, node_id, now, self.on_task_end))

    async def node_remove(self, node_id: str) -> None:
        """Forget a node and whatever tasks it still had (the caller checked it may go)."""
        await self._decide(lambda now: decide_remove(self.state, node_id, now, self.on_task_end))
