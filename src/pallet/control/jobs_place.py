"""Job tasks through the same scheduler as apps: the placement requests of active runs,
and the commit of what the scheduler placed; asyncio.

The scheduling worker asks ``requests`` for up to a round's worth of job tasks after
the apps' own, calls ``core.schedule`` once for both, and hands the job placements to
``apply``. ``apply`` holds the applier's lock, keeps only what each run still wants
(``jobs_runs.launches`` again, on the latest tasks), re-checks each placement against
the latest view with the scheduler's own fit function, and writes the task records in
one transaction per chunk, as the applier does for apps.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pallet.control.applier import Applier
from pallet.control.bus import TaskChanged
from pallet.control.decision import Decision
from pallet.control.deployments import iso
from pallet.control.jobs_book import INDEX_VARIABLE, JobBook, eligible_nodes, live_tasks
from pallet.control.jobs_layout import is_job_owner, job_task_id, owner_of, run_of_owner
from pallet.control.jobs_runs import Launch, launches
from pallet.control.layout import task_key
from pallet.control.records import TaskRecord, encode
from pallet.control.state import ClusterState
from pallet.core import check_placement
from pallet.model import (
    Constraint,
    Operator,
    Placement,
    PlacementRequest,
    TaskSpec,
    Unplaced,
)
from pallet.model.jobs import JobRun, RunStatus
from pallet.model.messages import DEFAULT_KILL_GRACE_SECONDS
from pallet.store import Put

__all__ = ["JobPlacements"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Pending:
    job_id: str
    run_id: str
    launch: Launch


class JobPlacements:
    """The job side of the scheduling worker (``SchedulingWorker.sources``)."""

    def __init__(
        self,
        book: JobBook,
        state: ClusterState,
        applier: Applier,
        clock: Callable[[], float],
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.book = book
        self.state = state
        self.applier = applier
        self.clock = clock
        self.new_id = new_id
        self._pending: dict[str, _Pending] = {}
        self.placed_total = 0

    def owns(self, app_id: str) -> bool:
        return is_job_owner(app_id)

    def _wanted(self, run: JobRun, now: float) -> list[Launch]:
        if run.status not in (RunStatus.STARTING, RunStatus.ACTIVE) or now < run.launch_after:
            return []
        owner = owner_of(run.job_id, run.id)
        if not run.spec.per_node and len(self.state.tasks_by_app.get(owner, ())) >= run.spec.width:
            return []  # as many tasks as may run at once: nothing to add (the common case)
        nodes = eligible_nodes(self.state, run.spec.constraints) if run.spec.per_node else None
        return launches(run, live_tasks(self.state, owner), now, nodes)

    def waiting(self) -> dict[str, list[str]]:
        """job id -> the runs with tasks waiting to be placed (``/v1/queue``)."""
        now = self.clock()
        out: dict[str, list[str]] = {}
        for run in self.book.all_active():
            if run.status is RunStatus.INITIAL or self._wanted(run, now):
                out.setdefault(run.job_id, []).append(run.id)
        return out

    def requests(self, limit: int) -> list[PlacementRequest]:
        """Up to ``limit`` requests, runs in the order they were created."""
        now = self.clock()
        self._pending = {}
        out: list[PlacementRequest] = []
        for run in sorted(self.book.all_active(), key=lambda r: (r.created_at, r.id)):
            if len(out) >= limit:
                break
            for launch in self._wanted(run, now)[: limit - len(out)]:
                request = self._request(run, launch)
                if request is not None:
                    self._pending[request.id] = _Pending(run.job_id, run.id, launch)
                    out.append(request)
        return out

    def _request(self, run: JobRun, launch: Launch) -> PlacementRequest | None:
        spec = run.spec
        constraints = spec.constraints
        if launch.node_id is not None:
            node = self.state.nodes.get(launch.node_id)
            if node is None:
                return None
            constraints = (*constraints, Constraint("hostname", Operator.IS, node.node.hostname))
        return PlacementRequest(
            id=job_task_id(run.job_id, run.id, self.new_id()),
            app_id=owner_of(run.job_id, run.id),
            resources=spec.resources,
            constraints=constraints,
        )

    def note_unplaced(self, unplaced: Sequence[Unplaced]) -> None:
        """Keep why each run's tasks found no node (shown with the run)."""
        for u in unplaced:
            if self.owns(u.app_id):
                self.book.unplaced[u.app_id] = u.summary()

    async def apply(self, placements: Sequence[Placement]) -> list[TaskRecord]:
        """Commit the placements each run still wants and that still fit (as one
        decision, or several whole ones when too many for one transaction)."""
        async with self.applier.lock:
            now = self.clock()
            tasks = self._tasks(placements, now)
            await self.applier.apply_parts(tasks, lambda part: self._decision(part, now))
            self.placed_total += len(tasks)
        return tasks

    def _decision(self, tasks: Sequence[TaskRecord], now: float) -> Decision:
        unplaced = self.book.unplaced
        owners = tuple(dict.fromkeys(t.app_id for t in tasks))

        def placed() -> None:  # their runs' "why not placed" is over
            for owner in owners:
                unplaced.pop(owner, None)

        return Decision(
            ops=tuple(Put(task_key(t.id), encode(t.to_json())) for t in tasks),
            tasks=tuple(tasks),
            after=(placed,),
            events=tuple(TaskChanged(t, None, now) for t in tasks),
            wake=False,
        )

    def _tasks(self, placements: Sequence[Placement], now: float) -> list[TaskRecord]:
        wanted: dict[str, list[Launch]] = {}
        scratch = self.state.view.copy()
        out: list[TaskRecord] = []
        for p in placements:
            pending = self._pending.pop(p.request_id, None)
            if pending is None:
                continue
            job_id, run_id = run_of_owner(p.app_id)
            run = self.book.runs.get(job_id, {}).get(run_id)
            if run is None:
                continue
            if p.app_id not in wanted:
                wanted[p.app_id] = self._wanted(run, now)
            launch = pending.launch
            if launch not in wanted[p.app_id]:
                continue
            if launch.node_id is not None and p.node_id != launch.node_id:
                continue
            reason = check_placement(scratch, p)
            if reason is not None:
                log.info("placement of %s on %s dropped: %s", p.request_id, p.node_id, reason)
                continue
            wanted[p.app_id].remove(launch)
            scratch.assume(p)
            out.append(self._record(run, p, launch.index, now))
        return out

    def _record(self, run: JobRun, p: Placement, index: int, now: float) -> TaskRecord:
        spec = run.spec
        node = self.state.nodes[p.node_id]
        job = self.book.jobs.get(run.job_id)
        owner = p.app_id
        r = p.resources
        env = {
            **spec.env,
            "PALLET_JOB_ID": run.job_id,
            "PALLET_JOB_RUN_ID": run.id,
            INDEX_VARIABLE: str(index),
        }
        launch = TaskSpec(
            task_id=p.request_id,
            app_id=owner,
            app_version=run.id,
            cmd=spec.cmd,
            args=spec.args,
            env=env,
            cpu_milli=max(1, r.cpu_milli),
            mem_mib=max(1, r.mem_mib),
            disk_mib=r.disk_mib,
            gpu_milli=r.gpu_milli,
            kill_grace_seconds=(
                spec.kill_grace_seconds
                if spec.kill_grace_seconds is not None
                else DEFAULT_KILL_GRACE_SECONDS
            ),
            labels=dict(job.labels) if job is not None else {},
            user=spec.user,
            fetch=spec.artifacts,
            container=spec.container,
            secrets=spec.secrets,
        )
        return TaskRecord(
            id=p.request_id,
            app_id=owner,
            node_id=p.node_id,
            host=node.node.hostname,
            version=iso(run.created_at),
            config_version=run.id,
            resources=r,
            ports=p.ports,
            requested_ports=p.request.ports,
            gpus=p.gpus,
            staged_at=now,
            launch=launch,
        )
