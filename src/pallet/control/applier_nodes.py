"""The applier's node writes: registration, a node lost, back, gone, drained, removed or
in maintenance, each one decision of ``decide_nodes`` applied whole; asyncio.

Mixed into ``Applier``: the same lock, the same ``apply``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

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
from pallet.errors import PalletError
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
    apply_parts: Callable[
        [Sequence[NodeRecord], Callable[[Sequence[NodeRecord]], Decision]], Awaitable[None]
    ]
    """``Applier.apply_parts``."""
    _joining: list[tuple[NodeRecord, asyncio.Future[None]]]
    """Registrations waiting to be decided together (``register``)."""
    _registering: asyncio.Future[None] | None

    async def _decide(self, decide: Callable[[float], Decision]) -> None:
        async with self.lock:
            decision = decide(self.clock())
            await self.apply(decision)
        if decision.wake:
            self.kick()

    async def register(self, record: NodeRecord) -> None:
        """Add or refresh a node. A new agent process (boot id) has lost its tasks.

        Registrations that arrive while one waits for the lock join it: they are decided
        together and applied as one decision (parts if too large for one transaction),
        so thousands of agents starting at once cost a few transactions, not one each
        (12,500 simulated agents registered one transaction at a time, 43 ms apiece
        while the master also answered the registered ones). A refused registration
        (``NodeBusy``) fails alone; a failed commit fails every one it carried."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._joining.append((record, done))
        if len(self._joining) == 1:
            self._registering = asyncio.ensure_future(self._register_joining())
        await done

    async def _register_joining(self) -> None:
        batch: list[tuple[NodeRecord, asyncio.Future[None]]] = []
        try:
            async with self.lock:
                batch = self._take_joining()
                now = self.clock()
                latest: dict[str, NodeRecord] = {}  # the last word of each node counts
                for record, _ in batch:
                    latest.pop(record.id, None)
                    latest[record.id] = record
                good: list[NodeRecord] = []
                refused: dict[str, PalletError] = {}
                for record in latest.values():
                    try:
                        decide_register(self.state, record, now, self.on_task_end)
                    except PalletError as e:
                        refused[record.id] = e
                    else:
                        good.append(record)
                await self.apply_parts(good, lambda part: self._registered(part, now))
        except Exception as e:
            for _, done in batch or self._take_joining():
                if not done.done():
                    done.set_exception(e)
                    done.exception()  # retrieved: a caller that went away leaves no warning
            return
        except BaseException:  # cancelled (the master stops): so is every one waiting
            for _, done in [*batch, *self._take_joining()]:
                done.cancel()
            raise
        finally:
            if self._joining:  # arrived after this batch was taken: the next one
                self._registering = asyncio.ensure_future(self._register_joining())
        for record, done in batch:
            if not done.done():
                error = refused.get(record.id)
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)
                    done.exception()
        self.kick()

    def _take_joining(self) -> list[tuple[NodeRecord, asyncio.Future[None]]]:
        batch, self._joining = self._joining, []
        return batch

    def _registered(self, records: Sequence[NodeRecord], now: float) -> Decision:
        decision = Decision()
        for record in records:
            decision = decision.then(decide_register(self.state, record, now, self.on_task_end))
        return decision

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
