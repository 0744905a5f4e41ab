"""The applier's decisions about tasks: placements, agents' status reports, kills, expunges,
replacements, slots destroyed; pure (state, input, now) -> ``Decision``.

Placements are re-verified with ``core.check_placement`` against the latest view first,
so the cluster is never overcommitted, whatever snapshot the scheduler worked on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from pallet.control.bus import (
    HealthChanged,
    HealthCheckFailed,
    ReadinessChanged,
    TaskChanged,
    UnhealthyKilled,
)
from pallet.control.decide_nodes import drain_moves
from pallet.control.decision import Decision
from pallet.control.deployments import holding
from pallet.control.layout import backoff_key, task_key
from pallet.control.reconcile import backoff_after_failure, reconcile_app
from pallet.control.records import BackoffRecord, TaskGoal, TaskRecord, TaskState, encode
from pallet.control.reservations import ReservationRecord, busy_slots, new_slot
from pallet.control.state import ClusterState
from pallet.core import check_placement
from pallet.model import NodeState, Placement, TaskStatus
from pallet.model.transitions import Step, step
from pallet.store import Delete, Op, Put

__all__ = [
    "TaskEnd",
    "decide_destroy_slots",
    "decide_expunge",
    "decide_kill",
    "decide_placements",
    "decide_replaced",
    "decide_statuses",
]

TaskEnd = Callable[[TaskRecord, float], list[Op]]
"""Ops stored with a task's end, in the same transaction (the job controller keeps a job
task's end until its run has taken it in); pure."""

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


def _put(task: TaskRecord) -> Put:
    return Put(task_key(task.id), encode(task.to_json()))


# ------------------------------------------------------------ placements


def decide_placements(state: ClusterState, placements: Sequence[Placement], now: float) -> Decision:
    """The tasks (and new instance slots) of the placements that still fit and are still
    wanted; the others are dropped (counted as ``rejected`` when they no longer fit)."""
    logs: list[tuple[int, str]] = []
    wanted = _still_wanted(state, placements, now)
    free = _slots_free(state, wanted, logs)
    good, disks = _verified(state, free, logs)
    ops: list[Op] = []
    tasks: list[TaskRecord] = []
    slots: list[ReservationRecord] = []
    for p in good:
        app = state.apps.get(p.app_id)
        if app is None:
            continue
        slot = None
        if p.request.reservation is not None:
            slot = state.reservations.get(p.request.reservation)
            if slot is None:
                held = disks.get(p.request_id, ())
                slot = new_slot(app, p.request.reservation, p.node_id, now, held)
                slots.append(slot)
                ops.append(Put(slot.key, encode(slot.to_json())))
        task = _new_task(state, p, now, slot)
        tasks.append(task)
        ops.append(_put(task))
    return Decision(
        ops=tuple(ops),
        reservations=tuple(slots),
        tasks=tuple(tasks),
        events=tuple(TaskChanged(t, None, now) for t in tasks),
        counts=(("placed", len(tasks)), ("rejected", len(free) - len(good))),
        logs=tuple(logs),
    )


def _still_wanted(
    state: ClusterState, placements: Sequence[Placement], now: float
) -> list[Placement]:
    allowed: dict[str, int] = {}
    kept = []
    moving = drain_moves(state, now).moving
    for p in placements:
        if p.app_id not in allowed:
            app = state.apps.get(p.app_id)
            if app is None:
                allowed[p.app_id] = 0
            else:
                allowed[p.app_id] = reconcile_app(
                    app,
                    state.app_tasks(app.id),
                    now,
                    state.backoff.get(app.id),
                    hold=holding(state, app.id),
                    moving=moving,
                ).launch
        if allowed[p.app_id] > 0:
            allowed[p.app_id] -= 1
            kept.append(p)
    return kept


