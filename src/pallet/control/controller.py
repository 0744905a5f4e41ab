"""The app controller loop: for every app, desired vs actual -> the launch queue and kills;
finishes deployments; asyncio.

Level-triggered: a pass decides under the applier's lock with the pure ``reconcile_app``
and acts through the applier. It runs when something changes (a kick; kicks close
together are one pass, see ``SETTLE``) and at least every ``interval`` seconds.

A pass looks at the apps whose decision may have changed since the last one:
``ClusterState.dirty`` (filled where the state changes: an app, its tasks, its launch
delay, a deployment targeting it, a node its tasks are on) and those whose decision
changes by the clock alone now (an unreachable task becoming inactive or expunged: the
index ``_due``). The rest of the queue stays as the last pass left it. Every
``full_interval`` seconds (and on the first pass, or after a maintenance change) a pass
looks at every app, as a safety net: a full pass over 3,000 apps took ~95 ms of the
event loop, and ran at every kick (``pallet bench api --mixed``, issue 16). The
deployments finished and watched are those of the apps looked at, and those whose watch
decides by the clock. Drains overdue and deleted apps' slots are looked at on every pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pallet.control.applier import Applier
from pallet.control.applier_nodes import drain_moves
from pallet.control.bus import AppTerminated, DeploymentChanged, EventBus
from pallet.control.decision import Decision, first_part
from pallet.control.deployments import advance, converged, holding, waiting, watch
from pallet.control.jobs_layout import is_job_owner
from pallet.control.layout import app_key, deployment_key
from pallet.control.reconcile import next_due, reconcile_app
from pallet.control.records import DeploymentRecord, TaskGoal, encode
from pallet.control.reservations import busy_slots
from pallet.control.state import ClusterState, QueueEntry
from pallet.model import NodeState
from pallet.store import Delete, Op, Put

__all__ = ["AppController"]

log = logging.getLogger(__name__)

SETTLE = 0.05
"""Seconds between two passes however often the controller is kicked. A pass (then
over every app and task) may store a deployment's progress; while 1,000 tasks start,
every batch of statuses kicks it, and a pass per batch took about a sixth of the
master's time (``pallet bench e2e``). A task's end is acted on at most this much later."""

DUTY = 3.0
"""A pass that took ``d`` seconds is followed by at least ``DUTY * d`` seconds of rest
(never less than ``SETTLE``, never more than the controller's ``interval``), so kicked
passes take at most about a quarter of the event loop however large the cluster: a full
pass walks every app and task (a kicked one, every app that changed: while tasks start,
most of them), and while tasks start every status batch kicks it, so with a
fixed settle the controller took more of the master the more tasks there were
(``pallet bench scale``)."""


FULL_INTERVAL = 30.0
"""Seconds between two passes that look at every app (see the module's doc): a safety
net only, the time-based decisions being found by the index of due times."""


@dataclass(slots=True)
class PassPlan:
    """What one pass decided, before it acts (``AppController.plan``)."""

    full: bool
    kill: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    expunge: list[str] = field(default_factory=list)
    queue: dict[str, tuple[int, float] | None] = field(default_factory=dict)
    """app id -> (instances waiting, launch after) of each app looked at; None: not
    waiting (no entry)."""
    due: dict[str, float | None] = field(default_factory=dict)
    """app id -> when its decision changes by the clock alone (``reconcile.next_due``)."""
    deployments: set[str] | None = None
    """The deployments to finish or watch: those of the apps looked at and those whose
    watch has a clock (a progress deadline, an automatic promotion); None: every one."""


class AppController:
    def __init__(
        self,
        state: ClusterState,
        applier: Applier,
        bus: EventBus,
        clock: Callable[[], float],
        on_queue: Callable[[], None] = lambda: None,
        interval: float = 1.0,
        on_failed: Callable[[str, str], Awaitable[object]] | None = None,
        settle: float = SETTLE,
        duty: float = DUTY,
        full_interval: float = FULL_INTERVAL,
    ) -> None:
        self.state = state
        self.applier = applier
        self.bus = bus
        self.clock = clock
        self.on_queue = on_queue
        self.interval = interval
        self.settle = settle
        self.duty = duty
        self.full_interval = full_interval
        self.on_failed = on_failed
        """Called (outside the lock) with the app id and the reason when a deployment
        of an app with ``autoRollback`` failed: the app service rolls it back."""
        self.wake = asyncio.Event()
        self._next_full = -math.inf
        """When the next pass looks at every app (the first one does)."""
        self._due: dict[str, float] = {}
        """app id -> when its decision changes by the clock alone (``next_due``)."""
        self._timed: set[str] = set()
        """Deployments whose watch decides by the clock (looked at on every pass)."""

    def kick(self) -> None:
        self.wake.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.interval)
            self.wake.clear()
            began = time.perf_counter()  # pacing only: decisions read ``self.clock``
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad pass must not stop the loop; the next one retries
                log.exception("app controller pass failed")
            # Kicks that come meanwhile are one pass, not one each (see SETTLE, DUTY).
            await asyncio.sleep(self.rest_after(time.perf_counter() - began))

    def rest_after(self, took: float) -> float:
        """Seconds to rest after a pass that took ``took`` seconds (see ``DUTY``)."""
        return min(self.interval, max(self.settle, self.duty * took))

    async def reconcile(self, full: bool | None = None) -> None:
        """One pass: over the apps that changed and their deployments (or every app and
        deployment, when ``full`` or a full pass is due)."""
        async with self.applier.lock:
            now = self.clock()
            if full is None:
                full = self.state.dirty_all or now >= self._next_full
            plan = self.plan(now, full)
            self._take(plan, now)
            try:
                failed = await self._act(plan, now)
            except BaseException:
                # What this pass looked at is no longer dirty, and some of it was not
                # stored (the store failed, leadership ended): the next pass looks at
                # every app, as the loop's retry promises.
                self._next_full = -math.inf
                raise
            ready = any(q.launch_after <= now for q in self.state.queue.values())
        if ready:
            self.on_queue()
        for app_id, reason in failed:
            if self.on_failed is not None:
                await self.on_failed(app_id, reason)

    async def _act(self, plan: PassPlan, now: float) -> list[tuple[str, str]]:
        """Carry out ``plan`` through the applier (the caller holds its lock); the
        deployments that failed, with why."""
        doomed = self._doomed_slots()
        if doomed:
            await self.applier.destroy_slots_locked(doomed)
        if plan.replaced:
            await self.applier.mark_replaced_locked(plan.replaced)
        if plan.expunge:
            await self.applier.expunge_locked(plan.expunge)
        if plan.kill:
            await self.applier.kill_locked(plan.kill)
        await self._finish_deployments(now, plan.deployments)
        failed = await self._watch_deployments(now, plan.deployments)
        self._note_timed(plan.deployments)
        return failed

    def plan(self, now: float, full: bool) -> PassPlan:
        """What a pass at ``now`` decides, over every app (``full``) or over those whose
        decision may have changed (``ClusterState.dirty``) or is due to by the clock;
        changes nothing (the caller holds the applier's lock)."""
        s = self.state
        plan = PassPlan(full)
        drains = drain_moves(s, now)
        plan.kill += drains.overdue
        if full:
            # every app, then every deleted one whose tasks are left
            looked: Iterable[str] = [*s.apps, *(a for a in s.tasks_by_app if a not in s.apps)]
        else:
            # sorted: the queue's new entries (the scheduler's order) do not follow the
            # hash seed
            looked = sorted(s.dirty.union(a for a, at in self._due.items() if at <= now))
        for app_id in looked:
            if is_job_owner(app_id):
                continue  # a job run's tasks: the job controller's
            app = s.apps.get(app_id)
            plan.queue[app_id] = None
            plan.due[app_id] = None
            if waiting(s, app_id):
                continue  # a later step of a group's deployment: left as it is
            tasks = s.app_tasks(app_id)
            if app is None:
                # deleted (and not waiting for its dependents to stop): stop what is left
                plan.kill += [t.id for t in tasks if t.goal is TaskGoal.RUN]
                continue
            entry = s.queue.get(app_id)
            stuck = bool(
                entry is not None
                and entry.reasons
                and (entry.last_unused_at or 0.0) > (entry.last_used_at or 0.0)
            )
            decision = reconcile_app(
                app, tasks, now, s.backoff.get(app_id), stuck, holding(s, app_id), drains.moving
            )
            plan.kill += decision.kill
            plan.replaced += decision.replaced
            # A task on a node that is only unreachable (not gone) is kept, replaced
            # and shown as UNREACHABLE, whatever expungeAfterSeconds says: its process
            # may still run there, and its node's return kills it (issue 10).
            plan.expunge += [t for t in decision.expunge if not self._node_silent(t)]
            if decision.waiting:
                plan.queue[app_id] = (decision.waiting, decision.launch_after)
            plan.due[app_id] = next_due(app, tasks, now)
        if not full:
            plan.deployments = {d.id for a in plan.queue for d in s.deployments.of_app(a)}
            plan.deployments.update(d for d in self._timed if d in s.deployments)
        return plan

    def _note_timed(self, looked: set[str] | None) -> None:
        """Which of the deployments looked at have a clock (``PassPlan.deployments``)."""
        s = self.state
        ids = s.deployments.keys() if looked is None else looked
        timed = self._timed if looked is not None else set()
        for deployment_id in ids:
            d = s.deployments.get(deployment_id)
            if d is not None and _has_clock(d, s):
                timed.add(deployment_id)
            else:
                timed.discard(deployment_id)
        self._timed = timed

    def _take(self, plan: PassPlan, now: float) -> None:
        """The queue and the index of due times as ``plan`` leaves them; the apps it
        looked at are no longer dirty."""
        s = self.state
        queue = {} if plan.full else s.queue
        for app_id, wanted in plan.queue.items():
            if wanted is None:
                queue.pop(app_id, None)
            else:
                queue[app_id] = self._queue_entry(app_id, wanted[0], wanted[1], now)
        s.queue = queue
        s.dirty.clear()  # every dirty app was looked at (nothing changed since: no await)
        if plan.full:
            self._due.clear()
            s.dirty_all = False
            self._next_full = now + self.full_interval
        for app_id, at in plan.due.items():
            if at is None:
                self._due.pop(app_id, None)
            else:
                self._due[app_id] = at

    def _doomed_slots(self) -> list[str]:
        """Instance slots no task holds whose app is deleted, whose app now asks for
        other volumes, or whose node is gone (Marathon destroys a resident app's volumes
        with the app; scaling down, or suspending, keeps them)."""
        if not self.state.reservations:
            return []
        busy = busy_slots(self.state.tasks.values())
        doomed = []
        for r in self.state.reservations.values():
            if r.id in busy:
                continue
            app = self.state.apps.get(r.app_id)
            if app is None or not r.fits(app.run) or r.node_id not in self.state.nodes:
                doomed.append(r.id)
        return doomed

    def _node_silent(self, task_id: str) -> bool:
        task = self.state.tasks.get(task_id)
        node = self.state.nodes.get(task.node_id) if task is not None else None
        return node is not None and node.state is NodeState.UNREACHABLE

    def _queue_entry(self, app_id: str, count: int, launch_after: float, now: float) -> QueueEntry:
        old = self.state.queue.get(app_id)
        if old is None:
            return QueueEntry(app_id, count, now, launch_after)
        old.count = count
        old.launch_after = launch_after
        return old

    async def _finish_deployments(self, now: float, ids: Iterable[str] | None = None) -> None:
        # In parts when too many end at once for one transaction (3,000 apps created
        # between two passes: 6,000 operations, refused whole on every pass, so none
        # ever ended).
        chosen = [d.id for d in _chosen(self.state, ids)]
        await self.applier.apply_parts(
            chosen, lambda part: decide_finish_deployments(self.state, now, part)
        )

    async def _watch_deployments(
        self, now: float, ids: Iterable[str] | None = None
    ) -> list[tuple[str, str]]:
        rollbacks: list[tuple[str, str]] = []

        def decide(part: Sequence[str]) -> Decision:
            decision, found = decide_watch_deployments(self.state, now, part)
            taken[:] = found
            return decision

        taken: list[tuple[str, str]] = []
        rest: Sequence[str] = [d.id for d in _chosen(self.state, ids)]
        while rest:
            decision, rest = first_part(rest, decide)
            await self.applier.apply(decision)
            rollbacks += taken
        return rollbacks


def _has_clock(d: DeploymentRecord, state: ClusterState) -> bool:
    """Whether ``watch`` may decide about ``d`` by the clock alone: one of its apps has a
    progress deadline or promotes its canaries after a while."""
    for app_id in d.app_ids:
        app = state.apps.get(app_id)
        if app is not None and (
            app.run.progress_deadline_seconds is not None
            or app.run.auto_promote_after_seconds is not None
        ):
            return True
    return False


def _chosen(state: ClusterState, ids: Iterable[str] | None) -> list[DeploymentRecord]:
    """The deployments of ``ids`` that still exist (None: every one), in the order they
    were added."""
    if ids is None:
        return list(state.deployments.values())
    found = [state.deployments[i] for i in set(ids) if i in state.deployments]
    order = {d: i for i, d in enumerate(state.deployments)} if len(found) > 1 else {}
    return sorted(found, key=lambda d: order.get(d.id, 0))


def decide_finish_deployments(
    state: ClusterState, now: float, ids: Iterable[str] | None = None
) -> Decision:
    """Move deployments (those of ``ids``; None: every one) past the steps whose apps
    converged; end the finished ones (each app that reached its target records it as its
    stable version); pure."""
    done: list[DeploymentRecord] = []
    going: list[tuple[DeploymentRecord, DeploymentRecord]] = []
    for d in _chosen(state, ids):
        new = advance(d, state, now)
        if converged(new, state, now):
            done.append(new)
        elif new is not d:
            going.append((d, new))
    if not done and not going:
        return Decision(wake=False)
    ops: list[Op] = [Delete(deployment_key(d.id)) for d in done]
    ops += [Put(deployment_key(new.id), encode(new.to_json())) for _, new in going]
    stable = []
    for d in done:
        for app_id, target in d.targets.items():
            app = state.apps.get(app_id)
            if target is not None and app is not None and app.version == target["version"]:
                # Every instance of this version is ready: an autoRollback returns here.
                stable.append(app.with_stable())
                ops.append(Put(app_key(app.id), encode(stable[-1].to_json())))
    events: list[object] = []
    for d, new in going:
        events += [DeploymentChanged("step_success", d, now), DeploymentChanged("info", new, now)]
    for d in done:
        events += [DeploymentChanged("step_success", d, now), DeploymentChanged("success", d, now)]
        for app_id, target in d.targets.items():
            original = d.originals.get(app_id)
            if target is None and original is not None:
                events.append(AppTerminated.of(original, now))
    return Decision(
        ops=tuple(ops),
        apps=tuple(stable),
        deployments=tuple(new for _, new in going),
        dropped_deployments=tuple(d.id for d in done),
        events=tuple(events),
        touch=True,
        wake=False,
    )


def decide_watch_deployments(
    state: ClusterState, now: float, ids: Iterable[str] | None = None
) -> tuple[Decision, list[tuple[str, str]]]:
    """Note progress and canary pauses; fail deployments past their progress deadline
    (of the deployments of ``ids``; None: every one); pure. Also (app id, reason) of the
    failed ones whose app rolls back."""
    changed: list[DeploymentRecord] = []
    failed: list[tuple[DeploymentRecord, str]] = []
    for d in _chosen(state, ids):
        tasks = [t for app_id in d.app_ids for t in state.app_tasks(app_id)]
        new, reason = watch(d, state.apps, tasks, now)
        if reason is not None:
            failed.append((new, reason))
        elif new != d:
            changed.append(new)
    if not changed and not failed:
        return Decision(wake=False), []
    ops: list[Op] = [Put(deployment_key(d.id), encode(d.to_json())) for d in changed]
    ops += [Delete(deployment_key(d.id)) for d, _ in failed]
    events: list[object] = []
    for d in changed:
        before = state.deployments[d.id]
        paused = d.paused_at is not None and before.paused_at is None
        if paused or d.promoted != before.promoted:
            events.append(DeploymentChanged("info", d, now))
    rollbacks = []
    for d, reason in failed:
        events.append(DeploymentChanged("step_failure", d, now, reason))
        events.append(DeploymentChanged("failed", d, now, reason))
        for app_id in d.app_ids:
            app = state.apps.get(app_id)
            if app is not None and app.run.auto_rollback:
                rollbacks.append((app_id, reason))
    decision = Decision(
        ops=tuple(ops),
        deployments=tuple(changed),
        dropped_deployments=tuple(d.id for d, _ in failed),
        events=tuple(events),
        touch=True,
        wake=False,
    )
    return decision, rollbacks
