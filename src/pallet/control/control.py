"""``Control``: the master's loops and operations assembled over one store; asyncio.

Control.open(store) ─▶ load every record into ClusterState
start() ─▶ AppController.run   (desired vs actual -> queue, kills, deployments)
           JobController.run    (schedules, dependencies, runs -> job tasks to place)
           SchedulingWorker.run (apps' queue + job runs + snapshot -> core.schedule -> Applier)
           NodeService.run      (heartbeats -> UNREACHABLE)
the API calls Control.apps (AppService), Control.jobs (JobService) and Control.nodes
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pallet.control.applier import Applier
from pallet.control.apps import AppService
from pallet.control.bus import EventBus
from pallet.control.controller import AppController
from pallet.control.groups import GroupService, revert
from pallet.control.jobs_book import JobBook
from pallet.control.jobs_controller import JobController
from pallet.control.jobs_place import JobPlacements
from pallet.control.jobs_service import JobService
from pallet.control.layout import APPS, BACKOFF, DEPLOYMENTS, GROUPS, MAINTENANCE, NODES, TASKS
from pallet.control.nodes import NodeService
from pallet.control.records import (
    AppRecord,
    BackoffRecord,
    DeploymentRecord,
    GroupRecord,
    NodeRecord,
    TaskRecord,
    decode,
)
from pallet.control.reservations import RESERVATIONS, ReservationRecord
from pallet.control.scheduler import SchedulingWorker
from pallet.control.state import ClusterState
from pallet.core import make_policy
from pallet.model.maintenance import Maintenance
from pallet.store import Store

__all__ = ["Control", "ControlConfig"]


@dataclass(frozen=True, slots=True)
class ControlConfig:
    policy: str = "pallet"
    heartbeat_grace: float = 15.0
    """Seconds without a heartbeat before a node is UNREACHABLE."""
    reconcile_interval: float = 1.0
    seed: int | None = None
    node_gone_after: float | None = 600.0
    """Seconds an unreachable node may stay silent before it is GONE (None: never)."""
    max_heartbeats_per_second: float | None = 50.0
    """The heartbeats per second the master asks of all agents together at most (Nomad's
    ``max_heartbeats_per_second``): each agent is told to beat no more often than every
    ``nodes / max_heartbeats_per_second`` seconds, and its grace grows by as much. None:
    agents keep their own interval whatever the cluster's size."""


class Control:
    def __init__(
        self,
        store: Store,
        config: ControlConfig = ControlConfig(),
        *,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.state = ClusterState()
        self.bus = EventBus()
        self.policy_name = config.policy
        self.policy = make_policy(config.policy)
        seed = config.seed if config.seed is not None else uuid.uuid4().int & 0xFFFFFFFF
        self.applier = Applier(store, self.state, self.bus, clock, kick=self._kick)
        self.controller = AppController(
            self.state,
            self.applier,
            self.bus,
            clock,
            on_queue=self._kick_scheduler,
            interval=config.reconcile_interval,
        )
        self.scheduler = SchedulingWorker(
            self.state,
            self.applier,
            self.policy,
            np.random.default_rng(seed),
            clock,
            new_id=new_id,
            interval=config.reconcile_interval,
        )
        self.apps = AppService(
            self.applier, self.state, self.bus, clock, new_id=new_id, policy=self.policy
        )
        self.controller.on_failed = self.apps.roll_back
        self.groups = GroupService(self.apps)
        self.apps.on_group_rollback = lambda d: revert(self.groups, d)
        self.nodes = NodeService(
            self.state,
            self.applier,
            clock,
            grace=config.heartbeat_grace,
            gone_after=config.node_gone_after,
            max_heartbeats_per_second=config.max_heartbeats_per_second,
        )
        self.job_book = JobBook()
        self.job_controller = JobController(
            self.job_book,
            self.state,
            self.applier,
            clock,
            new_id=new_id,
            on_queue=self._kick_scheduler,
            interval=config.reconcile_interval,
        )
        self.job_placements = JobPlacements(
            self.job_book, self.state, self.applier, clock, new_id=new_id
        )
        self.scheduler.sources.append(self.job_placements)
        self.bus.listen(self.job_controller.listen)
        self.applier.on_task_end = self.job_controller.task_end_ops
        self.jobs = JobService(self.job_book, self.applier, self.job_controller, clock)
        self._tasks: list[asyncio.Task[None]] = []

    def _kick(self) -> None:
        self.controller.kick()

    def _kick_scheduler(self) -> None:
        self.scheduler.kick()

    async def load(self) -> None:
        """Read every record from the store into the in-memory state."""
        s = self.state
        revision = await self.store.revision()
        s.revision = revision
        maintenance = await self.store.get(MAINTENANCE)
        if maintenance is not None:
            s.maintenance = Maintenance.from_json(decode(maintenance.value))
        for kv in (await self.store.list(NODES))[0]:
            s.recover_node(NodeRecord.from_json(decode(kv.value)), revision)
        for kv in (await self.store.list(APPS))[0]:
            s.put_app(AppRecord.from_json(decode(kv.value)))
        for kv in (await self.store.list(BACKOFF))[0]:
            s.backoff[kv.key[len(BACKOFF) :]] = BackoffRecord.from_json(decode(kv.value))
        for kv in (await self.store.list(GROUPS))[0]:
            group = GroupRecord.from_json(decode(kv.value))
            self.groups.groups[group.id] = group
        for kv in (await self.store.list(DEPLOYMENTS))[0]:
            d = DeploymentRecord.from_json(decode(kv.value))
            s.deployments[d.id] = d
        for kv in (await self.store.list(RESERVATIONS))[0]:
            s.put_reservation(ReservationRecord.from_json(decode(kv.value)), revision)
        for kv in (await self.store.list(TASKS))[0]:
            task = TaskRecord.from_json(decode(kv.value))
            if task.node_id in s.nodes:
                s.put_task(task, revision)
        for node_id in s.nodes:
            s.desired_revision[node_id] = revision
        await self.jobs.load(self.store)

    async def start(self, reconcile_first: bool = False, loaded: bool = False) -> None:
        """Load the store (unless ``loaded``: the caller did) and start the loops.
        ``reconcile_first`` (a new leader after a failover): the node monitor starts at
        once, but nothing is launched or killed until every known node's agent has spoken
        to this master (its tasks confirmed) or been silent for the heartbeat grace (then
        UNREACHABLE, its tasks replaced per their apps' strategy), as Mesos reconciles
        before a framework acts."""
        if not loaded:
            await self.load()
        self._tasks = [asyncio.create_task(self.nodes.run())]
        if reconcile_first:
            await self.reconciled()
        self._tasks += [
            asyncio.create_task(self.controller.run()),
            asyncio.create_task(self.job_controller.run()),
            asyncio.create_task(self.scheduler.run()),
        ]
        self.controller.kick()

    async def reconciled(self, poll: float = 0.1) -> None:
        """Return once no node is still recovering (heard from, or given up on)."""
        deadline = self.clock() + self.config.heartbeat_grace + self.nodes.interval() + 1.0
        while self.state.recovering and self.clock() < deadline:
            await asyncio.sleep(poll)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self.bus.close()