def _slots_free(
    state: ClusterState, placements: Sequence[Placement], logs: list[tuple[int, str]]
) -> list[Placement]:
    """Resident apps' placements whose slot is still theirs: an existing slot that no
    live task holds (on the node it is on), or a new slot while the app has fewer
    slots than instances."""
    kept: list[Placement] = []
    taken: set[str] = set()
    new: dict[str, int] = {}
    for p in placements:
        slot_id = p.request.reservation
        app = state.apps.get(p.app_id)
        if slot_id is None or app is None:
            kept.append(p)
            continue
        slot = state.reservations.get(slot_id)
        if slot is not None:
            ok = (
                slot.app_id == app.id
                and slot.node_id == p.node_id
                and slot_id not in taken
                and slot_id not in busy_slots(state.app_tasks(app.id))
            )
        else:
            have = sum(1 for r in state.app_reservations(app.id) if r.fits(app.run))
            ok = have + new.get(app.id, 0) < app.instances
            new[app.id] = new.get(app.id, 0) + ok
        if ok:
            taken.add(slot_id)
            kept.append(p)
        else:
            msg = f"placement of {p.request_id} dropped: its slot {slot_id} is not free"
            logs.append((logging.INFO, msg))
    return kept


def _verified(
    state: ClusterState, placements: list[Placement], logs: list[tuple[int, str]]
) -> tuple[list[Placement], dict[str, tuple[str, ...]]]:
    """``core.verify``'s check, placement by placement on a scratch view, dropping
    (rather than failing the whole plan on) any that no longer fit; with the operator
    disks the view chose for each new slot's path and mount volumes."""
    scratch = state.view.copy()
    good = []
    for p in placements:
        reason = check_placement(scratch, p)
        if reason is None:
            scratch.assume(p)
            good.append(p)
        else:
            msg = f"placement of {p.request_id} on {p.node_id} dropped: {reason}"
            logs.append((logging.INFO, msg))
    return good, scratch.disk_held


def _new_task(
    state: ClusterState, p: Placement, now: float, slot: ReservationRecord | None = None
) -> TaskRecord:
    app = state.apps[p.app_id]
    node = state.nodes[p.node_id]
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


def decide_destroy_slots(state: ClusterState, slots: Iterable[str]) -> Decision:
    """Forget instance slots (their nodes' agents then delete the volumes)."""
    records = [state.reservations[s] for s in dict.fromkeys(slots) if s in state.reservations]
    return Decision(
        ops=tuple(Delete(r.key) for r in records),
        dropped_reservations=tuple(r.id for r in records),
        logs=tuple(
            (logging.INFO, f"destroyed the persistent volumes of {r.key} on node {r.node_id}")
            for r in records
        ),
    )


# ------------------------------------------------------------ statuses


def decide_statuses(
    state: ClusterState,
    node_id: str,
    updates: Sequence[TaskStatus],
    now: float,
    ended: TaskEnd,
) -> Decision:
    """What is new in an agent's reports, idempotently by (task id, seq): stale, unknown
    and illegal ones change nothing (illegal ones are counted and logged)."""
    changes: dict[str, tuple[TaskRecord, TaskRecord]] = {}
    backoff: dict[str, BackoffRecord] = {}
    logs: list[tuple[int, str]] = []
    illegal = 0
    for u in updates:
        current = changes[u.task_id][1] if u.task_id in changes else state.tasks.get(u.task_id)
        if current is None or current.node_id != node_id or u.seq <= current.seq:
            continue
        if step(current.state, u.state) is Step.ILLEGAL:
            # Not a move its agent can make (a task going back, an end reported twice, a
            # state only the master sets): counted and ignored, never stored.
            illegal += 1
            logs.append(
                (
                    logging.WARNING,
                    f"ignored an illegal report from node {node_id}: task {u.task_id} "
                    f"{current.state.value} -> {u.state.value} (seq {u.seq})",
                )
            )
            continue
        old = changes[u.task_id][0] if u.task_id in changes else current
        updated = _updated(current, u, now)
        if updated.goal is TaskGoal.RUN and updated.live and updated.failed_check() is not None:
            # Unhealthy for too long: killed in the same transaction that records it.
            updated = updated.with_(goal=TaskGoal.KILL, killed_unhealthy=True)
        if updated.state.is_terminal:
            _note_end(state, updated, now, backoff)
        changes[u.task_id] = (old, updated)
    ops: list[Op] = []
    put: list[TaskRecord] = []
    dropped: list[str] = []
    events: list[object] = []
    for tid, (old, new) in changes.items():
        if new.state.is_terminal:
            ops += [Delete(task_key(tid)), *ended(new, now)]
            dropped.append(tid)
        else:
            ops.append(_put(new))
            put.append(new)
        events += _status_events(old, new, now)
    ops += [Put(backoff_key(a), encode(b.to_json())) for a, b in backoff.items()]
    return Decision(
        ops=tuple(ops),
        tasks=tuple(put),
        dropped_tasks=tuple(dropped),
        backoff=tuple(backoff.items()),
        events=tuple(events),
        counts=(("illegal", illegal),) if illegal else (),
        logs=tuple(logs),
    )


