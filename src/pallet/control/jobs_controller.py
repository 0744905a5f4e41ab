"""The job controller loop: schedules and dependencies start runs, runs take in their
tasks' ends and move on; asyncio around the pure ``jobs_triggers`` and ``jobs_runs``.

Level-triggered like the app controller: each pass holds the applier's lock, reads the
book and the cluster state, decides with pure functions and commits. Each decision is
whole in one transaction (a scheduled run with the instant it handles; a finished run's
deletion with its job's history); decisions are packed into as few transactions as the
store's operation limit allows. A pass runs when a job task changes, when the API
changes a job, at the next cron instant, and at least every ``interval`` seconds (for
deadlines, backoff and nodes that join).

A task's end reaches its run from the event bus, which carries the final state; the
run records it in the next pass. The end is also stored with the task's terminal report
(``task_end_ops``) and deleted with the run update that takes it in, so a master that
takes over in between (a failover, a restart) loads it and decides the run the same way:
a task that succeeded is not run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from functools import partial
from zoneinfo import ZoneInfo

from pallet.control.applier import Applier
from pallet.control.bus import TaskChanged
from pallet.control.decision import Decision
from pallet.control.jobs_book import (
    JobBook,
    eligible_nodes,
    ended_task,
    ended_to_json,
    live_tasks,
)
from pallet.control.jobs_cron import next_instant
from pallet.control.jobs_layout import (
    ended_key,
    ended_prefix,
    history_key,
    is_job_owner,
    owner_of,
    run_key,
    run_of_owner,
    triggers_key,
)
from pallet.control.jobs_runs import RunStep, decide_run, next_deadline, stop_run
from pallet.control.jobs_triggers import (
    dependency_keys,
    instant_key,
    run_id,
    schedule_step,
)
from pallet.control.records import TaskRecord, encode
from pallet.control.state import ClusterState
from pallet.model.jobs import JobHistory, JobRun, JobSpec, JobTriggers, RunStatus
from pallet.store import Delete, DeletePrefix, Op, Put

__all__ = ["JobController", "Writes", "zone"]

log = logging.getLogger(__name__)


def zone(name: str) -> tzinfo:
    """The time zone named ``name`` (IANA), read once from the system's zone files."""
    return UTC if name == "UTC" else ZoneInfo(name)


@dataclass
class Writes:
    """Decisions of one pass: each is ops that commit together and what changes in
    memory once they did; tasks to kill once all are committed."""

    decisions: list[tuple[list[Op], Callable[[], None]]] = field(default_factory=list)
    kill: list[str] = field(default_factory=list)

    def add(self, ops: list[Op], then: Callable[[], None]) -> None:
        self.decisions.append((ops, then))

    async def commit(self, applier: Applier) -> None:
        """Apply the decisions, packed into as few transactions as fit (a key written
        twice keeps its last value: records of one pass are built one on another; a
        decision is never split), then kill."""
        batch = Decision(wake=False)
        for ops, then in self.decisions:
            decision = Decision(ops=tuple(ops), after=(then,), wake=False)
            merged = batch.then(decision)
            if not batch.empty and not merged.fits():
                await applier.apply(batch)
                merged = decision
            batch = merged
        if not batch.empty:
            await applier.apply(batch)
        if self.kill:
            await applier.kill_locked(self.kill)


def run_ops(run: JobRun) -> list[Op]:
    return [Put(run_key(run.job_id, run.id), encode(run.to_json()))]


