"""The pure run decisions: statuses, restarts within activeDeadlineSeconds, deadlines,
parallelism/completions and perNode launches, stops; a fake clock (times are numbers)."""

from __future__ import annotations

from typing import Any

import pytest

from pallet.control.jobs_runs import (
    EndedTask,
    Launch,
    LiveTask,
    backoff_seconds,
    decide_run,
    launches,
    stop_run,
)
from pallet.model import TaskState
from pallet.model.jobs import JobHistory, JobRun, JobRunSpec, RestartPolicy, RunStatus

T0 = 1000.0


def run(status: RunStatus = RunStatus.STARTING, **spec: Any) -> JobRun:
    fields = {
        k: spec.pop(k)
        for k in ("succeeded", "instant", "starting_deadline", "nodes", "launch_after")
        if k in spec
    }
    return JobRun(
        id="r1",
        job_id="j",
        spec=JobRunSpec(cmd="true", **spec),
        status=status,
        created_at=T0,
        key="r1",
        **fields,
    )


def live(index: int = 0, state: TaskState = TaskState.RUNNING, killing: bool = False) -> LiveTask:
    return LiveTask(f"t{index}", index, "n1", state, killing)


def ended(index: int = 0, state: TaskState = TaskState.FINISHED, **kw: Any) -> EndedTask:
    return EndedTask(f"t{index}-{state.name}", index, "n1", "h1", state, T0 + 1, T0 + 5, **kw)


@pytest.mark.parametrize(
    ("before", "tasks", "done", "now", "status", "reason"),
    [
        # a new run is queued: INITIAL -> STARTING
        (RunStatus.INITIAL, [], [], T0, RunStatus.STARTING, None),
        # a staging task is not a start; a running one makes the run ACTIVE
        (RunStatus.STARTING, [live(state=TaskState.STAGING)], [], T0 + 1, RunStatus.STARTING, None),
        (RunStatus.STARTING, [live()], [], T0 + 1, RunStatus.ACTIVE, None),
        # the task finished: SUCCESS (also straight from STARTING: short tasks)
        (RunStatus.ACTIVE, [], [ended()], T0 + 6, RunStatus.SUCCESS, None),
        (RunStatus.STARTING, [], [ended()], T0 + 6, RunStatus.SUCCESS, None),
        # NEVER: a failed task fails the run, with the task's exit code in the reason
        (
            RunStatus.ACTIVE,
            [],
            [ended(state=TaskState.FAILED, exit_code=2)],
            T0 + 6,
            RunStatus.FAILED,
            "exit code 2",
        ),
        # a task lost with its node counts as failed too
        (
            RunStatus.ACTIVE,
            [],
            [ended(state=TaskState.GONE)],
            T0 + 6,
            RunStatus.FAILED,
            "TASK_GONE",
        ),
        # a task the master killed is not a failure of the task
        (
            RunStatus.ACTIVE,
            [live(1)],
            [ended(state=TaskState.KILLED, killed=True)],
            T0 + 6,
            RunStatus.ACTIVE,
            None,
        ),
        # no task started within maxLaunchDelay (3600 s)
        (RunStatus.STARTING, [], [], T0 + 3601, RunStatus.FAILED, "maxLaunchDelay"),
    ],
)
def test_statuses(
    before: RunStatus,
    tasks: list[LiveTask],
    done: list[EndedTask],
    now: float,
    status: RunStatus,
    reason: str | None,
) -> None:
    step = decide_run(run(before), tasks, done, now)
    assert step.run.status is status
    if reason is None:
        assert step.run.reason is None
    else:
        assert reason in (step.run.reason or "")
        assert step.run.completed_at == now


def test_on_failure_restarts_with_backoff_until_the_active_deadline() -> None:
    r = run(RunStatus.ACTIVE, restart_policy=RestartPolicy.ON_FAILURE, active_deadline_seconds=60)
    failed = ended(state=TaskState.FAILED, exit_code=1)
    step = decide_run(r, [], [failed], T0 + 10)
    assert step.run.status is RunStatus.ACTIVE and step.run.failures == 1
    assert step.run.launch_after == T0 + 10 + 1.0  # first backoff: 1 s
    assert launches(step.run, [], T0 + 10.5) == []  # still backing off
    assert launches(step.run, [], T0 + 11) == [Launch(0)]
    # the same failure past the deadline (created T0 + 60 s) ends the run
    step = decide_run(r, [], [failed], T0 + 61)
    assert step.run.status is RunStatus.FAILED
    assert "activeDeadlineSeconds" in (step.run.reason or "")


def test_active_deadline_kills_what_runs() -> None:
    r = run(RunStatus.ACTIVE, active_deadline_seconds=30)
    step = decide_run(r, [live(0), live(1, killing=True)], [], T0 + 30)
    assert step.run.status is RunStatus.FAILED
    assert step.kill == ("t0",)  # t1 is already being killed


