"""The one serial applier: every write of the master passes through ``Applier.apply``, one
decision at a time; asyncio.

A writer computes a ``Decision`` with a pure function (``decide_tasks``,
``decide_nodes``, the controllers) under ``lock``, and ``apply`` carries it out: ONE
store transaction through the fenced ``commit_if`` (the decision's compares and, while
this master leads a group of masters, the leader's fence), then the changes of
``ClusterState``, then the events. An input too large for one transaction is decided in
parts, each a whole decision (``apply_parts``). Nothing else writes the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from pallet.control.applier_nodes import NodeDecisions
from pallet.control.bus import EventBus
from pallet.control.decide_tasks import (
    decide_destroy_slots,
    decide_expunge,
    decide_kill,
    decide_placements,
    decide_replaced,
    decide_statuses,
)
from pallet.control.decision import Decision, first_part
from pallet.control.errors import NotLeader
from pallet.control.layout import APPS, BACKOFF, DEPLOYMENTS
from pallet.control.pipeline import CommitPipeline, Entry
from pallet.control.records import (
    AppRecord,
    BackoffRecord,
    DeploymentRecord,
    NodeRecord,
    TaskRecord,
    decode,
)
from pallet.control.state import ClusterState
from pallet.model import Placement, Plan, TaskStatus
from pallet.store import Compare, KeyValue, Op, Store, TxnResult

__all__ = ["Applier"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class Applier(NodeDecisions):
    def __init__(
        self,
        store: Store,
        state: ClusterState,
        bus: EventBus,
        clock: Callable[[], float],
        kick: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.state = state
        self.bus = bus
        self.clock = clock
        self.kick = kick
        self.lock = asyncio.Lock()
        self.fence: Compare | None = None
        """Set while this master leads a group of masters: every write carries it."""
        self.on_deposed: Callable[[str], None] = lambda why: None
        self.on_task_end: Callable[[TaskRecord, float], list[Op]] = lambda task, at: []
        """Ops stored with a task's terminal report, in the same transaction (the job
        controller keeps a job task's end until its run has taken it in)."""
        self.counts: Counter[str] = Counter()
        """Decisions' counters: ``placed``, ``rejected`` and ``illegal`` (agent reports
        the task transition table refused, ``model.transitions``)."""
        self.transactions = 0
        """Store transactions this master committed (one per decision)."""
        self._joining: list[tuple[NodeRecord, asyncio.Future[None]]] = []
        self._registering: asyncio.Future[None] | None = None
        self.pipeline = CommitPipeline(store, self._finish, self._fence_holds, self._deposed)
        """Pipelined decisions in flight (``apply(..., pipelined=True)``)."""

    @property
    def placed_total(self) -> int:
        return self.counts["placed"]

    @property
    def rejected_total(self) -> int:
        return self.counts["rejected"]

    @property
    def illegal_reports(self) -> int:
        return self.counts["illegal"]

    # ------------------------------------------------------------ the one write path

    async def apply(self, decision: Decision, *, pipelined: bool = False) -> TxnResult:
        """Carry out ``decision`` (the caller holds ``lock``): its ops in one transaction
        if its compares hold, then memory, then events. A decision whose compares fail
        changes nothing (the result says so); a write the leader fence refuses raises
        ``NotLeader``.

        ``pipelined``: the caller does nothing after this returns that depends on what it
        read before, so the lock is let go while the commit syncs and the next writers
        decide meanwhile, against memory that already holds this decision (if it is
        ``Decision.optimistic``; otherwise it is applied with the lock held, as without).
        It returns, with the lock held again, once the decision is durable and its events
        are out. ``TxnAborted`` if a decision it was made on top of failed (retryable)."""
        assert self.lock.locked(), "Applier.apply is called under Applier.lock"
        await self._recover_locked()
        d = decision
        early = pipelined and d.optimistic
        if not early and not self.pipeline.busy:
            return await self._apply_now(d)
        entry = self.pipeline.enqueue(d, self.fence, early)
        if not early:
            return await _outlive_cancel(entry.done)
        self._remember_early(d)
        self.lock.release()
        try:
            # Awaited directly (a shield would cost a turn of the loop): a writer
            # cancelled meanwhile cancels only its own answer.
            return await entry.done
        finally:
            await _reacquire(self.lock)
            await self._recover_locked()

    async def _apply_now(self, d: Decision) -> TxnResult:
        """``apply`` with nothing in flight: commit and wait, the lock held."""
        if d.ops or d.compares:
            result = await self.commit_if(d.compares, d.ops)
            if not result.succeeded:
                return result
        else:
            result = TxnResult(True, self.state.revision, ())
        return self._finish_committed(d, result, early=False)

    def _finish(self, entry: Entry, result: TxnResult | None) -> TxnResult:
        """The pipeline's: ``entry`` committed (in order): its memory and events."""
        if result is None:
            result = TxnResult(True, self.state.revision, ())
        else:
            self.state.revision = max(self.state.revision, result.revision)
        return self._finish_committed(entry.decision, result, early=entry.early)

    def _finish_committed(self, d: Decision, result: TxnResult, *, early: bool) -> TxnResult:
        if d.ops or d.compares:
            self.transactions += 1
        self._remember(d, result.revision, early=early)
        for level, message in d.logs:
            log.log(level, "%s", message)
        for event in d.events:
            self.bus.publish(event)
        return result

    def _deposed(self) -> BaseException:
        self.on_deposed("a write was refused by the leader fence")
        return NotLeader()

    async def _recover_locked(self) -> None:
        """After a failed commit (the lock held): once nothing is in flight, read again
        from the store what pipelined decisions change in memory early (apps,
        deployments, launch delays), as a master start does."""
        if self.pipeline.broken is None:
            return
        await self.pipeline.drained()
        if self.pipeline.broken is None:  # another writer recovered meanwhile
            return
        s = self.state
        apps = {
            a.id: a
            for a in (AppRecord.from_json(decode(kv.value)) for kv in await _list(self.store, APPS))
        }
        deployments = [
            DeploymentRecord.from_json(decode(kv.value))
            for kv in await _list(self.store, DEPLOYMENTS)
        ]
        backoff = {
            kv.key[len(BACKOFF) :]: BackoffRecord.from_json(decode(kv.value))
            for kv in await _list(self.store, BACKOFF)
        }
        for app_id in [a for a in s.apps if a not in apps]:
            s.drop_app(app_id)
        for app in apps.values():
            if s.apps.get(app.id) != app:
                s.put_app(app)
        s.deployments.clear()
        s.deployments.update((d.id, d) for d in deployments)
        s.backoff.clear()
        s.backoff.update(backoff)
        s.touch()
        log.warning(
            "memory read again from the store after a failed commit (%s)", self.pipeline.broken
        )
        self.pipeline.recovered()

    def _remember_early(self, d: Decision) -> None:
        """The memory changes of an optimistic decision, made when it is enqueued."""
        self._remember_apps(d)
        self.state.touch()

    def _remember_apps(self, d: Decision) -> None:
        """A decision's launch delays, apps and deployments into memory (the part an
        optimistic decision makes before it is durable)."""
        s = self.state
        for app_id, backoff in d.backoff:
            s.backoff[app_id] = backoff
        for app_id in d.dropped_backoff:
            s.backoff.pop(app_id, None)
        for app in d.apps:
            s.put_app(app)
        for app_id in d.dropped_apps:
            s.drop_app(app_id)
        for deployment in d.deployments:
            s.deployments[deployment.id] = deployment
        for deployment_id in d.dropped_deployments:
            s.deployments.pop(deployment_id, None)

    def _remember(self, d: Decision, revision: int, *, early: bool = False) -> None:
        """The memory changes of a committed decision (those made early excepted)."""
        s = self.state
        if early:
            for name, n in d.counts:
                self.counts[name] += n
            return
        for node in d.nodes:
            s.put_node(node, revision)
        for node_id, node_state in d.node_states:
            s.set_node_state(node_id, node_state)
        if d.maintenance is not None:
            s.maintenance = d.maintenance
        for slot in d.reservations:
            s.put_reservation(slot, revision)
        for task in d.tasks:
            s.put_task(task, revision)
        for task_id in d.dropped_tasks:
            s.drop_task(task_id, revision)
        for slot_id in d.dropped_reservations:
            s.drop_reservation(slot_id, revision)
        for node_id in d.dropped_nodes:
            s.drop_node(node_id)
        self._remember_apps(d)
        for effect in d.after:
            effect()
        for name, n in d.counts:
            self.counts[name] += n
        if d.touch or d.maintenance is not None or d.deployments or d.dropped_deployments:
            s.touch()

    async def apply_parts(
        self, items: Sequence[_T], decide: Callable[[Sequence[_T]], Decision]
    ) -> None:
        """Decide ``items`` and apply the decision; if it is too large for one
        transaction, as several whole decisions, each decided against the state the one
        before left (``decision.first_part``)."""
        rest = items
        while rest:
            decision, rest = first_part(rest, decide)
            await self.apply(decision)

    async def commit_if(self, compares: Sequence[Compare], ops: Sequence[Op]) -> TxnResult:
        """One transaction that writes ``ops`` if every compare holds (``apply``'s; call
        that). This is the one place the master writes its store: with several masters every write also carries
        the leader's fence, and a write the fence refuses raises ``NotLeader`` (a newer
        leader exists; this master stops acting)."""
        fence = self.fence
        guarded = [*compares, fence] if fence is not None else list(compares)
        result = await self.store.txn(guarded, ops)
        if result.succeeded:
            self.state.revision = max(self.state.revision, result.revision)
        elif fence is not None and not await self._fence_holds(fence):
            self.on_deposed("a write was refused by the leader fence")
            raise NotLeader()
        return result

    async def _fence_holds(self, fence: Compare) -> bool:
        kv = await self.store.get(fence.key)
        return kv is not None and kv.create_revision == fence.operand

    # ------------------------------------------------------------ tasks

    async def apply_plan(self, plan: Plan) -> list[TaskRecord]:
        """Verify ``plan`` against the latest view and commit what still fits and is still
        wanted; returns the tasks created."""
        created: list[TaskRecord] = []

        def decide(placements: Sequence[Placement]) -> Decision:
            return decide_placements(self.state, placements, now)

        async with self.lock:
            now = self.clock()
            rest: Sequence[Placement] = plan.placements
            while rest:
                decision, rest = first_part(rest, decide)
                await self.apply(decision)
                created += decision.tasks
            # Placed instances wait no more: until the controller's next pass recounts
            # the queue, the scheduler's next rounds ask only for what still waits
            # (asking again for an app already placed made rounds the applier then
            # dropped whole, one after another, while the controller rested).
            for task in created:
                entry = self.state.queue.get(task.app_id)
                if entry is not None and entry.count > 0:
                    entry.count -= 1
        self.kick()
        return created

    async def apply_statuses(
        self, node_id: str, updates: Sequence[TaskStatus]
    ) -> list[tuple[str, int]]:
        """Store what is new, idempotently by (task id, seq); return every (task id, seq)
        to acknowledge (all of them: stale and unknown ones need no retry either). Each
        status is a whole decision of its own, so a batch too large for one transaction
        is applied in parts (~150 tasks of as many apps ending at once once needed more
        operations than a transaction took: the master answered 503 to every retry and
        the dead tasks were never replaced)."""
        async with self.lock:
            now = self.clock()
            await self.apply_parts(
                updates,
                lambda part: decide_statuses(self.state, node_id, part, now, self.on_task_end),
            )
        self.kick()
        return [(u.task_id, u.seq) for u in updates]

    async def kill(self, task_ids: Iterable[str]) -> list[TaskRecord]:
        """Set the goal of each task to KILL (its agent kills it and reports TASK_KILLED).
        A task its agent can no longer hear about (node unreachable) is forgotten now."""
        async with self.lock:
            killed = await self.kill_locked(task_ids)
        self.kick()
        return killed

    async def kill_locked(self, task_ids: Iterable[str]) -> list[TaskRecord]:
        """``kill`` for a caller that holds ``lock``."""
        now = self.clock()
        killed: list[TaskRecord] = []

        def decide(ids: Sequence[str]) -> Decision:
            decision, tasks = decide_kill(self.state, ids, now, self.on_task_end)
            killed_now[:] = tasks
            return decision

        killed_now: list[TaskRecord] = []
        rest: Sequence[str] = list(dict.fromkeys(task_ids))
        while rest:
            decision, rest = first_part(rest, decide)
            await self.apply(decision)
            killed += killed_now
        return killed

    async def mark_replaced_locked(self, task_ids: Iterable[str]) -> None:
        await self.apply_parts(list(task_ids), lambda ids: decide_replaced(self.state, ids))

    async def expunge_locked(self, task_ids: Iterable[str]) -> None:
        now = self.clock()
        await self.apply_parts(list(task_ids), lambda ids: decide_expunge(self.state, ids, now))

    async def destroy_slots_locked(self, slots: Iterable[str]) -> None:
        """Forget instance slots (their nodes' agents then delete the volumes)."""
        await self.apply_parts(list(slots), lambda ids: decide_destroy_slots(self.state, ids))


async def _list(store: Store, prefix: str) -> list[KeyValue]:
    return (await store.list(prefix))[0]


async def _outlive_cancel(done: asyncio.Future[TxnResult]) -> TxnResult:
    """``done``'s outcome; a caller cancelled meanwhile still waits for it (it holds the
    lock: the next decision must not be made before this one's memory changed), then
    the cancellation goes through."""
    cancelled = False
    while not done.done():
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            if done.done():
                break
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return done.result()


async def _reacquire(lock: asyncio.Lock) -> None:
    """Take ``lock`` again even if the caller is cancelled meanwhile (its ``async with``
    releases it on the way out, so it must hold it), then let the cancellation through.
    (``Lock.acquire`` cancelled does not hold the lock: it is simply asked for again.)"""
    cancelled = False
    while True:
        try:
            await lock.acquire()
            break
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
