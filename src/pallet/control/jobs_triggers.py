"""What triggers a job's runs: its cron schedules and its parents' successful runs; and
the rules dependencies must follow; pure (time and time zones are arguments).

Schedules (``schedule_step``): of the instants since the last one handled, only the
newest runs, and only if it is no older than ``startingDeadlineSeconds`` (the ones
before it, or it too when too old, are missed: a master that was down does not replay
them). The instant is recorded as handled in the same transaction that creates its run,
so a restarted master never runs it again. With an active run, ``FORBID`` skips the
instant (Metronome: "rescheduled for the next cron time"), ``REPLACE`` stops the active
runs, ``ALLOW`` starts another beside them.

Dependencies (``dependency_keys``): a job runs once for each key (a schedule instant, or
a run id for runs started by hand) that every parent has a successful run of, finished
after the dependent job was created or last changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from pallet.control.jobs_cron import due_instants, next_instant
from pallet.model.jobs import (
    ConcurrencyPolicy,
    JobHistory,
    JobSpec,
    JobTriggers,
    RunStatus,
    ScheduleSpec,
)

__all__ = [
    "ScheduleStep",
    "dependency_keys",
    "dependency_violation",
    "instant_key",
    "run_id",
    "schedule_step",
]


@dataclass(frozen=True, slots=True)
class ScheduleStep:
    """A schedule's decision now: the instant to run (None: nothing runs), the newest
    instant handled (to record), whether active runs are replaced, and what was missed
    or skipped (for the log)."""

    run: float | None
    handled: float
    replace: bool = False
    skipped: tuple[tuple[float, str], ...] = ()


def schedule_step(
    schedule: ScheduleSpec,
    zone: tzinfo,
    last_handled: float,
    active_runs: int,
    now: float,
) -> ScheduleStep | None:
    """The decision for one enabled schedule; None when no instant is due."""
    deadline = schedule.starting_deadline_seconds
    # Instants older than the deadline can never run: start the search after them.
    earliest = now - deadline
    due = due_instants(schedule.cron, zone, max(last_handled, earliest - 1e-3), now)
    if not due:
        if last_handled < earliest:
            first = next_instant(schedule.cron, zone, last_handled)
            if first <= earliest:
                # Only instants past their deadline since the last one handled: record
                # that they were missed, run nothing.
                why = "missed: older than startingDeadlineSeconds"
                return ScheduleStep(None, earliest, skipped=((first, why),))
        return None
    newest = due[-1]
    skipped = tuple((i, "missed: a newer instant is due") for i in due[:-1])
    if active_runs and schedule.concurrency_policy is ConcurrencyPolicy.FORBID:
        return ScheduleStep(None, newest, skipped=(*skipped, (newest, "FORBID: a run is active")))
    replace = bool(active_runs) and schedule.concurrency_policy is ConcurrencyPolicy.REPLACE
    return ScheduleStep(newest, newest, replace, skipped)


def instant_key(instant: float) -> str:
    """The dependency key of a scheduled run: its instant, ISO 8601 in UTC."""
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_id(now: float, suffix: str) -> str:
    """Metronome's run id shape: ``yyyyMMddHHmmss`` (UTC) and five letters or digits."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d%H%M%S")
    letters = "".join(c for c in suffix if c.isalnum())[-5:]
    return stamp + letters


def dependency_keys(
    job: JobSpec, triggers: JobTriggers, histories: Mapping[str, JobHistory]
) -> list[str]:
    """The keys every parent of ``job`` succeeded for (after ``triggers.since``) that have
    not triggered ``job`` yet, oldest first."""
    if not job.dependencies:
        return []
    fired = set(triggers.fired)
    common: list[str] | None = None
    for parent in job.dependencies:
        history = histories.get(parent)
        runs = history.runs if history is not None else ()
        keys = [
            r.key
            for r in reversed(runs)  # history is newest first
            if r.status is RunStatus.SUCCESS and (r.completed_at or 0.0) >= triggers.since
        ]
        common = keys if common is None else [k for k in common if k in set(keys)]
    return [k for k in dict.fromkeys(common or ()) if k not in fired]


def dependency_violation(
    job_id: str,
    dependencies: Sequence[str],
    has_schedules: bool,
    graph: Mapping[str, Iterable[str]],
) -> tuple[str, str] | None:
    """Why ``job_id`` may not depend on ``dependencies`` given the other jobs' (``graph``:
    job -> its parents): (path, message), or None. Metronome's rules: no double entries,
    only jobs that exist, no cycle, not both dependencies and schedules."""
    if not dependencies:
        return None
    if len(set(dependencies)) != len(dependencies):
        return "/dependencies", "has double entries"
    if has_schedules:
        return "/", "Jobs may not have both dependencies and schedules specified"
    unknown = [d for d in dependencies if d not in graph and d != job_id]
    if unknown:
        return "/dependencies", f"Dependencies contain unknown jobs. unknown=[{', '.join(unknown)}]"
    for i, parent in enumerate(dependencies):
        if _reaches(graph, parent, job_id):
            return (
                f"/dependencies({i})/id",
                f"Dependencies have a cycle: {parent} depends on {job_id}",
            )
    return None


def _reaches(graph: Mapping[str, Iterable[str]], start: str, target: str) -> bool:
    """Whether following parents from ``start`` arrives at ``target``."""
    seen: set[str] = set()
    stack = [start]
    while stack:
        node = stack.pop()
        if node == target:
            return True
        if node in seen:
            continue
        seen.add(node)
        stack.extend(graph.get(node, ()))
    return False