class JobController:
    def __init__(
        self,
        book: JobBook,
        state: ClusterState,
        applier: Applier,
        clock: Callable[[], float],
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        on_queue: Callable[[], None] = lambda: None,
        interval: float = 1.0,
    ) -> None:
        self.book = book
        self.state = state
        self.applier = applier
        self.clock = clock
        self.new_id = new_id
        self.on_queue = on_queue
        self.interval = interval
        self.wake = asyncio.Event()
        self.passes = 0
        self._next: dict[tuple[str, str], tuple[float, str, str, float]] = {}
        """(job, schedule) -> (last handled, cron, zone, next instant): cron math once."""
        self._pending_history: dict[str, JobHistory] = {}
        """Histories as this pass has changed them (committed at its end)."""
        self._decided: set[str] = set()
        """Runs this pass already decided (a REPLACE stops runs before they are visited)."""
        self.dirty: set[str] = set()
        """Owners of runs something happened to since they were last decided (a task
        changed, the run was created); the others are decided only when a time limit
        of theirs comes (perNode runs, whose nodes may change, in every pass)."""
        self._visited: set[str] = set()

    def kick(self) -> None:
        self.wake.set()

    def mark(self, owner: str) -> None:
        """Decide the run of ``owner`` in the next pass."""
        self.dirty.add(owner)
        self.wake.set()

    def task_end_ops(self, task: TaskRecord, at: float) -> list[Op]:
        """The applier's hook: a job task's end, stored with its report until the run
        takes it in (the master that takes over after a failover finds it there)."""
        if not is_job_owner(task.app_id):
            return []
        job_id, rid = run_of_owner(task.app_id)
        if rid not in self.book.runs.get(job_id, {}):
            return []
        doc = ended_to_json(ended_task(task, at))
        return [Put(ended_key(job_id, rid, task.id), encode(doc))]

    def listen(self, event: object) -> None:
        """The bus listener: a job task's end goes to its run's inbox; any change of a
        job task wakes the loop (a task that starts makes its run ACTIVE)."""
        if not isinstance(event, TaskChanged) or not is_job_owner(event.task.app_id):
            return
        task = event.task
        self.dirty.add(task.app_id)
        if task.state.is_terminal:
            job_id, rid = run_of_owner(task.app_id)
            if rid in self.book.runs.get(job_id, {}):
                self.book.ended[task.app_id].append(ended_task(task, event.timestamp))
        self.kick()

    async def run(self) -> None:
        while True:
            timeout = max(0.0, min(self.interval, self._next_due() - self.clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
            self.wake.clear()
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad pass must not stop the loop; the next one retries
                log.exception("job controller pass failed")

    def _next_due(self) -> float:
        return min((n for *_, n in self._next.values()), default=float("inf"))

    def new_run(
        self,
        job: JobSpec,
        now: float,
        *,
        key: str | None = None,
        schedule_id: str | None = None,
        instant: float | None = None,
        starting_deadline: float | None = None,
        spec_env: dict[str, str] | None = None,
        spec_args: tuple[str, ...] | None = None,
    ) -> JobRun:
        """A new INITIAL run of ``job`` with an id no run of the job has."""
        taken = set(self.book.runs.get(job.id, {}))
        taken |= {r.id for r in self.book.history_of(job.id).runs}
        rid = run_id(now, self.new_id())
        while rid in taken:
            rid = run_id(now, self.new_id())
        return JobRun(
            id=rid,
            job_id=job.id,
            spec=job.run.overridden(spec_env, spec_args),
            status=RunStatus.INITIAL,
            created_at=now,
            key=key if key is not None else rid,
            schedule_id=schedule_id,
            instant=instant,
            starting_deadline=starting_deadline,
        )

    async def reconcile(self) -> None:
        """One pass over every job and active run."""
        async with self.applier.lock:
            now = self.clock()
            writes = Writes()
            self._pending_history = {}
            self._decided = set()
            fresh: dict[str, JobTriggers] = {}
            self._schedules(now, writes, fresh)
            self._dependencies(now, writes, fresh)
            self._runs(now, writes)
            try:
                await writes.commit(self.applier)
            except BaseException:
                self.dirty |= self._visited  # decided but not stored: decide them again
                raise
            finally:
                self._pending_history = {}
            self.passes += 1
        if writes.decisions:
            self.on_queue()

    # ------------------------------------------------------------------ triggers

    def _triggers(self, job_id: str, fresh: dict[str, JobTriggers], now: float) -> JobTriggers:
        return fresh.get(job_id) or self.book.triggers.get(job_id) or JobTriggers(job_id, now)

    def _schedules(self, now: float, writes: Writes, fresh: dict[str, JobTriggers]) -> None:
        live = set()
        for job in list(self.book.jobs.values()):
            for schedule in job.schedules:
                if not schedule.enabled:
                    continue
                live.add((job.id, schedule.id))
                triggers = self._triggers(job.id, fresh, now)
                last = triggers.instants.get(schedule.id, triggers.since)
                try:
                    tz = zone(schedule.timezone)
                    cached = self._next.get((job.id, schedule.id))
                    if cached is None or cached[:3] != (last, schedule.cron, schedule.timezone):
                        upcoming = next_instant(schedule.cron, tz, last)
                        cached = (last, schedule.cron, schedule.timezone, upcoming)
                        self._next[(job.id, schedule.id)] = cached
                    if cached[3] > now:
                        continue  # nothing due since the last instant handled
                    step = schedule_step(
                        schedule, tz, last, len(self.book.runs.get(job.id, {})), now
                    )
                except Exception:
                    log.exception("schedule %s of job %s cannot be evaluated", schedule.id, job.id)
                    continue
                if step is None:
                    continue
                for instant, why in step.skipped:
                    log.info(
                        "job %s: instant %s of %s %s",
                        job.id,
                        instant_key(instant),
                        schedule.id,
                        why,
                    )
                triggers = triggers.with_instant(schedule.id, step.handled)
                fresh[job.id] = triggers
                ops: list[Op] = [Put(triggers_key(job.id), encode(triggers.to_json()))]
                effects: list[Callable[[], None]] = []
                if step.replace:
                    for old in self.book.active_runs(job.id):
                        replaced = stop_run(
                            old,
                            live_tasks(self.state, owner_of(job.id, old.id)),
                            now,
                            f"replaced by the run of {instant_key(step.run or now)} (REPLACE)",
                        )
                        ops_, effect = self._finish_ops(replaced)
                        self._decided.add(owner_of(job.id, old.id))
                        ops += ops_
                        effects.append(effect)
                        writes.kill += replaced.kill
                if step.run is not None:
                    run = self.new_run(
                        job,
                        now,
                        key=instant_key(step.run),
                        schedule_id=schedule.id,
                        instant=step.run,
                        starting_deadline=float(schedule.starting_deadline_seconds),
                    )
                    started = decide_run(run, [], [], now, self._eligible(run))
                    ops += run_ops(started.run)
                    effects.append(partial(self.book.put_run, started.run))
                    log.info("job %s: run %s for %s", job.id, run.id, instant_key(step.run))
                writes.add(ops, partial(self._after, triggers, tuple(effects)))
        for gone in set(self._next) - live:
            del self._next[gone]

    def _after(self, triggers: JobTriggers, effects: tuple[Callable[[], None], ...]) -> None:
        self.book.triggers[triggers.job_id] = triggers
        for effect in effects:
            effect()
        self.book.touch()

    def _dependencies(self, now: float, writes: Writes, fresh: dict[str, JobTriggers]) -> None:
        for job in list(self.book.jobs.values()):
            if not job.dependencies:
                continue
            triggers = self._triggers(job.id, fresh, now)
            for key in dependency_keys(job, triggers, self.book.history):
                instant = self._parent_instant(job, key)
                run = self.new_run(job, now, key=key, instant=instant)
                started = decide_run(run, [], [], now, self._eligible(run))
                triggers = triggers.with_fired(key)
                fresh[job.id] = triggers
                ops = [Put(triggers_key(job.id), encode(triggers.to_json())), *run_ops(started.run)]
                log.info(
                    "job %s: run %s after its parents' runs of %s%s",
                    job.id,
                    run.id,
                    key,
                    "" if instant is None else " (scheduled)",
                )
                put = partial(self.book.put_run, started.run)
                writes.add(ops, partial(self._after, triggers, (put,)))

    def _parent_instant(self, job: JobSpec, key: str) -> float | None:
        for parent in job.dependencies:
            for r in self.book.history_of(parent).runs:
                if r.key == key:
                    return r.instant
        return None

    # ------------------------------------------------------------------ runs

    def _eligible(self, run: JobRun) -> list[str] | None:
        return eligible_nodes(self.state, run.spec.constraints) if run.spec.per_node else None

    def _runs(self, now: float, writes: Writes) -> None:
        dirty, self.dirty = self.dirty, set()
        self._visited = dirty
        for run in self.book.all_active():
            owner = owner_of(run.job_id, run.id)
            if owner in self._decided:
                continue
            due = next_deadline(run)
            visit = (
                owner in dirty
                or run.status is RunStatus.INITIAL
                or run.spec.per_node  # its nodes may have changed (few runs are perNode)
                or (due is not None and due <= now)
            )
            if not visit:
                continue
            inbox = self.book.ended.get(owner, [])
            seen = {t.id for t in run.tasks}
            ended = [t for t in dict((t.id, t) for t in inbox).values() if t.id not in seen]
            taken = len(inbox)
            step = decide_run(run, live_tasks(self.state, owner), ended, now, self._eligible(run))
            writes.kill += step.kill
            folded: list[Op] = [Delete(ended_key(run.job_id, run.id, t.id)) for t in inbox[:taken]]
            if step.run == run:
                if folded:
                    writes.add(folded, partial(self._consume, owner, taken, lambda: None))
                continue
            if step.run.final:
                ops, effect = self._finish_ops(step)
                folded = [DeletePrefix(ended_prefix(run.job_id, run.id))]
            else:
                ops, effect = run_ops(step.run), partial(self.book.put_run, step.run)
            writes.add(ops + folded, partial(self._consume, owner, taken, effect))

    def _consume(self, owner: str, taken: int, effect: Callable[[], None]) -> None:
        inbox = self.book.ended.get(owner)
        if inbox is not None:
            del inbox[:taken]
        effect()

    def _finish_ops(self, step: RunStep) -> tuple[list[Op], Callable[[], None]]:
        return self.finish_ops(step, self._pending_history)

    def finish_ops(
        self, step: RunStep, pending: dict[str, JobHistory]
    ) -> tuple[list[Op], Callable[[], None]]:
        """A final run: deleted, and added to its job's history. ``pending`` holds the
        histories as changed by earlier decisions not yet committed, so several runs of
        one job ending together all count."""
        run = step.run
        assert run.final
        history = pending.get(run.job_id) or self.book.history_of(run.job_id)
        history = history.with_finished(run)
        pending[run.job_id] = history
        log.info(
            "job %s: run %s %s%s",
            run.job_id,
            run.id,
            run.status.value,
            f" ({run.reason})" if run.reason else "",
        )

        def effect() -> None:
            self.book.history[run.job_id] = history
            self.book.drop_run(run)

        ops: list[Op] = [
            Delete(run_key(run.job_id, run.id)),
            Put(history_key(run.job_id), encode(history.to_json())),
        ]
        return ops, effect
