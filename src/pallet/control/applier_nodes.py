"""The applier's decisions about nodes: registration, a node lost, back, gone, drained,
removed or in maintenance; asyncio.

Mixed into ``Applier``: the same lock, the same one-transaction-per-decision rule.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pallet.control.bus import EventBus, TaskChanged
from pallet.control.errors import NodeBusy
from pallet.control.layout import MAINTENANCE, node_key, task_key
from pallet.control.records import (
    NodeDrain,
    NodeRecord,
    TaskGoal,
    TaskRecord,
    TaskState,
    encode,
)
from pallet.control.state import ClusterState
from pallet.core.maintenance import resting_state
from pallet.model import NodeState
from pallet.model.maintenance import MachineMode, Maintenance
from pallet.store import MAX_TXN_OPS, Delete, Op, Put

__all__ = ["DrainMoves", "NodeDecisions", "drain_moves"]

log = logging.getLogger(__name__)

_CHUNK = MAX_TXN_OPS - 8
_DOWN = "is on a machine that is DOWN for maintenance; it may register once the machine is up"


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class NodeDecisions:
    state: ClusterState
    bus: EventBus
    clock: Callable[[], float]
    kick: Callable[[], None]
    lock: asyncio.Lock
    commit: Callable[[Sequence[Op]], Awaitable[int]]
    """One store transaction; ``Applier`` provides it."""
    on_task_end: Callable[[TaskRecord, float], list[Op]]
    """Ops stored with a task's end (``Applier.on_task_end``)."""

    async def register(self, record: NodeRecord) -> None:
        """Add or refresh a node. A new agent process (boot id) has lost its tasks."""
        async with self.lock:
            # The machine's mode as of now (an operator's call may have come in between).
            mode = self.state.machine_mode(record)
            if mode is MachineMode.DOWN:
                raise NodeBusy(record.id, _DOWN)
            state = resting_state(NodeState.ACTIVE, mode, record.drain is not None)
            record = _with_node_state(record, state)
            now = self.clock()
            old = self.state.nodes.get(record.id)
            lost: list[TaskRecord] = []
            if old is not None and old.boot_id != record.boot_id:
                lost = [
                    self.state.tasks[t] for t in sorted(self.state.tasks_by_node.get(record.id, ()))
                ]
            batches = self._drop_batches(
                lost,
                "the agent restarted without its tasks",
                now,
                [Put(node_key(record.id), encode(record.to_json()))],
            )
            for i, (ops, dropped) in enumerate(batches):
                revision = await self.commit(ops)
                if i == 0:
                    self.state.put_node(record, revision)
                self._dropped(dropped, revision, now)
        self.kick()

    async def node_unreachable(self, node_id: str) -> None:
        """The node missed its heartbeats: it and its tasks become UNREACHABLE."""
        async with self.lock:
            record = self.state.nodes.get(node_id)
            if record is None or record.state not in (NodeState.ACTIVE, NodeState.DRAINING):
                return
            now = self.clock()
            tasks = [self.state.tasks[t] for t in sorted(self.state.tasks_by_node.get(node_id, ()))]
            lost = _with_node_state(record, NodeState.UNREACHABLE)
            revision = await self.commit([Put(node_key(node_id), encode(lost.to_json()))])
            self.state.set_node_state(node_id, NodeState.UNREACHABLE)
            for chunk in _chunks(tasks):
                ops: list[Op] = []
                changed: list[tuple[TaskRecord, TaskRecord | None]] = []
                for t in chunk:
                    if t.goal is TaskGoal.KILL:
                        ops.append(Delete(task_key(t.id)))
                        changed.append((t, None))
                    else:
                        new = t.with_(
                            state=TaskState.UNREACHABLE,
                            unreachable_since=now,
                            state_before_unreachable=t.state,
                        )
                        ops.append(Put(task_key(t.id), encode(new.to_json())))
                        changed.append((t, new))
                revision = await self.commit(ops)
                for old, new in changed:
                    if new is None:
                        self.state.drop_task(old.id, revision)
                    else:
                        self.state.put_task(new, revision)
                        self.bus.publish(TaskChanged(new, old.state, now))
            log.warning("node %s is unreachable: %d tasks unreachable", node_id, len(tasks))
        self.kick()

    async def node_draining(self, node_id: str) -> None:
        """The agent is leaving (drained): no new task goes there. Its tasks stay as they
        are until the agent reports their ends; a later registration makes it ACTIVE."""
        async with self.lock:
            record = self.state.nodes.get(node_id)
            if record is None or record.state in (NodeState.DRAINING, NodeState.DOWN):
                return
            leaving = _with_node_state(record, NodeState.DRAINING)
            await self.commit([Put(node_key(node_id), encode(leaving.to_json()))])
            self.state.set_node_state(node_id, NodeState.DRAINING)
            log.warning("node %s is draining: its agent is leaving", node_id)
        self.kick()

    async def node_returned(self, node_id: str) -> None:
        """A heartbeat from an UNREACHABLE node: it is ACTIVE again; its replaced tasks are
        killed, the others resume the state they had."""
        async with self.lock:
            record = self.state.nodes.get(node_id)
            if record is None or record.state is not NodeState.UNREACHABLE:
                return
            now = self.clock()
            mode = self.state.machine_mode(record)
            state = resting_state(NodeState.ACTIVE, mode, record.drain is not None)
            back = _with_node_state(record, state)
            revision = await self.commit([Put(node_key(node_id), encode(back.to_json()))])
            self.state.set_node_state(node_id, state)
            tasks = [
                self.state.tasks[t]
                for t in sorted(self.state.tasks_by_node.get(node_id, ()))
                if self.state.tasks[t].state is TaskState.UNREACHABLE
            ]
            for chunk in _chunks(tasks):
                new = [
                    t.with_(
                        state=t.state_before_unreachable or TaskState.RUNNING,
                        unreachable_since=None,
                        goal=TaskGoal.KILL if t.replaced else t.goal,
                    )
                    for t in chunk
                ]
                revision = await self.commit(
                    [Put(task_key(t.id), encode(t.to_json())) for t in new]
                )
                for old, t in zip(chunk, new, strict=True):
                    self.state.put_task(t, revision)
                    self.bus.publish(TaskChanged(t, old.state, now))
            log.warning("node %s is back", node_id)
        self.kick()

    async def node_drain_set(self, node_id: str, drain: NodeDrain | None) -> None:
        """Start (``drain``) or end (None) an operator's drain. A drained node is offered
        nothing; undrained, it is ACTIVE again unless it is down."""
        async with self.lock:
            record = self.state.nodes.get(node_id)
            if record is None:
                return
            state = record.state
            if state in (NodeState.ACTIVE, NodeState.DRAINING):
                mode = self.state.machine_mode(record)
                state = resting_state(state, mode, drain is not None)
            new = replace(_with_node_state(record, state), drain=drain)
            revision = await self.commit([Put(node_key(node_id), encode(new.to_json()))])
            self.state.put_node(new, revision)
            log.warning("node %s %s", node_id, "drained" if drain else "undrained")
        self.kick()

    async def maintenance_set(self, change: Callable[[Maintenance], Maintenance]) -> Maintenance:
        """Store the maintenance that ``change`` makes of the current one (it raises to
        refuse, under this lock, so two operators' calls never interleave) and move each
        node to its machine's mode in the same transaction; nodes going DOWN lose their
        tasks (their agents kill them, the apps replace them elsewhere)."""
        async with self.lock:
            new = change(self.state.maintenance)
            now = self.clock()
            old = self.state.maintenance
            self.state.maintenance = new
            try:
                moves: list[NodeRecord] = []
                for record in self.state.nodes.values():
                    state = resting_state(
                        record.state, self.state.machine_mode(record), record.drain is not None
                    )
                    if state is not record.state:
                        moves.append(_with_node_state(record, state))
            finally:
                self.state.maintenance = old
            first: list[Op] = [Put(MAINTENANCE, encode(new.to_json()))]
            first += [Put(node_key(r.id), encode(r.to_json())) for r in moves]
            down = [r.id for r in moves if r.state is NodeState.DOWN]
            tasks = [self.state.tasks[t] for n in down for t in sorted(self.state.tasks_by_node[n])]
            batches = self._drop_batches(tasks, "the machine is down for maintenance", now, first)
            for i, (ops, dropped) in enumerate(batches):
                revision = await self.commit(ops)
                if i == 0:
                    self.state.maintenance = new
                    for r in moves:
                        self.state.set_node_state(r.id, r.state)
                self._dropped(dropped, revision, now)
            for r in moves:
                log.warning("node %s is %s for maintenance", r.id, r.state.value)
        self.kick()
        return new

    async def node_gone(self, node_id: str) -> None:
        """An UNREACHABLE node stayed silent: GONE. Its tasks are dropped (the apps
        replace them) and it no longer counts in the cluster's totals."""
        async with self.lock:
            record = self.state.nodes.get(node_id)
            if record is None or record.state is not NodeState.UNREACHABLE:
                return
            gone = _with_node_state(record, NodeState.GONE)
            await self._drop_node_tasks(
                node_id, "the node is gone", [Put(node_key(node_id), encode(gone.to_json()))]
            )
            self.state.set_node_state(node_id, NodeState.GONE)
            log.warning("node %s is gone", node_id)
        self.kick()

    async def node_remove(self, node_id: str) -> None:
        """Forget a node and whatever tasks it still had (the caller checked it may go)."""
        async with self.lock:
            if node_id not in self.state.nodes:
                return
            await self._drop_node_tasks(
                node_id, "the node was removed", [Delete(node_key(node_id))]
            )
            self.state.drop_node(node_id)
            log.warning("node %s removed", node_id)
        self.kick()

    async def _drop_node_tasks(self, node_id: str, why: str, first: list[Op]) -> None:
        """Delete the node's tasks, in the transaction of ``first`` and chunks after it."""
        now = self.clock()
        tasks = [self.state.tasks[t] for t in sorted(self.state.tasks_by_node.get(node_id, ()))]
        for ops, dropped in self._drop_batches(tasks, why, now, first):
            revision = await self.commit(ops)
            self._dropped(dropped, revision, now)

    def _drop_batches(
        self, tasks: Sequence[TaskRecord], why: str, now: float, first: list[Op]
    ) -> list[tuple[list[Op], list[tuple[TaskRecord, TaskRecord]]]]:
        """Transactions that delete ``tasks`` (the first also writes ``first``): each
        task's deletion with what is stored of its end (a job task's, so that a master
        taking over does not run it again), as (ops, [(task, its end)])."""
        batches: list[tuple[list[Op], list[tuple[TaskRecord, TaskRecord]]]] = []
        ops: list[Op] = list(first)
        dropped: list[tuple[TaskRecord, TaskRecord]] = []
        for t in tasks:
            gone = t.with_(state=TaskState.GONE, message=why)
            more = [Delete(task_key(t.id)), *self.on_task_end(gone, now)]
            if dropped and len(ops) + len(more) > _CHUNK:
                batches.append((ops, dropped))
                ops, dropped = [], []
            ops += more
            dropped.append((t, gone))
        batches.append((ops, dropped))
        return batches

    def _dropped(
        self, dropped: Sequence[tuple[TaskRecord, TaskRecord]], revision: int, now: float
    ) -> None:
        for t, gone in dropped:
            self.state.drop_task(t.id, revision)
            self.bus.publish(TaskChanged(gone, t.state, now))


def _with_node_state(record: NodeRecord, state: NodeState) -> NodeRecord:
    return replace(record, node=replace(record.node, state=state))


@dataclass(frozen=True, slots=True)
class DrainMoves:
    """What operators' drains ask of the app controller now."""

    moving: frozenset[str] = frozenset()
    """Tasks to replace elsewhere, as old tasks of a rolling upgrade are."""
    overdue: tuple[str, ...] = ()
    """Tasks whose node's drain deadline has passed: kill them now."""


def drain_moves(state: ClusterState, now: float) -> DrainMoves:
    """The tasks on drained nodes that are to move, and those past their deadline."""
    moving: set[str] = set()
    overdue: list[str] = []
    for node_id, record in state.nodes.items():
        scheduled = state.machine_mode(record) is MachineMode.DRAINING
        if record.drain is None and not scheduled:
            continue
        for task_id in sorted(state.tasks_by_node.get(node_id, ())):
            task = state.tasks[task_id]
            if task.goal is not TaskGoal.RUN or not task.live:
                continue
            moving.add(task_id)
            if record.drain and record.drain.deadline is not None and now >= record.drain.deadline:
                overdue.append(task_id)
    return DrainMoves(frozenset(moving), tuple(overdue))