def test_starting_deadline_counts_from_the_instant() -> None:
    r = run(RunStatus.STARTING, instant=T0 - 50, starting_deadline=60.0)
    assert decide_run(r, [], [], T0 + 9).run.status is RunStatus.STARTING
    step = decide_run(r, [], [], T0 + 11)
    assert step.run.status is RunStatus.FAILED
    assert "startingDeadlineSeconds" in (step.run.reason or "")
    # an ACTIVE run is past its start: the starting deadline no longer applies
    assert (
        decide_run(
            run(RunStatus.ACTIVE, instant=T0 - 50, starting_deadline=60.0), [live()], [], T0 + 100
        ).run.status
        is RunStatus.ACTIVE
    )


@pytest.mark.parametrize(
    ("parallelism", "completions", "succeeded", "running", "expected"),
    [
        # 3 at once until 7 succeed: nothing running -> indices 0, 1, 2
        (3, 7, (), (), [0, 1, 2]),
        # 0 and 1 done, 2 running: room for 2 more -> 3, 4
        (3, 7, (0, 1), (2,), [3, 4]),
        # 5 and 6 left, both running, with room: nothing else to launch
        (3, 7, (0, 1, 2, 3, 4), (5, 6), []),
        # index 1 failed earlier (not done, not running): it is launched again first
        (2, 4, (0, 2), (3,), [1]),
        # parallelism alone: that many completions
        (4, None, (), (), [0, 1, 2, 3]),
        # completions alone: one at a time
        (None, 3, (0,), (), [1]),
    ],
)
def test_parallel_launches(
    parallelism: int | None,
    completions: int | None,
    succeeded: tuple[int, ...],
    running: tuple[int, ...],
    expected: list[int],
) -> None:
    r = run(RunStatus.ACTIVE, parallelism=parallelism, completions=completions, succeeded=succeeded)
    assert [launch.index for launch in launches(r, [live(i) for i in running], T0)] == expected


def test_parallel_run_succeeds_once_every_index_did_and_kills_leftovers() -> None:
    r = run(RunStatus.ACTIVE, parallelism=2, completions=3, succeeded=(0, 1))
    step = decide_run(r, [live(1)], [ended(2)], T0 + 6)  # a duplicate of 1 still runs
    assert step.run.status is RunStatus.SUCCESS and step.run.succeeded == (0, 1, 2)
    assert step.kill == ("t1",)


def test_per_node_runs_follow_the_eligible_nodes() -> None:
    r = run(RunStatus.STARTING, per_node=True)
    step = decide_run(r, [], [], T0, ["a", "b"])
    assert step.run.nodes == ("a", "b")
    assert launches(step.run, [], T0, ["a", "b"]) == [Launch(0, "a"), Launch(1, "b")]
    # c joins while a runs and b is done: c gets index 2
    step = decide_run(
        step.run.with_(status=RunStatus.ACTIVE, succeeded=(1,)), [live(0)], [], T0, ["a", "b", "c"]
    )
    assert step.run.nodes == ("a", "b", "c")
    assert launches(step.run, [live(0)], T0, ["a", "b", "c"]) == [Launch(2, "c")]
    # a and c finish; b was done: SUCCESS
    done = decide_run(step.run, [], [ended(0), ended(2)], T0 + 9, ["a", "b", "c"])
    assert done.run.status is RunStatus.SUCCESS


def test_unreachable_tasks_are_killed_so_their_index_moves() -> None:
    r = run(RunStatus.ACTIVE, restart_policy=RestartPolicy.ON_FAILURE)
    step = decide_run(r, [live(state=TaskState.UNREACHABLE)], [], T0 + 1)
    assert step.kill == ("t0",) and step.run.status is RunStatus.ACTIVE


def test_stop_fails_the_run_and_kills_its_tasks() -> None:
    step = stop_run(run(RunStatus.INITIAL), [live(0), live(1, killing=True)], T0 + 2, "stopped")
    assert (step.run.status, step.run.reason, step.run.completed_at) == (
        RunStatus.FAILED,
        "stopped",
        T0 + 2,
    )
    assert step.kill == ("t0",)


def test_backoff_grows_and_is_capped() -> None:
    assert [round(backoff_seconds(n, 2.0), 3) for n in range(7)] == [
        0.0,
        1.0,
        1.15,
        1.322,
        1.521,
        1.749,
        2.0,
    ]


def test_records_round_trip_and_history_is_bounded() -> None:
    r = run(RunStatus.ACTIVE, parallelism=2, completions=1000, succeeded=tuple(range(1000)))
    doc = r.to_json()
    assert doc["succeeded"] == [[0, 999]]  # one pair, not a thousand numbers
    assert JobRun.from_json(doc) == r
    h = JobHistory("j")
    for i in range(15):
        status = RunStatus.SUCCESS if i % 3 else RunStatus.FAILED
        h = h.with_finished(r.with_(id=f"r{i}", status=status, completed_at=T0 + i))
    assert (h.success_count, h.failure_count) == (10, 5)
    assert len(h.runs) == 10 and h.runs[0].id == "r14"
    assert len(h.successful) == 10 and len(h.failed) == 5
    assert h.last_failure_at == T0 + 12
    assert JobHistory.from_json(h.to_json()) == h
