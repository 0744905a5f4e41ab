"""The master's in-memory picture of jobs (mirroring the store, changed only after a
commit) and the reading of job tasks out of the cluster state; no I/O.

``JobBook`` holds every job, its active runs, history and triggers, plus the inbox of
job tasks that ended since the job controller last looked (filled from the event bus,
which carries each task's final state).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pallet.control.jobs_layout import owner_of
from pallet.control.jobs_runs import EndedTask, LiveTask
from pallet.control.records import TaskGoal, TaskRecord
from pallet.control.state import ClusterState
from pallet.model import Constraint, NodeState, Operator, TaskState
from pallet.model.jobs import JobHistory, JobRun, JobSpec, JobTriggers
from pallet.model.node import field_value

__all__ = [
    "INDEX_VARIABLE",
    "JobBook",
    "eligible_nodes",
    "ended_from_json",
    "ended_task",
    "ended_to_json",
    "live_tasks",
    "task_index",
]

INDEX_VARIABLE = "PALLET_JOB_INDEX"


class JobBook:
    def __init__(self) -> None:
        self.jobs: dict[str, JobSpec] = {}
        self.runs: dict[str, dict[str, JobRun]] = defaultdict(dict)
        """job id -> run id -> active run."""
        self.history: dict[str, JobHistory] = {}
        self.triggers: dict[str, JobTriggers] = {}
        self.ended: dict[str, list[EndedTask]] = defaultdict(list)
        """owner -> job tasks that ended and are not yet folded into their run."""
        self.unplaced: dict[str, str] = {}
        """owner -> why the last scheduling round placed none of its tasks."""
        self.generation = 0

    def touch(self) -> None:
        self.generation += 1

    def active_runs(self, job_id: str) -> list[JobRun]:
        return sorted(self.runs.get(job_id, {}).values(), key=lambda r: (r.created_at, r.id))

    def all_active(self) -> list[JobRun]:
        return [r for runs in self.runs.values() for r in runs.values()]

    def run(self, job_id: str, run_id: str) -> JobRun | None:
        """An active run, or a finished one the history still holds whole."""
        active = self.runs.get(job_id, {}).get(run_id)
        if active is not None:
            return active
        history = self.history.get(job_id)
        return history.run(run_id) if history is not None else None

    def history_of(self, job_id: str) -> JobHistory:
        return self.history.get(job_id) or JobHistory(job_id)

    def put_run(self, run: JobRun) -> None:
        self.runs[run.job_id][run.id] = run
        self.touch()

    def drop_run(self, run: JobRun) -> None:
        runs = self.runs.get(run.job_id)
        if runs is not None:
            runs.pop(run.id, None)
            if not runs:
                del self.runs[run.job_id]
        self.ended.pop(owner_of(run.job_id, run.id), None)
        self.unplaced.pop(owner_of(run.job_id, run.id), None)
        self.touch()

    def drop_job(self, job_id: str) -> None:
        for run in list(self.runs.get(job_id, {}).values()):
            self.drop_run(run)
        self.jobs.pop(job_id, None)
        self.history.pop(job_id, None)
        self.triggers.pop(job_id, None)
        self.touch()


def task_index(task: TaskRecord) -> int:
    """The index a job task runs (``$PALLET_JOB_INDEX`` of its launch)."""
    return int(task.launch.env.get(INDEX_VARIABLE, "0"))


def live_tasks(state: ClusterState, owner: str) -> list[LiveTask]:
    return [
        LiveTask(t.id, task_index(t), t.node_id, t.state, t.goal is TaskGoal.KILL)
        for t in state.app_tasks(owner)
        if t.live
    ]


def ended_task(task: TaskRecord, at: float) -> EndedTask:
    return EndedTask(
        id=task.id,
        index=task_index(task),
        node_id=task.node_id,
        host=task.host,
        state=task.state,
        staged_at=task.staged_at,
        ended_at=at,
        killed=task.goal is TaskGoal.KILL and not task.killed_unhealthy,
        exit_code=task.exit_code,
        message=task.message,
    )


def ended_to_json(t: EndedTask) -> dict[str, Any]:
    return {
        "id": t.id,
        "index": t.index,
        "nodeId": t.node_id,
        "host": t.host,
        "state": t.state.value,
        "stagedAt": t.staged_at,
        "endedAt": t.ended_at,
        "killed": t.killed,
        "exitCode": t.exit_code,
        "message": t.message,
    }


def ended_from_json(doc: Mapping[str, Any]) -> EndedTask:
    return EndedTask(
        id=doc["id"],
        index=int(doc["index"]),
        node_id=doc["nodeId"],
        host=doc["host"],
        state=TaskState(doc["state"]),
        staged_at=float(doc["stagedAt"]),
        ended_at=float(doc["endedAt"]),
        killed=bool(doc["killed"]),
        exit_code=doc["exitCode"],
        message=doc["message"],
    )


def _holds(c: Constraint, value: str | None) -> bool:
    """Metronome's operators on one node (a node without the field meets only UNLIKE)."""
    if value is None:
        return c.operator is Operator.UNLIKE
    if c.operator is Operator.IS:
        return value == c.value
    matched = re.fullmatch(c.value, value) is not None
    return matched if c.operator is Operator.LIKE else not matched


def eligible_nodes(state: ClusterState, constraints: Sequence[Constraint]) -> list[str]:
    """The nodes a ``perNode`` task may run on now: ACTIVE, heard from since the master
    started, unreserved, and meeting every constraint (in node id order)."""
    out = []
    for node_id in sorted(state.nodes):
        record = state.nodes[node_id]
        node = record.node
        if record.state is not NodeState.ACTIVE or node_id in state.recovering:
            continue
        if node.role != "*":
            continue
        if all(_holds(c, field_value(node, c.field)) for c in constraints):
            out.append(node_id)
    return out