def _status_events(old: TaskRecord, new: TaskRecord, now: float) -> list[object]:
    events: list[object] = []
    if new.state is not old.state or (new.health == old.health and new.readiness == old.readiness):
        events.append(TaskChanged(new, old.state, now))
    if new.health != old.health:
        before = [h.consecutive_failures for h in old.health]
        for i, h in enumerate(new.health):
            if h.consecutive_failures > (before[i] if i < len(before) else 0):
                events.append(HealthCheckFailed(new, i, now))
        alive = new.healthy is True
        if new.healthy is not None and (old.healthy is True) != alive:
            events.append(HealthChanged(new, alive, now))
        if new.killed_unhealthy and not old.killed_unhealthy:
            events.append(UnhealthyKilled(new, new.failed_check() or 0, now))
    for i, r in enumerate(new.readiness):
        if i >= len(old.readiness) or old.readiness[i] != r:
            events.append(ReadinessChanged(new, i, now))
    return events


def _updated(task: TaskRecord, u: TaskStatus, now: float) -> TaskRecord:
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


def _note_end(
    state: ClusterState, task: TaskRecord, now: float, backoff: dict[str, BackoffRecord]
) -> None:
    """A task that ended by itself (or was killed for failing its health checks) counts
    against its app's launch delay; a failure is also kept as the app's
    ``lastTaskFailure``."""
    app = state.apps.get(task.app_id)
    if app is None or (task.goal is TaskGoal.KILL and not task.killed_unhealthy):
        return
    current = backoff.get(app.id) or state.backoff.get(app.id)
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


def _unheard(task: TaskRecord) -> TaskRecord:
    """The end of a task killed on a node the master cannot reach (its agent will never
    report it)."""
    return task.with_(state=TaskState.KILLED, message="killed while unreachable")


def decide_kill(
    state: ClusterState, task_ids: Sequence[str], now: float, ended: TaskEnd
) -> tuple[Decision, list[TaskRecord]]:
    """Set the goal of each task to KILL (its agent kills it and reports TASK_KILLED); a
    task its agent can no longer hear about (node unreachable) ends now. Also the tasks
    whose goal changed, as they were."""
    ops: list[Op] = []
    put: list[TaskRecord] = []
    dropped: list[str] = []
    events: list[object] = []
    killed: list[TaskRecord] = []
    for tid in dict.fromkeys(task_ids):
        task = state.tasks.get(tid)
        if task is None or task.goal is TaskGoal.KILL:
            continue
        node = state.nodes.get(task.node_id)
        if node is None or node.state not in (NodeState.ACTIVE, NodeState.DRAINING):
            end = _unheard(task)  # its agent will never report it: its end is stored now
            ops += [Delete(task_key(tid)), *ended(end, now)]
            dropped.append(tid)
            events.append(TaskChanged(end, task.state, now))
        else:
            new = task.with_(goal=TaskGoal.KILL)
            ops.append(_put(new))
            put.append(new)
        killed.append(task)
    decision = Decision(
        ops=tuple(ops), tasks=tuple(put), dropped_tasks=tuple(dropped), events=tuple(events)
    )
    return decision, killed


def decide_replaced(state: ClusterState, task_ids: Iterable[str]) -> Decision:
    """Mark tasks replaced (an unreachable task whose app started another instance)."""
    new = [state.tasks[t].with_(replaced=True) for t in dict.fromkeys(task_ids) if t in state.tasks]
    return Decision(ops=tuple(_put(t) for t in new), tasks=tuple(new))


def decide_expunge(state: ClusterState, task_ids: Iterable[str], now: float) -> Decision:
    """Forget tasks (an unreachable task past its app's expunge time)."""
    old = [state.tasks[t] for t in dict.fromkeys(task_ids) if t in state.tasks]
    return Decision(
        ops=tuple(Delete(task_key(t.id)) for t in old),
        dropped_tasks=tuple(t.id for t in old),
        events=tuple(
            TaskChanged(t.with_(state=TaskState.GONE_BY_OPERATOR, message="expunged"), t.state, now)
            for t in old
        ),
    )
