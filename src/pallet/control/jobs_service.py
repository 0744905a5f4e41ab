"""What the API asks of jobs: create, update and delete jobs and their schedules, start a
run now, stop a run; asyncio. Each change is one store transaction taken under the
applier's lock, then the in-memory book; the job controller does the rest. Creates and
run-nows that arrive together share a transaction (``jobs_batch.GroupCommit``).

``JobService.load`` reads every job record when a term of leadership begins (a master
starting, or taking over), and marks every active run for the controller's first pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace

from pallet.control.applier import Applier
from pallet.control.decision import Decision
from pallet.control.jobs_batch import Claims, GroupCommit, Prepared
from pallet.control.jobs_book import JobBook, ended_from_json, live_tasks
from pallet.control.jobs_controller import JobController, Writes, run_ops
from pallet.control.jobs_errors import (
    JobConflict,
    JobExists,
    JobInvalid,
    JobNotFound,
    RunNotFound,
    ScheduleExists,
    ScheduleNotFound,
)
from pallet.control.jobs_layout import (
    ENDED,
    HISTORY,
    JOBS,
    RUNS,
    TRIGGERS,
    ended_prefix,
    history_key,
    job_key,
    owner_of,
    runs_prefix,
    triggers_key,
)
from pallet.control.jobs_runs import stop_run
from pallet.control.jobs_triggers import dependency_violation
from pallet.control.records import decode, encode
from pallet.model.jobs import JobHistory, JobRun, JobSpec, JobTriggers, ScheduleSpec
from pallet.store import Delete, DeletePrefix, Op, Put, Store

__all__ = ["JobService"]

log = logging.getLogger(__name__)


class JobService:
    def __init__(
        self,
        book: JobBook,
        applier: Applier,
        controller: JobController,
        clock: Callable[[], float],
    ) -> None:
        self.book = book
        self.applier = applier
        self.controller = controller
        self.state = applier.state
        self.clock = clock
        self.group = GroupCommit(applier)

    @property
    def lock(self) -> asyncio.Lock:
        return self.applier.lock

    async def load(self, store: Store) -> None:
        """Read every job, active run, history and trigger record."""
        book = self.book
        for kv in (await store.list(JOBS))[0]:
            job = JobSpec.from_json(decode(kv.value))
            book.jobs[job.id] = job
        for kv in (await store.list(RUNS))[0]:
            run = JobRun.from_json(decode(kv.value))
            book.runs[run.job_id][run.id] = run
        for kv in (await store.list(HISTORY))[0]:
            history = JobHistory.from_json(decode(kv.value))
            book.history[history.job_id] = history
        for kv in (await store.list(TRIGGERS))[0]:
            triggers = JobTriggers.from_json(decode(kv.value))
            book.triggers[triggers.job_id] = triggers
        for kv in (await store.list(ENDED))[0]:
            job_id, run_id, _ = kv.key[len(ENDED) :].split("/", 2)
            if run_id in book.runs.get(job_id, {}):
                book.ended[owner_of(job_id, run_id)].append(ended_from_json(decode(kv.value)))
        for run in book.all_active():  # the first pass decides every run it found
            self.controller.mark(owner_of(run.job_id, run.id))
        book.touch()

    def job(self, job_id: str) -> JobSpec:
        job = self.book.jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    # ------------------------------------------------------------------ jobs

    def _check_dependencies(self, job: JobSpec) -> None:
        graph: Mapping[str, tuple[str, ...]] = {
            j.id: j.dependencies for j in self.book.jobs.values() if j.id != job.id
        }
        violation = dependency_violation(
            job.id, job.dependencies, bool(job.schedules), {**graph, job.id: job.dependencies}
        )
        if violation is not None:
            raise JobInvalid(*violation)

    async def create(self, job: JobSpec) -> JobSpec:
        """Store a new job (with its schedules, which count from now)."""

        def prepare(claims: Claims) -> Prepared:
            if job.id in self.book.jobs or job.id in claims.jobs:
                raise JobExists(job.id)
            self._check_dependencies(job)
            claims.jobs.add(job.id)
            now = self.clock()
            triggers = JobTriggers(job.id, now, {s.id: now for s in job.schedules})
            ops: list[Op] = [
                Put(job_key(job.id), encode(job.to_json())),
                Put(triggers_key(job.id), encode(triggers.to_json())),
                # A job of this id deleted earlier leaves nothing for the new one.
                Delete(history_key(job.id)),
                DeletePrefix(runs_prefix(job.id)),
                DeletePrefix(ended_prefix(job.id)),
            ]

            def then() -> JobSpec:
                self.book.jobs[job.id] = job
                self.book.triggers[job.id] = triggers
                self.book.touch()
                return job

            return ops, then

        created: JobSpec = await self.group.run(prepare)
        self.controller.kick()
        return created

    def _triggers_for(self, old: JobSpec, new: JobSpec, now: float) -> JobTriggers:
        """A schedule that is new or changed counts from now (Metronome reschedules from
        the time of the change); changed dependencies count parent runs from now."""
        triggers = self.book.triggers.get(old.id) or JobTriggers(old.id, now)
        instants = {}
        for s in new.schedules:
            before = old.schedule(s.id)
            unchanged = before is not None and (before.cron, before.timezone, before.enabled) == (
                s.cron,
                s.timezone,
                s.enabled,
            )
            instants[s.id] = triggers.instants.get(s.id, now) if unchanged else now
        since = triggers.since if old.dependencies == new.dependencies else now
        return replace(triggers, instants=instants, since=since)

    async def _replace(self, old: JobSpec, new: JobSpec) -> JobSpec:
        """Store ``new`` in place of ``old`` (the lock is held)."""
        self._check_dependencies(new)
        triggers = self._triggers_for(old, new, self.clock())
        book = self.book

        def stored() -> None:
            book.jobs[new.id] = new
            book.triggers[new.id] = triggers
            book.touch()

        await self.applier.apply(
            Decision(
                ops=(
                    Put(job_key(new.id), encode(new.to_json())),
                    Put(triggers_key(new.id), encode(triggers.to_json())),
                ),
                after=(stored,),
            )
        )
        self.controller.kick()
        return new

    async def update(self, job: JobSpec, *, keep_schedules: bool) -> JobSpec:
        """Replace a job's definition; ``keep_schedules`` (``PUT /v1/jobs``) keeps the
        schedules it has, ``PUT /v0/scheduled-jobs`` replaces them too."""
        async with self.lock:
            old = self.job(job.id)
            if keep_schedules:
                job = replace(job, schedules=old.schedules)
            return await self._replace(old, job)

    async def delete(self, job_id: str, *, stop_runs: bool) -> JobSpec:
        async with self.lock:
            job = self.job(job_id)
            runs = self.book.active_runs(job_id)
            if runs and not stop_runs:
                raise JobConflict(
                    "There are active job runs. Override with stopCurrentJobRuns=true"
                )
            children = sorted(j.id for j in self.book.jobs.values() if job_id in j.dependencies)
            if children:
                raise JobConflict(
                    f"There are jobs with a dependency on {job_id}. children=[{', '.join(children)}]"
                )
            now = self.clock()
            kill: list[str] = []
            for run in runs:
                kill += stop_run(
                    run, live_tasks(self.state, owner_of(job_id, run.id)), now, "job deleted"
                ).kill
            await self.applier.apply(
                Decision(
                    ops=(
                        Delete(job_key(job_id)),
                        DeletePrefix(runs_prefix(job_id)),
                        DeletePrefix(ended_prefix(job_id)),
                        Delete(history_key(job_id)),
                        Delete(triggers_key(job_id)),
                    ),
                    after=(lambda: self.book.drop_job(job_id),),
                )
            )
            if kill:
                await self.applier.kill_locked(kill)
        self.applier.kick()
        return job

    # ------------------------------------------------------------------ schedules

    async def add_schedule(self, job_id: str, schedule: ScheduleSpec) -> ScheduleSpec:
        async with self.lock:
            job = self.job(job_id)
            if job.schedule(schedule.id) is not None:
                raise ScheduleExists(job_id, schedule.id)
            await self._replace(job, replace(job, schedules=(*job.schedules, schedule)))
        return schedule

    async def update_schedule(self, job_id: str, schedule: ScheduleSpec) -> ScheduleSpec:
        async with self.lock:
            job = self.job(job_id)
            if job.schedule(schedule.id) is None:
                raise ScheduleNotFound(job_id, schedule.id)
            schedules = tuple(schedule if s.id == schedule.id else s for s in job.schedules)
            await self._replace(job, replace(job, schedules=schedules))
        return schedule

    async def delete_schedule(self, job_id: str, schedule_id: str) -> None:
        async with self.lock:
            job = self.job(job_id)
            if job.schedule(schedule_id) is None:
                raise ScheduleNotFound(job_id, schedule_id)
            schedules = tuple(s for s in job.schedules if s.id != schedule_id)
            await self._replace(job, replace(job, schedules=schedules))

    # ------------------------------------------------------------------ runs

    async def trigger(
        self,
        job_id: str,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] | None = None,
    ) -> JobRun:
        """Start a run now (INITIAL; the job controller queues its tasks), with the
        trigger's ``env`` over the job's and ``args`` instead of the job's."""

        def prepare(claims: Claims) -> Prepared:
            job = self.job(job_id)
            if args is not None and job.run.cmd is not None:
                raise JobInvalid(
                    "/args", "this job runs cmd; args replace the args of jobs that give args"
                )
            run = self.controller.new_run(
                job, self.clock(), spec_env=dict(env) if env else None, spec_args=args
            )

            def then() -> JobRun:
                self.book.put_run(run)
                return run

            return run_ops(run), then

        run: JobRun = await self.group.run(prepare)
        self.controller.mark(owner_of(job_id, run.id))
        return run

    async def stop(self, job_id: str, run_id: str) -> JobRun:
        """Stop an active run: it is FAILED and its tasks are killed."""
        async with self.lock:
            self.job(job_id)
            run = self.book.runs.get(job_id, {}).get(run_id)
            if run is None:
                raise RunNotFound(job_id, run_id)
            step = stop_run(
                run, live_tasks(self.state, owner_of(job_id, run_id)), self.clock(), "stopped"
            )
            writes = Writes()
            writes.add(*self.controller.finish_ops(step, {}))
            writes.kill += step.kill
            await writes.commit(self.applier)
        self.controller.kick()
        return step.run
