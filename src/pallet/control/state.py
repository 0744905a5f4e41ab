"""The master's authoritative in-memory state: records as committed, and the scheduler's view.

Everything here mirrors what the store holds; only ``Applier.apply`` changes it, right
after the store transaction that made the change durable (``control.decision``). Soft
state, never stored, is the exception: heartbeats and usage, which nodes are still
recovering, the launch queue. ``generation`` rises with every change
so the API can cache what it renders.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, defaultdict
from collections.abc import Container
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from pallet.control.records import (
    AppRecord,
    BackoffRecord,
    DeploymentRecord,
    NodeRecord,
    TaskGoal,
    TaskRecord,
)
from pallet.control.reservations import ReservationRecord
from pallet.core import ClusterView
from pallet.model import NodeState
from pallet.model.maintenance import MachineMode, Maintenance

__all__ = ["Backoffs", "ClusterState", "Deployments", "NodeLiveness", "QueueEntry", "node_ip"]

_RECENT = 1000


class Deployments(dict[str, DeploymentRecord]):
    """The deployments by id, indexed by the apps they target, so that "which deployments
    hold this app" (every app write asks it) costs the app's few rather than a pass over
    every deployment. Every way of changing the dict keeps the index."""

    def __init__(self, dirty: set[str] | None = None) -> None:
        super().__init__()
        self.dirty: set[str] = set() if dirty is None else dirty
        """App ids whose deployments changed are added here (``ClusterState.dirty``)."""
        self._by_app: dict[str, dict[str, DeploymentRecord]] = {}
        self._marks = 0
        self.marks: dict[str, int] = {}
        """app id -> a number that changes whenever a deployment targeting the app is
        added, changed or removed (what a listing with deployments compares, instead of
        visiting every deployment); absent for an app no deployment targets. Never the
        same number twice."""

    def _mark(self, app_id: str) -> None:
        self._marks += 1
        self.marks[app_id] = self._marks
        self.dirty.add(app_id)

    def of_app(self, app_id: str) -> list[DeploymentRecord]:
        """The deployments targeting ``app_id``, in the order they were added (for this app)."""
        held = self._by_app.get(app_id)
        return list(held.values()) if held else []

    def _index(self, d: DeploymentRecord) -> None:
        for app_id in d.targets:
            self._by_app.setdefault(app_id, {})[d.id] = d
            self._mark(app_id)

    def _unindex(self, d: DeploymentRecord, keep: Container[str] = ()) -> None:
        for app_id in d.targets:
            if app_id in keep:
                continue
            held = self._by_app.get(app_id)
            if held is not None:
                held.pop(d.id, None)
                if held:
                    self._mark(app_id)
                else:  # unmarked: a change too, and nothing kept for apps long done
                    del self._by_app[app_id]
                    self.marks.pop(app_id, None)
                    self.dirty.add(app_id)

    def __setitem__(self, key: str, value: DeploymentRecord) -> None:
        old = super().get(key)
        if old is not None:  # an app still targeted keeps its place
            self._unindex(old, keep=value.targets)
        super().__setitem__(key, value)
        self._index(value)

    def __delitem__(self, key: str) -> None:
        self._unindex(self[key])
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self._unindex(self[key])
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, DeploymentRecord]:
        key, value = super().popitem()
        self._unindex(value)
        return key, value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self) -> None:
        super().clear()
        self.dirty.update(self._by_app)
        self._by_app.clear()
        self.marks.clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> Deployments:  # type: ignore[override,misc]
        self.update(other)
        return self


class Backoffs(dict[str, BackoffRecord]):
    """The launch delays by app id; every way of changing the dict adds the app ids it
    changes to ``dirty`` (``ClusterState.dirty``): a delay's end is the app's queue entry's."""

    def __init__(self, dirty: set[str]) -> None:
        super().__init__()
        self.dirty = dirty

    def __setitem__(self, key: str, value: BackoffRecord) -> None:
        self.dirty.add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.dirty.add(key)
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self.dirty.add(key)
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, BackoffRecord]:
        key, value = super().popitem()
        self.dirty.add(key)
        return key, value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self) -> None:
        self.dirty.update(self)
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> Backoffs:  # type: ignore[override,misc]
        self.update(other)
        return self


