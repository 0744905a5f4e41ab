"""One job run's decisions: what its ended tasks mean, whether it succeeded or failed,
which tasks to kill and which indices to launch; pure (time is an argument).

A run moves INITIAL → STARTING → ACTIVE → SUCCESS | FAILED (Metronome's statuses):

- STARTING once it is stored and its tasks may be placed; ACTIVE once a task reports it
  started (or already ended: a short task may report its end first).
- SUCCESS when ``needed`` indices have finished successfully (``completions``, else
  ``parallelism``, else 1; for ``perNode``, every eligible node's task). Leftover tasks
  are killed.
- FAILED when a task fails under ``NEVER``; when ``activeDeadlineSeconds`` have passed
  since the run was created (its tasks are killed; under ``ON_FAILURE`` failed tasks are
  launched again only before that deadline); when no task started within
  ``maxLaunchDelay`` of its creation or, for a scheduled run, ``startingDeadlineSeconds``
  of its instant; or when it is stopped or replaced.

A task the run's own decision killed (goal KILL) is not a failure; a task lost with its
node (TASK_KILLED while unreachable, TASK_GONE) is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pallet.model import TaskState
from pallet.model.jobs import JobRun, RestartPolicy, RunStatus, RunTask

__all__ = [
    "KEPT_TASKS",
    "EndedTask",
    "Launch",
    "LiveTask",
    "RunStep",
    "backoff_seconds",
    "decide_run",
    "launches",
    "next_deadline",
    "stop_run",
]

KEPT_TASKS = 1000
"""Ended tasks a run record keeps (the newest): a 10,000-completion run stays small."""

_STARTED = frozenset({TaskState.STARTING, TaskState.RUNNING, TaskState.KILLING})


@dataclass(frozen=True, slots=True)
class LiveTask:
    """A task of the run the master tracks now."""

    id: str
    index: int
    node_id: str
    state: TaskState
    killing: bool = False
    """Its goal is KILL: the run (or an operator) is ending it."""


@dataclass(frozen=True, slots=True)
class EndedTask:
    """A task of the run that reached a terminal state since the run was last decided."""

    id: str
    index: int
    node_id: str
    host: str
    state: TaskState
    staged_at: float
    ended_at: float
    killed: bool = False
    """It ended because the master asked (goal KILL): not a failure of the task."""
    exit_code: int | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class Launch:
    """One task to place for a run: its index, and the node it must land on (perNode)."""

    index: int
    node_id: str | None = None


@dataclass(frozen=True, slots=True)
class RunStep:
    """The run after one decision, and the live tasks to kill."""

    run: JobRun
    kill: tuple[str, ...] = ()


def backoff_seconds(failures: int, cap: float) -> float:
    """Marathon's launch backoff (1 s, x1.15 per failure) up to ``cap``."""
    if failures <= 0:
        return 0.0
    return float(min(cap, 1.15 ** (failures - 1)))


def _describe(task: EndedTask) -> str:
    what = task.state.value
    if task.exit_code is not None:
        what += f" with exit code {task.exit_code}"
    return f"task {task.id} {what}" + (f": {task.message}" if task.message else "")


def _finish(run: JobRun, status: RunStatus, now: float, reason: str | None) -> JobRun:
    return run.with_(status=status, completed_at=now, reason=reason)


