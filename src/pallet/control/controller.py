"""The app controller loop: for every app, desired vs actual -> the launch queue and kills;
finishes deployments; asyncio.

Level-triggered: each pass reads the whole state under the applier's lock, decides with
the pure ``reconcile_app`` and acts through the applier. It runs when something changes
(a kick) and at least every ``interval`` seconds, so time-based decisions (backoff ends,
unreachable tasks become inactive) are taken without an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from pallet.control.applier import Applier
from pallet.control.bus import AppTerminated, DeploymentChanged, EventBus
from pallet.control.deployments import converged
from pallet.control.layout import deployment_key
from pallet.control.reconcile import reconcile_app
from pallet.control.records import AppRecord, TaskGoal
from pallet.control.state import ClusterState, QueueEntry
from pallet.store import Delete

__all__ = ["AppController"]

log = logging.getLogger(__name__)


class AppController:
    def __init__(
        self,
        state: ClusterState,
        applier: Applier,
        bus: EventBus,
        clock: Callable[[], float],
        on_queue: Callable[[], None] = lambda: None,
        interval: float = 1.0,
    ) -> None:
        self.state = state
        self.applier = applier
        self.bus = bus
        self.clock = clock
        self.on_queue = on_queue
        self.interval = interval
        self.wake = asyncio.Event()

    def kick(self) -> None:
        self.wake.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.interval)
            self.wake.clear()
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad pass must not stop the loop; the next one retries
                log.exception("app controller pass failed")

    async def reconcile(self) -> None:
        """One pass over every app and deployment."""
        async with self.applier.lock:
            now = self.clock()
            kill: list[str] = []
            replaced: list[str] = []
            expunge: list[str] = []
            queue: dict[str, QueueEntry] = {}
            for app in list(self.state.apps.values()):
                tasks = self.state.app_tasks(app.id)
                entry = self.state.queue.get(app.id)
                stuck = bool(
                    entry is not None
                    and entry.reasons
                    and (entry.last_unused_at or 0.0) > (entry.last_used_at or 0.0)
                )
                decision = reconcile_app(app, tasks, now, self.state.backoff.get(app.id), stuck)
                kill += decision.kill
                replaced += decision.replaced
                expunge += decision.expunge
                if decision.waiting:
                    queue[app.id] = self._queue_entry(
                        app, decision.waiting, decision.launch_after, now
                    )
            for app_id in list(self.state.tasks_by_app):
                if app_id not in self.state.apps:  # deleted: stop what is left
                    kill += [t.id for t in self.state.app_tasks(app_id) if t.goal is TaskGoal.RUN]
            self.state.queue = queue
            if replaced:
                await self.applier.mark_replaced_locked(replaced)
            if expunge:
                await self.applier.expunge_locked(expunge)
            if kill:
                await self.applier.kill_locked(kill)
            await self._finish_deployments(now)
        if any(q.launch_after <= now for q in queue.values()):
            self.on_queue()

    def _queue_entry(
        self, app: AppRecord, count: int, launch_after: float, now: float
    ) -> QueueEntry:
        old = self.state.queue.get(app.id)
        if old is None:
            return QueueEntry(app.id, count, now, launch_after)
        old.count = count
        old.launch_after = launch_after
        return old

    async def _finish_deployments(self, now: float) -> None:
        done = [d for d in self.state.deployments.values() if converged(d, self.state, now)]
        if not done:
            return
        await self.applier.commit([Delete(deployment_key(d.id)) for d in done])
        for d in done:
            self.state.deployments.pop(d.id, None)
            self.bus.publish(DeploymentChanged("step_success", d, now))
            self.bus.publish(DeploymentChanged("success", d, now))
            if d.target is None and d.original is not None:
                self.bus.publish(AppTerminated(AppRecord.from_json(d.original), now))
        self.state.touch()