@dataclass(slots=True)
class NodeLiveness:
    """Soft state of a node: its last heartbeat and the usage it reported."""

    last_heartbeat: float | None = None
    interval: float = 0.0
    """The heartbeat interval the master last gave the node's agent (0: the agent's own)."""
    cpu_seconds: dict[str, tuple[float, float]] = field(default_factory=dict)
    """task id -> (cpu seconds, at) of the latest report, for the CPU rate."""
    cpu_rate: float = 0.0
    rss_bytes: int = 0
    disk_bytes: int = 0
    supervisor: dict[str, Any] | None = None
    """What the agent's service manager (``pallet up``) last said of its restarts."""


@dataclass(slots=True)
class QueueEntry:
    """An app waiting for instances, with why the nodes turned the last try down."""

    app_id: str
    count: int
    since: float
    launch_after: float = 0.0
    reasons: tuple[tuple[str, int], ...] = ()
    nodes_considered: int = 0
    last_unused_at: float | None = None
    last_used_at: float | None = None


class ClusterState:
    def __init__(self) -> None:
        self.dirty: set[str] = set()
        """App ids whose app controller decision may have changed since its last pass
        looked at them (the controller takes and empties it): the app, its tasks, its
        launch delay, a deployment targeting it, or a node its tasks are on changed. A
        deleted app's id too (its tasks left must be killed)."""
        self.dirty_all = False
        """A change that may concern every app (maintenance): the next pass looks at all."""
        self.apps: dict[str, AppRecord] = {}
        self.tasks: dict[str, TaskRecord] = {}
        self.nodes: dict[str, NodeRecord] = {}
        self.drained: set[str] = set()
        """The nodes an operator drained (``NodeRecord.drain`` set): what ``drain_moves``
        looks at when no maintenance is scheduled, instead of every node on every pass."""
        self.deployments = Deployments(self.dirty)
        self.backoff: dict[str, BackoffRecord] = Backoffs(self.dirty)
        self.queue: dict[str, QueueEntry] = {}
        self.reservations: dict[str, ReservationRecord] = {}
        """Instance slots of resident apps by slot id (``control.reservations``)."""
        self.liveness: dict[str, NodeLiveness] = defaultdict(NodeLiveness)
        self.recovering: set[str] = set()
        """Nodes read from the store that have not spoken to this master yet. They get no
        new tasks until they register or heartbeat (Mesos offers a recovered agent only
        once it re-registers after a master failover); the node monitor's grace period
        starts at load, so one that never returns goes UNREACHABLE and its tasks are
        replaced."""
        self.view = ClusterView()
        self.tasks_by_app: dict[str, set[str]] = defaultdict(set)
        self.tasks_by_node: dict[str, set[str]] = defaultdict(set)
        self.desired_revision: dict[str, int] = {}
        self._desired_changed: dict[str, list[asyncio.Future[None]]] = {}
        """node id -> the long-polls waiting for its desired set to change."""
        self.recently_ended: OrderedDict[str, TaskRecord] = OrderedDict()
        """The last tasks that ended (bounded), so their logs can still be found."""
        self.generation = 0
        self.app_changes: dict[str, int] = {}
        """app id -> a number that rises whenever the app or any of its tasks changes (what
        a rendering of the app is cached by: a listing re-renders the apps that changed,
        without looking at the others' tasks)."""
        self.revision = 0
        """The store revision of the last write this master committed (or read at load)."""
        self.closing = False
        self._maintenance = Maintenance()

    @property
    def maintenance(self) -> Maintenance:
        """The maintenance schedule and DOWN machines (``/maintenance/schedule``)."""
        return self._maintenance

    @maintenance.setter
    def maintenance(self, value: Maintenance) -> None:
        self._maintenance = value
        self.dirty_all = True  # a scheduled drain moves the tasks of any app

    def machine_mode(self, record: NodeRecord) -> MachineMode:
        """The maintenance mode of the machine the node is on."""
        if not self.maintenance.windows:
            return MachineMode.UP
        return self.maintenance.mode_of(record.node.hostname, node_ip(record.address))

    # ------------------------------------------------------------ changes

    def touch(self) -> None:
        self.generation += 1

    def _app_changed(self, app_id: str) -> None:
        self.dirty.add(app_id)
        if app_id in self.apps:  # a deleted app's tasks ending later leave no entry
            self.app_changes[app_id] = self.app_changes.get(app_id, 0) + 1

    def put_app(self, app: AppRecord) -> None:
        self.apps[app.id] = app
        self._app_changed(app.id)
        self.touch()

    def drop_app(self, app_id: str) -> None:
        self.apps.pop(app_id, None)
        self.dirty.add(app_id)
        self.backoff.pop(app_id, None)
        self.queue.pop(app_id, None)
        # Forgotten (the id of every app ever deleted would pile up otherwise): an app
        # created again under the id has another version, so no cached rendering of the
        # old one can be taken for it.
        self.app_changes.pop(app_id, None)
        self.touch()

    def _node_changed(self, node_id: str) -> None:
        """The apps of the node's tasks (its state decides whether they are moved off a
        drained node, or expunged) are to be looked at again."""
        tasks = self.tasks
        self.dirty.update(tasks[t].app_id for t in self.tasks_by_node.get(node_id, ()))

    def put_node(self, record: NodeRecord, revision: int) -> None:
        """Add or replace a node; a changed shape rebuilds the view (rare: re-registration)."""
        old = self.nodes.get(record.id)
        self.nodes[record.id] = record
        if record.drain is not None:
            self.drained.add(record.id)
        else:
            self.drained.discard(record.id)
        self._node_changed(record.id)
        if old is None:
            self.view.add_nodes([record.node])
        elif _shape(old) != _shape(record):
            self.rebuild_view()
        elif record.id not in self.recovering:
            self.view.set_state(record.id, record.state)
        self.desired_revision.setdefault(record.id, revision)
        self.touch()

    def set_node_state(self, node_id: str, state: NodeState) -> None:
        record = self.nodes[node_id]
        self.nodes[node_id] = replace(record, node=replace(record.node, state=state))
        self._node_changed(node_id)
        if node_id not in self.recovering or state is not NodeState.ACTIVE:
            self.view.set_state(node_id, state)
        self.touch()

    def drop_node(self, node_id: str) -> None:
        """Forget a node (its tasks are gone already); the view is rebuilt (rare)."""
        self._node_changed(node_id)
        self.nodes.pop(node_id, None)
        self.drained.discard(node_id)
        self.liveness.pop(node_id, None)
        self.recovering.discard(node_id)
        self.tasks_by_node.pop(node_id, None)
        self.desired_revision.pop(node_id, None)
        _wake_all(self._desired_changed.pop(node_id, ()))
        self.rebuild_view()
        self.touch()

    def recover_node(self, record: NodeRecord, revision: int) -> None:
        """A node from the store at start-up: known, but held back until it is heard."""
        self.put_node(record, revision)
        self.recovering.add(record.id)
        self.view.set_state(record.id, NodeState.UNREACHABLE)

    def heard(self, node_id: str) -> None:
        """The node's agent spoke: a recovering node may receive tasks again."""
        if node_id in self.recovering:
            self.recovering.discard(node_id)
            self.view.set_state(node_id, self.nodes[node_id].state)
            self.touch()

    def put_task(self, task: TaskRecord, revision: int) -> None:
        """Insert or update a live task (binding it on the view when new)."""
        old = self.tasks.get(task.id)
        self.tasks[task.id] = task
        if old is None:
            self.view.assume(task.placement())
            self.tasks_by_app[task.app_id].add(task.id)
            self.tasks_by_node[task.node_id].add(task.id)
            self._desired_changed_on(task.node_id, revision)
        elif old.goal is not task.goal:
            self._desired_changed_on(task.node_id, revision)
        self._app_changed(task.app_id)
        self.touch()

    def drop_task(self, task_id: str, revision: int) -> TaskRecord | None:
        task = self.tasks.pop(task_id, None)
        if task is None:
            return None
        self.view.release(task_id)
        self.tasks_by_app[task.app_id].discard(task_id)
        if not self.tasks_by_app[task.app_id]:
            del self.tasks_by_app[task.app_id]
        self.tasks_by_node[task.node_id].discard(task_id)
        self._desired_changed_on(task.node_id, revision)
        self._app_changed(task.app_id)
        self.recently_ended[task_id] = task
        while len(self.recently_ended) > _RECENT:
            self.recently_ended.popitem(last=False)
        self.touch()
        return task

    def put_reservation(self, record: ReservationRecord, revision: int) -> None:
        """A new instance slot: its disk is held on its node from now on."""
        self.reservations[record.id] = record
        if record.node_id in self.view.row:
            self.view.assume(record.placement())
        self._desired_changed_on(record.node_id, revision)
        self.touch()

    def drop_reservation(self, slot: str, revision: int) -> ReservationRecord | None:
        """A destroyed slot: its node's agent deletes the volumes (its desired set no
        longer lists them)."""
        record = self.reservations.pop(slot, None)
        if record is None:
            return None
        if record.view_id in self.view.tasks:
            self.view.release(record.view_id)
        if record.node_id in self.nodes:
            self._desired_changed_on(record.node_id, revision)
        self.touch()
        return record

    def app_reservations(self, app_id: str) -> list[ReservationRecord]:
        return [r for r in self.reservations.values() if r.app_id == app_id]

    def node_volumes(self, node_id: str) -> tuple[str, ...]:
        """The ids of the persistent volumes the master reserves on the node."""
        return tuple(
            sorted(
                v.id for r in self.reservations.values() if r.node_id == node_id for v in r.volumes
            )
        )

    def rebuild_view(self) -> None:
        view = ClusterView([r.node for r in self.nodes.values()])
        for task in self.tasks.values():
            view.assume(task.placement())
        for record in self.reservations.values():
            if record.node_id in view.row:
                view.assume(record.placement())
        for node_id in self.recovering:
            view.set_state(node_id, NodeState.UNREACHABLE)
        self.view = view

    # ------------------------------------------------------------ agents' desired sets

    def _desired_changed_on(self, node_id: str, revision: int) -> None:
        self.desired_revision[node_id] = max(self.desired_revision.get(node_id, 0), revision)
        _wake_all(self._desired_changed.pop(node_id, ()))

    def desired_tasks(self, node_id: str) -> list[TaskRecord]:
        """The tasks the node's agent should run: goal RUN and not ended."""
        tasks = (self.tasks[t] for t in sorted(self.tasks_by_node.get(node_id, ())))
        return [t for t in tasks if t.goal is TaskGoal.RUN and t.live]

    async def wait_desired(self, node_id: str, after: int, timeout: float) -> None:
        """Return once the node's desired set is newer than revision ``after``, or after
        ``timeout`` seconds."""
        if self.desired_revision.get(node_id, 0) > after or self.closing:
            return
        # A bare future and a timer, not ``wait_for(event.wait())`` (a task and an event
        # per poll): every agent holds one all the time, and at 12,500 nodes the polls
        # that end by timeout alone are 400 a second.
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        waiters = self._desired_changed.setdefault(node_id, [])
        waiters.append(waiter)
        timer = loop.call_later(timeout, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            if self._desired_changed.get(node_id) is waiters:  # (not woken by a change)
                waiters.remove(waiter)
                if not waiters:
                    del self._desired_changed[node_id]

    def release_waiters(self) -> None:
        """The master is stopping: answer every long-poll now, and the next ones at once."""
        self.closing = True
        for waiters in self._desired_changed.values():
            _wake_all(waiters)
        self._desired_changed.clear()

    def app_tasks(self, app_id: str) -> list[TaskRecord]:
        return [self.tasks[t] for t in self.tasks_by_app.get(app_id, ())]


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _wake_all(waiters: list[asyncio.Future[None]] | tuple[()]) -> None:
    for waiter in waiters:
        _wake(waiter)


def _shape(record: NodeRecord) -> tuple[object, ...]:
    n = record.node
    return (
        n.capacity,
        n.gpu_count,
        n.gpu_model,
        n.ports,
        dict(n.attributes),
        n.hostname,
        n.role,
        n.networks,
        n.disks,
    )


def node_ip(address: str) -> str:
    """The IP of the agent that registered ``address`` (its log server's base URL)."""
    try:
        return urlsplit(address).hostname or ""
    except ValueError:
        return ""