def decide_run(
    run: JobRun,
    live: Sequence[LiveTask],
    ended: Sequence[EndedTask],
    now: float,
    eligible_nodes: Sequence[str] | None = None,
) -> RunStep:
    """Fold ``ended`` into ``run`` and decide what happens to it now. ``eligible_nodes``:
    for a ``perNode`` run, the nodes a task may run on now (new ones join the run)."""
    if run.final:
        return RunStep(run)
    spec = run.spec
    tasks = list(run.tasks)
    succeeded = set(run.succeeded)
    failures = run.failures
    failed_now: list[EndedTask] = []
    for t in ended:
        tasks.append(
            RunTask(
                t.id,
                t.index,
                t.state.value,
                t.staged_at,
                t.ended_at,
                t.node_id,
                t.host,
                t.exit_code,
                t.message,
            )
        )
        if t.state is TaskState.FINISHED:
            succeeded.add(t.index)
        elif not t.killed:
            failures += 1
            failed_now.append(t)
    status = run.status
    if status is RunStatus.INITIAL:
        status = RunStatus.STARTING
    if status is RunStatus.STARTING and (ended or any(t.state in _STARTED for t in live)):
        status = RunStatus.ACTIVE
    nodes = run.nodes
    if spec.per_node and eligible_nodes is not None:
        nodes = nodes + tuple(n for n in eligible_nodes if n not in nodes)
    run = run.with_(
        tasks=tuple(tasks[-KEPT_TASKS:]),
        succeeded=tuple(sorted(succeeded)),
        failures=failures,
        status=status,
        nodes=nodes,
    )
    alive = [t.id for t in live if not t.killing]
    if _complete(run, live, eligible_nodes):
        return RunStep(_finish(run, RunStatus.SUCCESS, now, None), tuple(alive))
    deadline = spec.active_deadline_seconds
    past_deadline = deadline is not None and now >= run.created_at + deadline
    if failed_now and (spec.restart_policy is RestartPolicy.NEVER or past_deadline):
        reason = _describe(failed_now[0])
        if spec.restart_policy is RestartPolicy.ON_FAILURE:
            reason += f" after activeDeadlineSeconds ({deadline} s): not restarted"
        return RunStep(_finish(run, RunStatus.FAILED, now, reason), tuple(alive))
    if past_deadline:
        reason = f"still running after activeDeadlineSeconds ({deadline} s): killed"
        return RunStep(_finish(run, RunStatus.FAILED, now, reason), tuple(alive))
    if status is not RunStatus.ACTIVE:
        start = run.instant if run.instant is not None else run.created_at
        if run.starting_deadline is not None and now > start + run.starting_deadline:
            reason = f"no task started within startingDeadlineSeconds ({run.starting_deadline:g} s)"
            return RunStep(_finish(run, RunStatus.FAILED, now, reason), tuple(alive))
        if now > run.created_at + spec.max_launch_delay:
            reason = f"no task started within maxLaunchDelay ({spec.max_launch_delay} s)"
            return RunStep(_finish(run, RunStatus.FAILED, now, reason), tuple(alive))
    if failed_now:
        run = run.with_(launch_after=now + backoff_seconds(failures, spec.max_launch_delay))
    # Tasks lost with their node are killed now (the kill forgets them), so their index
    # is launched again elsewhere under ON_FAILURE, and the run fails under NEVER.
    lost = tuple(t.id for t in live if t.state is TaskState.UNREACHABLE and not t.killing)
    return RunStep(run, lost)


def _complete(run: JobRun, live: Sequence[LiveTask], eligible_nodes: Sequence[str] | None) -> bool:
    done = set(run.succeeded)
    if not run.spec.per_node:
        return len(done) >= run.spec.needed
    if not done or any(not t.killing for t in live):
        return False
    eligible = set(eligible_nodes if eligible_nodes is not None else run.nodes)
    return all(i in done for i, node in enumerate(run.nodes) if node in eligible)


def next_deadline(run: JobRun) -> float | None:
    """The first moment a time limit may end ``run`` (``decide_run`` must look at it then
    even if nothing else happened), or None."""
    spec = run.spec
    times = []
    if spec.active_deadline_seconds is not None:
        times.append(run.created_at + spec.active_deadline_seconds)
    if run.status is not RunStatus.ACTIVE:
        times.append(run.created_at + spec.max_launch_delay)
        if run.starting_deadline is not None:
            start = run.instant if run.instant is not None else run.created_at
            times.append(start + run.starting_deadline)
    return min(times) if times else None


def launches(
    run: JobRun,
    live: Sequence[LiveTask],
    now: float,
    eligible_nodes: Sequence[str] | None = None,
) -> list[Launch]:
    """The tasks to place for ``run`` now: pending indices, lowest first, up to
    ``parallelism`` live at once; for ``perNode``, each eligible node of the run whose
    task has not succeeded and is not running."""
    if run.final or run.status is RunStatus.INITIAL or now < run.launch_after:
        return []
    running = {t.index for t in live if not t.killing}
    done = set(run.succeeded)
    if run.spec.per_node:
        eligible = set(eligible_nodes if eligible_nodes is not None else run.nodes)
        return [
            Launch(i, node)
            for i, node in enumerate(run.nodes)
            if node in eligible and i not in done and i not in running
        ]
    room = run.spec.width - len(running)
    out: list[Launch] = []
    for i in range(run.spec.needed):
        if room <= 0:
            break
        if i not in done and i not in running:
            out.append(Launch(i))
            room -= 1
    return out


def stop_run(run: JobRun, live: Sequence[LiveTask], now: float, reason: str) -> RunStep:
    """End the run as FAILED (Metronome's stop and Pallet's REPLACE) and kill its tasks."""
    if run.final:
        return RunStep(run)
    alive = tuple(t.id for t in live if not t.killing)
    status = RunStatus.STARTING if run.status is RunStatus.INITIAL else run.status
    return RunStep(_finish(run.with_(status=status), RunStatus.FAILED, now, reason), alive)
