"""The one serial applier: every change of tasks and nodes passes here, one at a time; asyncio.

Each method is one decision: it computes the records to write, commits them in one
store transaction (split into whole-record chunks when it exceeds the store's limit of
operations), and only then changes the authoritative in-memory state. Placements are
re-verified with ``core.verify`` against the latest view first, so the cluster is never
overcommitted, whatever snapshot the scheduler worked on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pallet.control.applier_nodes import NodeDecisions, drain_moves
from pallet.control.bus import (
    EventBus,
    HealthChanged,
    HealthCheckFailed,
    ReadinessChanged,
    TaskChanged,
    UnhealthyKilled,
)
from pallet.control.deployments import holding
from pallet.control.errors import NotLeader
from pallet.control.layout import backoff_key, task_key
from pallet.control.reconcile import backoff_after_failure, reconcile_app
from pallet.control.records import (
    BackoffRecord,
    TaskGoal,
    TaskRecord,
    TaskState,
    encode,
)
from pallet.control.reservations import ReservationRecord, busy_slots, new_slot
from pallet.control.state import ClusterState
from pallet.core import check_placement
from pallet.model import NodeState, Placement, Plan, TaskStatus
from pallet.model.transitions import Step, step
from pallet.store import MAX_TXN_OPS, Compare, Delete, Op, Put, Store, TxnResult

__all__ = ["Applier"]

log = logging.getLogger(__name__)

_CHUNK = MAX_TXN_OPS - 8  # room for the few extra records a chunk may carry
_FAILURES = frozenset(
    {
        TaskState.FAILED,
        TaskState.ERROR,
        TaskState.LOST,
        TaskState.DROPPED,
        TaskState.GONE,
        TaskState.GONE_BY_OPERATOR,
        TaskState.KILLED,
    }
)


def _unheard(task: TaskRecord) -> TaskRecord:
    """The end of a task killed on a node the master cannot reach (its agent will never
    report it)."""
    return task.with_(state=TaskState.KILLED, message="killed while unreachable")


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


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
        self.placed_total = 0
        self.rejected_total = 0
        self.illegal_reports = 0
        """Agent reports the task transition table refused (``model.transitions``)."""

    async def commit(self, ops: Sequence[Op]) -> int:
        """One transaction; its revision."""
        return (await self.commit_if((), ops)).revision

    async def commit_if(self, compares: Sequence[Compare], ops: Sequence[Op]) -> TxnResult:
        """One transaction that writes ``ops`` if every compare holds. This is the one
        place the master writes its store: with several masters every write also carries
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

    # ------------------------------------------------------------ placements

    async def apply_plan(self, plan: Plan) -> list[TaskRecord]:
        """Verify ``plan`` against the latest view and commit what still fits and is still
        wanted; returns the tasks created."""
        async with self.lock:
            now = self.clock()
            placements = self._still_wanted(plan.placements, now)
            placements = self._slots_free(placements)
            placements, disks = self._verified(placements)
            created: list[TaskRecord] = []
            for chunk in self._placement_chunks(placements, disks, now):
                tasks = [t for t, _ in chunk]
                slots = [r for _, r in chunk if r is not None]
                ops: list[Op] = [Put(r.key, encode(r.to_json())) for r in slots]
                ops += [Put(task_key(t.id), encode(t.to_json())) for t in tasks]
                revision = await self.commit(ops)
                for r in slots:
                    self.state.put_reservation(r, revision)
                for t in tasks:
                    self.state.put_task(t, revision)
                    self.bus.publish(TaskChanged(t, None, now))
                created += tasks
            self.placed_total += len(created)
        self.kick()
        return created

    def _placement_chunks(
        self, placements: Sequence[Placement], disks: dict[str, tuple[str, ...]], now: float
    ) -> Iterable[list[tuple[TaskRecord, ReservationRecord | None]]]:
        """The new tasks (each with the new slot it creates, if any, holding the disks
        ``disks`` chose for its volumes) in chunks of at most ``_CHUNK`` records: each
        chunk is one transaction, and fewer transactions per plan mean fewer commits and
        fewer wake-ups of every agent's long-poll."""
        chunk: list[tuple[TaskRecord, ReservationRecord | None]] = []
        records = 0
        for p in placements:
            app = self.state.apps.get(p.app_id)
            if app is None:
                continue
            slot = new = None
            if p.request.reservation is not None:
                slot = self.state.reservations.get(p.request.reservation)
                if slot is None:
                    held = disks.get(p.request_id, ())
                    slot = new = new_slot(app, p.request.reservation, p.node_id, now, held)
            size = 1 if new is None else 2
            if records + size > _CHUNK:
                yield chunk
                chunk, records = [], 0
            chunk.append((self._new_task(p, now, slot), new))
            records += size
        if chunk:
            yield chunk

    def _still_wanted(self, placements: Sequence[Placement], now: float) -> list[Placement]:
        allowed: dict[str, int] = {}
        kept = []
        moving = drain_moves(self.state, now).moving
        for p in placements:
            if p.app_id not in allowed:
                app = self.state.apps.get(p.app_id)
                if app is None:
                    allowed[p.app_id] = 0
                else:
                    tasks = self.state.app_tasks(app.id)
                    allowed[p.app_id] = reconcile_app(
                        app,
                        tasks,
                        now,
                        self.state.backoff.get(app.id),
                        hold=holding(self.state, app.id),
                        moving=moving,
                    ).launch
            if allowed[p.app_id] > 0:
                allowed[p.app_id] -= 1
                kept.append(p)
        return kept

    def _slots_free(self, placements: Sequence[Placement]) -> list[Placement]:
        """Resident apps' placements whose slot is still theirs: an existing slot that no
        live task holds (on the node it is on), or a new slot while the app has fewer
        slots than instances."""
        kept: list[Placement] = []
        taken: set[str] = set()
        new: dict[str, int] = {}
        for p in placements:
            slot_id = p.request.reservation
            app = self.state.apps.get(p.app_id)
            if slot_id is None or app is None:
                kept.append(p)
                continue
            slot = self.state.reservations.get(slot_id)
            if slot is not None:
                ok = (
                    slot.app_id == app.id
                    and slot.node_id == p.node_id
                    and slot_id not in taken
                    and slot_id not in busy_slots(self.state.app_tasks(app.id))
                )
            else:
                have = sum(1 for r in self.state.app_reservations(app.id) if r.fits(app.run))
                ok = have + new.get(app.id, 0) < app.instances
                new[app.id] = new.get(app.id, 0) + ok
            if ok:
                taken.add(slot_id)
                kept.append(p)
            else:
                log.info("placement of %s dropped: its slot %s is not free", p.request_id, slot_id)
        return kept

    async def destroy_slots_locked(self, slots: Iterable[str]) -> None:
        """Forget instance slots (their nodes' agents then delete the volumes)."""
        records = [self.state.reservations[s] for s in slots if s in self.state.reservations]
        for chunk in _chunks(records):
            revision = await self.commit([Delete(r.key) for r in chunk])
            for r in chunk:
                self.state.drop_reservation(r.id, revision)
                log.info("destroyed the persistent volumes of %s on node %s", r.key, r.node_id)

    def _verified(
        self, placements: list[Placement]
    ) -> tuple[list[Placement], dict[str, tuple[str, ...]]]:
        """``core.verify``'s check, placement by placement on a scratch view, dropping
        (rather than failing the whole plan on) any that no longer fit; with the operator
        disks the view chose for each new slot's path and mount volumes."""
        scratch = self.state.view.copy()
        good = []
        for p in placements:
            reason = check_placement(scratch, p)
            if reason is None:
                scratch.assume(p)
                good.append(p)
            else:
                self.rejected_total += 1
                log.info("placement of %s on %s dropped: %s", p.request_id, p.node_id, reason)
        return good, scratch.disk_held

    def _new_task(
        self, p: Placement, now: float, slot: ReservationRecord | None = None
    ) -> TaskRecord:
        app = self.state.apps[p.app_id]
        node = self.state.nodes[p.node_id]
        volumes = slot.volumes if slot is not None else ()
        return TaskRecord(
            id=p.request_id,
            app_id=app.id,
            node_id=p.node_id,
            host=node.node.hostname,
            version=app.version,
            config_version=app.config_version,
            # A slot holds its volumes' disk itself (a new slot's request asked for both).
            resources=p.resources if slot is None else app.run.resources,
            ports=p.ports,
            requested_ports=p.request.ports,
            gpus=p.gpus,
            staged_at=now,
            launch=app.run.launch_spec(p.request_id, app.id, app.version, p.ports, p.gpus, volumes),
            role=app.run.role,
            reservation=None if slot is None else slot.id,
        )

    # ------------------------------------------------------------ statuses

    async def apply_statuses(
        self, node_id: str, updates: Sequence[TaskStatus]
    ) -> list[tuple[str, int]]:
        """Store what is new, idempotently by (task id, seq); return every (task id, seq)
        to acknowledge (all of them: stale and unknown ones need no retry either)."""
        async with self.lock:
            # Each status writes its task and at most its app's backoff record: half the
            # store's limit per transaction always fits. (Chunks of the limit did not:
            # ~150 tasks of as many apps ending at once needed 234 operations, the master
            # answered 503 to every retry, and the dead tasks were never replaced.) Each
            # status is a whole decision of its own, so a batch split this way is safe.
            for chunk in _chunks(list(updates), _CHUNK // 2):
                await self._apply_status_chunk(node_id, chunk)
        self.kick()
        return [(u.task_id, u.seq) for u in updates]

    async def _apply_status_chunk(self, node_id: str, updates: Sequence[TaskStatus]) -> None:
        now = self.clock()
        changes: dict[str, tuple[TaskRecord, TaskRecord | None]] = {}
        backoff: dict[str, BackoffRecord] = {}
        for u in updates:
            current = (
                changes[u.task_id][1] if u.task_id in changes else self.state.tasks.get(u.task_id)
            )
            if current is None or current.node_id != node_id or u.seq <= current.seq:
                continue
            if step(current.state, u.state) is Step.ILLEGAL:
                # Not a move its agent can make (a task going back, an end reported twice,
                # a state only the master sets): counted and ignored, never stored.
                self.illegal_reports += 1
                log.warning(
                    "ignored an illegal report from node %s: task %s %s -> %s (seq %d)",
                    node_id, u.task_id, current.state.value, u.state.value, u.seq,
                )  # fmt: skip
                continue
            old = changes[u.task_id][0] if u.task_id in changes else current
            updated = self._updated(current, u, now)
            if updated.goal is TaskGoal.RUN and updated.live and updated.failed_check() is not None:
                # Unhealthy for too long: killed in the same transaction that records it.
                updated = updated.with_(goal=TaskGoal.KILL, killed_unhealthy=True)
            if updated.state.is_terminal:
                self._note_end(updated, now, backoff)
            changes[u.task_id] = (old, updated)
        if not changes:
            return
        ops: list[Op] = []
        for tid, (_, new) in changes.items():
            if new is None or new.state.is_terminal:
                ops.append(Delete(task_key(tid)))
                if new is not None:
                    ops += self.on_task_end(new, now)
            else:
                ops.append(Put(task_key(tid), encode(new.to_json())))
        ops += [Put(backoff_key(a), encode(b.to_json())) for a, b in backoff.items()]
        revision = await self.commit(ops)
        self.state.backoff.update(backoff)
        for old, new in changes.values():
            assert new is not None
            if new.state.is_terminal:
                self.state.drop_task(new.id, revision)
            else:
                self.state.put_task(new, revision)
            if new.state is not old.state or (
                new.health == old.health and new.readiness == old.readiness
            ):
                self.bus.publish(TaskChanged(new, old.state, now))
            self._publish_health(old, new, now)
            for i, r in enumerate(new.readiness):
                if i >= len(old.readiness) or old.readiness[i] != r:
                    self.bus.publish(ReadinessChanged(new, i, now))

    def _publish_health(self, old: TaskRecord, new: TaskRecord, now: float) -> None:
        if new.health == old.health:
            return
        before = [h.consecutive_failures for h in old.health]
        for i, h in enumerate(new.health):
            if h.consecutive_failures > (before[i] if i < len(before) else 0):
                self.bus.publish(HealthCheckFailed(new, i, now))
        alive = new.healthy is True
        if new.healthy is not None and (old.healthy is True) != alive:
            self.bus.publish(HealthChanged(new, alive, now))
        if new.killed_unhealthy and not old.killed_unhealthy:
            index = new.failed_check()
            self.bus.publish(UnhealthyKilled(new, index or 0, now))

    def _updated(self, task: TaskRecord, u: TaskStatus, now: float) -> TaskRecord:
        state = u.state
        goal = task.goal
        if task.state is TaskState.UNREACHABLE and task.replaced and not state.is_terminal:
            goal = TaskGoal.KILL  # came back after it was replaced: reconciliation kills it
        started = task.started_at
        if state is TaskState.RUNNING and started is None:
            started = now
        return task.with_(
            state=state,
            seq=u.seq,
            goal=goal,
            started_at=started,
            message=u.message,
            exit_code=u.exit_code,
            signal=u.signal,
            unreachable_since=None,
            reason=None if u.reason is None else u.reason.value,
            **({} if u.health is None else {"healthy": u.healthy, "health": u.health}),
            **({} if u.readiness is None else {"readiness": u.readiness}),
            **({} if u.ip_addresses is None else {"ip_addresses": u.ip_addresses}),
        )

    def _note_end(self, task: TaskRecord, now: float, backoff: dict[str, BackoffRecord]) -> None:
        """A task that ended by itself (or was killed for failing its health checks)
        counts against its app's launch delay; a failure is also kept as the app's
        ``lastTaskFailure``."""
        app = self.state.apps.get(task.app_id)
        if app is None or (task.goal is TaskGoal.KILL and not task.killed_unhealthy):
            return
        current = backoff.get(app.id) or self.state.backoff.get(app.id)
        record = backoff_after_failure(app, current, now)
        if task.state in _FAILURES:
            failure = {
                "task_id": task.id,
                "state": task.state.value,
                "message": task.message,
                "reason": task.reason,
                "timestamp": now,
                "version": task.version,
                "host": task.host,
                "node_id": task.node_id,
                "started_at": task.started_at if task.started_at is not None else task.staged_at,
                "exit_code": task.exit_code,
            }
            record = BackoffRecord(record.delay, record.launch_after, failure)
        backoff[app.id] = record

    # ------------------------------------------------------------ kills and expunges

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
        ids = [t for t in dict.fromkeys(task_ids) if t in self.state.tasks]
        for chunk in _chunks(ids, _CHUNK // 2):  # a task, and maybe its stored end
            updates: list[tuple[TaskRecord, TaskRecord | None]] = []
            for tid in chunk:
                task = self.state.tasks[tid]
                if task.goal is TaskGoal.KILL:
                    continue
                node = self.state.nodes.get(task.node_id)
                if node is None or node.state not in (NodeState.ACTIVE, NodeState.DRAINING):
                    updates.append((task, None))
                else:
                    updates.append((task, task.with_(goal=TaskGoal.KILL)))
            if not updates:
                continue
            ops: list[Op] = []
            for old, new in updates:
                if new is not None:
                    ops.append(Put(task_key(new.id), encode(new.to_json())))
                else:  # its agent will never report it: its end is stored now
                    ops += [Delete(task_key(old.id)), *self.on_task_end(_unheard(old), now)]
            revision = await self.commit(ops)
            for old, new in updates:
                if new is None:
                    self.state.drop_task(old.id, revision)
                    self.bus.publish(TaskChanged(_unheard(old), old.state, now))
                else:
                    self.state.put_task(new, revision)
                killed.append(old)
        return killed

    async def mark_replaced_locked(self, task_ids: Iterable[str]) -> None:
        tasks = [self.state.tasks[t] for t in task_ids if t in self.state.tasks]
        for chunk in _chunks(tasks):
            new = [t.with_(replaced=True) for t in chunk]
            revision = await self.commit([Put(task_key(t.id), encode(t.to_json())) for t in new])
            for t in new:
                self.state.put_task(t, revision)

    async def expunge_locked(self, task_ids: Iterable[str]) -> None:
        now = self.clock()
        ids = [t for t in task_ids if t in self.state.tasks]
        for chunk in _chunks(ids):
            revision = await self.commit([Delete(task_key(t)) for t in chunk])
            for tid in chunk:
                old = self.state.drop_task(tid, revision)
                if old is not None:
                    gone = old.with_(state=TaskState.GONE_BY_OPERATOR, message="expunged")
                    self.bus.publish(TaskChanged(gone, old.state, now))
