"""The applier's decisions about nodes: registration, a node lost, back, gone, drained,
removed or in maintenance; pure (state, input, now) -> ``Decision``.

A node's decision carries all its tasks' changes with it (one transaction: a crash never
leaves a node UNREACHABLE with its tasks still RUNNING in the store).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from pallet.control.bus import TaskChanged
from pallet.control.decision import Decision
from pallet.control.errors import NodeBusy
from pallet.control.layout import MAINTENANCE, node_key, task_key
from pallet.control.records import NodeDrain, NodeRecord, TaskGoal, TaskRecord, TaskState, encode
from pallet.control.state import ClusterState, node_ip
from pallet.core.maintenance import resting_state
from pallet.model import NodeState
from pallet.model.maintenance import MachineMode, Maintenance
from pallet.store import Delete, Op, Put

__all__ = [
    "DrainMoves",
    "decide_drain_set",
    "decide_draining",
    "decide_gone",
    "decide_maintenance",
    "decide_register",
    "decide_remove",
    "decide_returned",
    "decide_unreachable",
    "drain_moves",
]

TaskEnd = Callable[[TaskRecord, float], list[Op]]

_DOWN = "is on a machine that is DOWN for maintenance; it may register once the machine is up"


def _with_node_state(record: NodeRecord, state: NodeState) -> NodeRecord:
    return replace(record, node=replace(record.node, state=state))


def _node_put(record: NodeRecord) -> Put:
    return Put(node_key(record.id), encode(record.to_json()))


def _node_tasks(state: ClusterState, node_id: str) -> list[TaskRecord]:
    return [state.tasks[t] for t in sorted(state.tasks_by_node.get(node_id, ()))]


def _drop(tasks: Sequence[TaskRecord], why: str, now: float, ended: TaskEnd) -> Decision:
    """Delete ``tasks``, each with what is stored of its end (a job task's, so that a
    master taking over does not run it again)."""
    ops: list[Op] = []
    events: list[object] = []
    for t in tasks:
        gone = t.with_(state=TaskState.GONE, message=why)
        ops += [Delete(task_key(t.id)), *ended(gone, now)]
        events.append(TaskChanged(gone, t.state, now))
    return Decision(ops=tuple(ops), dropped_tasks=tuple(t.id for t in tasks), events=tuple(events))


def decide_register(
    state: ClusterState, record: NodeRecord, now: float, ended: TaskEnd
) -> Decision:
    """Add or refresh a node. A new agent process (boot id) has lost its tasks. Raises
    ``NodeBusy`` for a node on a machine DOWN for maintenance."""
    # The machine's mode as of now (an operator's call may have come in between).
    mode = state.machine_mode(record)
    if mode is MachineMode.DOWN:
        raise NodeBusy(record.id, _DOWN)
    record = _with_node_state(
        record, resting_state(NodeState.ACTIVE, mode, record.drain is not None)
    )
    old = state.nodes.get(record.id)
    lost = (
        _node_tasks(state, record.id) if old is not None and old.boot_id != record.boot_id else []
    )
    node = Decision(ops=(_node_put(record),), nodes=(record,))
    return node.then(_drop(lost, "the agent restarted without its tasks", now, ended))


def decide_unreachable(state: ClusterState, node_id: str, now: float) -> Decision:
    """The node missed its heartbeats: it and its tasks become UNREACHABLE (tasks being
    killed are forgotten: their agent will not report them)."""
    record = state.nodes.get(node_id)
    if record is None or record.state not in (NodeState.ACTIVE, NodeState.DRAINING):
        return Decision(wake=False)
    tasks = _node_tasks(state, node_id)
    ops: list[Op] = [_node_put(_with_node_state(record, NodeState.UNREACHABLE))]
    put: list[TaskRecord] = []
    dropped: list[str] = []
    events: list[object] = []
    for t in tasks:
        if t.goal is TaskGoal.KILL:
            ops.append(Delete(task_key(t.id)))
            dropped.append(t.id)
        else:
            new = t.with_(
                state=TaskState.UNREACHABLE, unreachable_since=now, state_before_unreachable=t.state
            )
            ops.append(Put(task_key(t.id), encode(new.to_json())))
            put.append(new)
            events.append(TaskChanged(new, t.state, now))
    return Decision(
        ops=tuple(ops),
        node_states=((node_id, NodeState.UNREACHABLE),),
        tasks=tuple(put),
        dropped_tasks=tuple(dropped),
        events=tuple(events),
        logs=((logging.WARNING, f"node {node_id} is unreachable: {len(tasks)} tasks unreachable"),),
    )


def decide_draining(state: ClusterState, node_id: str) -> Decision:
    """The agent is leaving (drained): no new task goes there. Its tasks stay as they
    are until the agent reports their ends; a later registration makes it ACTIVE."""
    record = state.nodes.get(node_id)
    if record is None or record.state in (NodeState.DRAINING, NodeState.DOWN):
        return Decision(wake=False)
    return Decision(
        ops=(_node_put(_with_node_state(record, NodeState.DRAINING)),),
        node_states=((node_id, NodeState.DRAINING),),
        logs=((logging.WARNING, f"node {node_id} is draining: its agent is leaving"),),
    )


def decide_returned(state: ClusterState, node_id: str, now: float) -> Decision:
    """A heartbeat from an UNREACHABLE node: it is ACTIVE again; its replaced tasks are
    killed, the others resume the state they had."""
    record = state.nodes.get(node_id)
    if record is None or record.state is not NodeState.UNREACHABLE:
        return Decision(wake=False)
    mode = state.machine_mode(record)
    node_state = resting_state(NodeState.ACTIVE, mode, record.drain is not None)
    ops: list[Op] = [_node_put(_with_node_state(record, node_state))]
    put: list[TaskRecord] = []
    events: list[object] = []
    for t in _node_tasks(state, node_id):
        if t.state is not TaskState.UNREACHABLE:
            continue
        new = t.with_(
            state=t.state_before_unreachable or TaskState.RUNNING,
            unreachable_since=None,
            goal=TaskGoal.KILL if t.replaced else t.goal,
        )
        ops.append(Put(task_key(t.id), encode(new.to_json())))
        put.append(new)
        events.append(TaskChanged(new, t.state, now))
    return Decision(
        ops=tuple(ops),
        node_states=((node_id, node_state),),
        tasks=tuple(put),
        events=tuple(events),
        logs=((logging.WARNING, f"node {node_id} is back"),),
    )


def decide_drain_set(state: ClusterState, node_id: str, drain: NodeDrain | None) -> Decision:
    """Start (``drain``) or end (None) an operator's drain. A drained node is offered
    nothing; undrained, it is ACTIVE again unless it is down."""
    record = state.nodes.get(node_id)
    if record is None:
        return Decision(wake=False)
    node_state = record.state
    if node_state in (NodeState.ACTIVE, NodeState.DRAINING):
        node_state = resting_state(node_state, state.machine_mode(record), drain is not None)
    new = replace(_with_node_state(record, node_state), drain=drain)
    return Decision(
        ops=(_node_put(new),),
        nodes=(new,),
        logs=((logging.WARNING, f"node {node_id} {'drained' if drain else 'undrained'}"),),
    )


def decide_maintenance(
    state: ClusterState, new: Maintenance, now: float, ended: TaskEnd
) -> Decision:
    """Store maintenance ``new`` and move each node to its machine's mode in the same
    transaction; nodes going DOWN lose their tasks (their agents kill them, the apps
    replace them elsewhere)."""
    moves: list[NodeRecord] = []
    for record in state.nodes.values():
        mode = (
            MachineMode.UP
            if not new.windows
            else new.mode_of(record.node.hostname, node_ip(record.address))
        )
        node_state = resting_state(record.state, mode, record.drain is not None)
        if node_state is not record.state:
            moves.append(_with_node_state(record, node_state))
    down = [r.id for r in moves if r.state is NodeState.DOWN]
    tasks = [t for n in down for t in _node_tasks(state, n)]
    first = Decision(
        ops=(Put(MAINTENANCE, encode(new.to_json())), *(_node_put(r) for r in moves)),
        maintenance=new,
        node_states=tuple((r.id, r.state) for r in moves),
        logs=tuple(
            (logging.WARNING, f"node {r.id} is {r.state.value} for maintenance") for r in moves
        ),
    )
    return first.then(_drop(tasks, "the machine is down for maintenance", now, ended))


def decide_gone(state: ClusterState, node_id: str, now: float, ended: TaskEnd) -> Decision:
    """An UNREACHABLE node stayed silent: GONE. Its tasks are dropped (the apps replace
    them) and it no longer counts in the cluster's totals."""
    record = state.nodes.get(node_id)
    if record is None or record.state is not NodeState.UNREACHABLE:
        return Decision(wake=False)
    node = Decision(
        ops=(_node_put(_with_node_state(record, NodeState.GONE)),),
        node_states=((node_id, NodeState.GONE),),
        logs=((logging.WARNING, f"node {node_id} is gone"),),
    )
    return node.then(_drop(_node_tasks(state, node_id), "the node is gone", now, ended))


def decide_remove(state: ClusterState, node_id: str, now: float, ended: TaskEnd) -> Decision:
    """Forget a node and whatever tasks it still had (the caller checked it may go)."""
    if node_id not in state.nodes:
        return Decision(wake=False)
    tasks = _drop(_node_tasks(state, node_id), "the node was removed", now, ended)
    node = Decision(
        ops=(Delete(node_key(node_id)),),
        dropped_nodes=(node_id,),
        logs=((logging.WARNING, f"node {node_id} removed"),),
    )
    return node.then(tasks)


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
    # Without a maintenance schedule only the nodes an operator drained can move tasks
    # (a walk over every node took 2.6 ms at 12,500 nodes, on every controller pass and
    # every placement round).
    nodes: Iterable[str] = state.nodes if state.maintenance.windows else sorted(state.drained)
    for node_id in nodes:
        record = state.nodes[node_id]
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
