"""Jobs, schedules, runs and history in Metronome's JSON shapes; pure.

Times are Metronome's ``2016-07-15T13:02:59.735+0000`` (UTC). Pallet's additions appear
only when they say something: ``parallelism``/``completions``/``succeeded`` on a parallel
run, ``index`` on its tasks, ``exitCode``/``message`` on a task that has them, ``reason``
on a run that failed, ``waiting`` while no node takes its tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pallet.control.records import TaskRecord
from pallet.model.jobs import JobHistory, JobRun, JobSpec, RunInfo, RunTask, ScheduleSpec

__all__ = [
    "history_json",
    "job_json",
    "run_json",
    "schedule_json",
    "summary_json",
    "timestamp",
]


def timestamp(moment: float | None) -> str | None:
    """Metronome's time format (milliseconds, ``+0000``), or None."""
    if moment is None:
        return None
    at = datetime.fromtimestamp(moment, UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def schedule_json(schedule: ScheduleSpec, next_run_at: float | None) -> dict[str, Any]:
    doc = schedule.to_json()
    doc["nextRunAt"] = timestamp(next_run_at)
    return doc


def _parallel(run: JobRun) -> bool:
    spec = run.spec
    return spec.per_node or spec.parallelism is not None or spec.completions is not None


def _task(task: RunTask, indexed: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": task.id,
        "startedAt": timestamp(task.started_at),
        "completedAt": timestamp(task.completed_at),
        "status": task.status,
    }
    if indexed:
        doc["index"] = task.index
    if task.exit_code is not None:
        doc["exitCode"] = task.exit_code
    if task.message:
        doc["message"] = task.message
    return doc


def _live(task: TaskRecord, index: int) -> RunTask:
    return RunTask(
        task.id,
        index,
        task.state.value,
        task.staged_at,
        None,
        task.node_id,
        task.host,
        task.exit_code,
        task.message,
    )


def run_json(
    run: JobRun,
    live: Iterable[tuple[TaskRecord, int]] = (),
    waiting: str | None = None,
) -> dict[str, Any]:
    """A run as Metronome shows it: its ended tasks and ``live`` (task, index) ones."""
    indexed = _parallel(run)
    ended = {t.id for t in run.tasks}
    tasks = [*run.tasks, *(_live(t, i) for t, i in live if t.id not in ended)]
    tasks.sort(key=lambda t: (t.started_at, t.id))
    doc: dict[str, Any] = {
        "id": run.id,
        "jobId": run.job_id,
        "status": run.status.value,
        "createdAt": timestamp(run.created_at),
        "completedAt": timestamp(run.completed_at),
        "tasks": [_task(t, indexed) for t in tasks],
    }
    if indexed:
        if run.spec.per_node:
            doc["perNode"] = True
        else:
            doc["parallelism"] = run.spec.width
            doc["completions"] = run.spec.needed
        doc["succeeded"] = len(run.succeeded)
    if run.reason:
        doc["reason"] = run.reason
    if waiting and not run.final:
        doc["waiting"] = waiting
    return doc


def _info(info: RunInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "createdAt": timestamp(info.created_at),
        "finishedAt": timestamp(info.finished_at),
        "tasks": list(info.tasks),
    }


def summary_json(history: JobHistory) -> dict[str, Any]:
    return {
        "successCount": history.success_count,
        "failureCount": history.failure_count,
        "lastSuccessAt": timestamp(history.last_success_at),
        "lastFailureAt": timestamp(history.last_failure_at),
    }


def history_json(history: JobHistory) -> dict[str, Any]:
    return {
        **summary_json(history),
        "successfulFinishedRuns": [_info(r) for r in history.successful],
        "failedFinishedRuns": [_info(r) for r in history.failed],
    }


def job_json(
    job: JobSpec,
    schedules: Sequence[dict[str, Any]],
    *,
    active_runs: Sequence[dict[str, Any]] | None = None,
    history: JobHistory | None = None,
    summary: JobHistory | None = None,
) -> dict[str, Any]:
    """A job (Metronome's ``JobInfo``): the spec, its schedules with ``nextRunAt``, and
    the embedded parts asked for."""
    doc = job.to_json()
    doc["schedules"] = list(schedules)
    if active_runs is not None:
        doc["activeRuns"] = list(active_runs)
    if history is not None:
        doc["history"] = history_json(history)
    if summary is not None:
        doc["historySummary"] = summary_json(summary)
    return doc
