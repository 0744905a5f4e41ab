"""The scheduling worker: the launch queue and a snapshot of the view -> ``core.schedule`` ->
the applier; asyncio around the pure core.

It never writes: the plan goes to the applier, which trims what is no longer wanted and
re-verifies the rest against the latest view. Per-node reasons for what could not be
placed are kept on the queue entry (``/v2/queue`` shows them).

Other owners of tasks (job runs) join through ``sources``: their requests fill what is
left of a round after the apps', one ``core.schedule`` call places both, and each source
commits its own placements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from pallet.control.applier import Applier
from pallet.control.records import AppRecord
from pallet.control.reservations import busy_slots
from pallet.control.state import ClusterState
from pallet.core import Policy, schedule
from pallet.model import Placement, PlacementRequest, Plan, Unplaced

__all__ = ["PlacementSource", "SchedulingWorker", "task_id_for"]

log = logging.getLogger(__name__)

_THREAD_THRESHOLD = 50
"""Schedule this many requests or more in a thread, so the API stays responsive."""

ROUND_SIZE = 200
"""Requests in a first round: the first tasks reach their agents while the rest are still
being placed (a 1,000-instance app starts as a pipeline, not a batch)."""
MAX_ROUND_SIZE = 800
"""While rounds come back full (more is waiting), each asks for twice as many as the last,
up to this many: a round copies the cluster's view and commits its plan at once, whatever
its size, so 500 rounds of 200 for 100,000 tasks on 12,500 nodes spent much of the master
on that. ``pallet bench scale`` at full size, quiet machine, one run each: rounds of 200
placed all in 64.3 s (60.1 master CPU-s), up to 800 in 54.5 s (51.1), up to 1,600 in
51.0 s (47.9); but the larger a round, the longer writes wait behind it (the 1,000 app
creations took 8.4, 23.4 and 48.3 s), so 800."""


class PlacementSource(Protocol):
    """Tasks other than apps' to place in the same rounds (``jobs_place.JobPlacements``)."""

    def owns(self, app_id: str) -> bool: ...

    def requests(self, limit: int) -> list[PlacementRequest]: ...

    async def apply(self, placements: Sequence[Placement]) -> object: ...

    def note_unplaced(self, unplaced: Sequence[Unplaced]) -> None: ...


def task_id_for(app_id: str, unique: str) -> str:
    """Marathon's task id shape: ``prod_web.<uuid>`` for app ``/prod/web``."""
    return f"{app_id.strip('/').replace('/', '_')}.{unique}"


class SchedulingWorker:
    def __init__(
        self,
        state: ClusterState,
        applier: Applier,
        policy: Policy,
        rng: np.random.Generator,
        clock: Callable[[], float],
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        interval: float = 1.0,
    ) -> None:
        self.state = state
        self.applier = applier
        self.policy = policy
        self.rng = rng
        self.clock = clock
        self.new_id = new_id
        self.interval = interval
        self.wake = asyncio.Event()
        self.rounds = 0
        self.round_size = ROUND_SIZE
        """Requests the next round asks for (``MAX_ROUND_SIZE``)."""
        self.sources: list[PlacementSource] = []

    def kick(self) -> None:
        self.wake.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.interval)
            self.wake.clear()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduling round failed")

    def requests(self, limit: int | None = None) -> list[PlacementRequest]:
        """One request per waiting instance whose app's launch delay has passed (at most
        ``limit``)."""
        now = self.clock()
        out: list[PlacementRequest] = []
        for entry in self.state.queue.values():
            app = self.state.apps.get(entry.app_id)
            if app is None or entry.count <= 0 or entry.launch_after > now:
                continue
            count = entry.count if limit is None else min(entry.count, limit - len(out))
            if app.run.persistent:
                out += self._resident_requests(app, count)
            else:
                out += [
                    app.placement_request(task_id_for(app.id, self.new_id())) for _ in range(count)
                ]
            if limit is not None and len(out) >= limit:
                break
        return out

    def _resident_requests(self, app: AppRecord, count: int) -> list[PlacementRequest]:
        """A resident app's instances: its waiting slots first, each pinned to its node
        (whatever else that node holds, its volumes are there), then new slots."""
        busy = busy_slots(self.state.app_tasks(app.id))
        free = [
            r
            for r in sorted(self.state.app_reservations(app.id), key=lambda r: r.created_at)
            if r.id not in busy and r.fits(app.run) and r.node_id in self.state.nodes
        ]
        out = []
        for _ in range(count):
            task_id = task_id_for(app.id, self.new_id())
            if free:
                slot = free.pop(0)
                out.append(app.placement_request(task_id, slot.id, slot.node_id))
            else:
                out.append(app.placement_request(task_id, self.new_id()))
        return out

    async def run_once(self) -> Plan | None:
        size = self.round_size
        requests = self.requests(size)
        for source in self.sources:
            if len(requests) < size:
                requests += source.requests(size - len(requests))
        # a full round: more may wait, and the next asks for more; else back to the start
        self.round_size = min(MAX_ROUND_SIZE, 2 * size) if len(requests) == size else ROUND_SIZE
        if not requests:
            return None
        snapshot = self.state.view.copy()
        if len(requests) >= _THREAD_THRESHOLD:
            plan = await asyncio.to_thread(schedule, requests, snapshot, self.policy, self.rng)
        else:
            plan = schedule(requests, snapshot, self.policy, self.rng)
        self.rounds += 1
        self._note_reasons(plan, len(snapshot))
        for source in self.sources:
            source.note_unplaced(plan.unplaced)
        if plan.placements:
            apps = plan
            for source in self.sources:
                theirs = [p for p in apps.placements if source.owns(p.app_id)]
                if theirs:
                    mine = tuple(p for p in apps.placements if not source.owns(p.app_id))
                    apps = Plan(mine, plan.unplaced)
                    await source.apply(theirs)
            if apps.placements:
                await self.applier.apply_plan(apps)
            if len(requests) == size:
                self.kick()  # more may wait: the next round at once, not at the next tick
        return plan

    def _note_reasons(self, plan: Plan, nodes: int) -> None:
        now = self.clock()
        placed = {p.app_id for p in plan.placements}
        unplaced: dict[str, Unplaced] = {}
        for u in plan.unplaced:
            unplaced.setdefault(u.app_id, u)
        for app_id, entry in self.state.queue.items():
            if app_id in unplaced:
                self.state.dirty.add(app_id)  # stuck: the controller's decision may change
                entry.reasons = unplaced[app_id].reasons
                entry.nodes_considered = nodes
                entry.last_unused_at = now
            if app_id in placed:
                entry.last_used_at = now
        self.state.touch()
