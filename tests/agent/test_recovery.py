"""The pure recovery decision: checkpoints + /proc facts -> adopt, lost, resend, orphans."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pallet.agent.events import SendStatus
from pallet.agent.recovery import Checkpoint, ProcessFacts, RecoveryPlan, plan_recovery
from pallet.agent.status import Reason, TaskState

from .conftest import make_spec

BOOT = "boot-a"
RUNNING = TaskState.RUNNING


def checkpoint(task_id: str = "t1", **fields: object) -> Checkpoint:
    base = Checkpoint(
        make_spec(task_id), pid=100, start_time=5000, boot_id=BOOT, state=RUNNING, seq=2
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def summary(plan: RecoveryPlan) -> dict[str, list[str]]:
    return {
        "adopt": [a.checkpoint.task_id for a in plan.adopt],
        "lost": [f"{x.checkpoint.task_id}{' oom' if x.oom else ''}" for x in plan.lost],
        "resend": [r.checkpoint.task_id for r in plan.resend],
        "orphans": [o.task_id for o in plan.orphans],
    }


FINAL = SendStatus("t1", TaskState.FAILED, 3, Reason.COMMAND_EXECUTOR_FAILED, "exit 1", 1)

CASES = [
    # (name, checkpoints, facts, expected)
    (
        "alive, same start time and boot: adopted",
        [checkpoint()],
        ProcessFacts(BOOT, {100: 5000}, {"t1"}),
        {"adopt": ["t1"], "lost": [], "resend": [], "orphans": []},
    ),
    (
        "pid reused by a process started at another time: lost, never adopted",
        [checkpoint()],
        ProcessFacts(BOOT, {100: 7777}, {"t1"}),
        {"adopt": [], "lost": ["t1"], "resend": [], "orphans": []},
    ),
    (
        "boot id changed (host rebooted) even with a matching pid and start time: lost",
        [checkpoint()],
        ProcessFacts("boot-b", {100: 5000}),
        {"adopt": [], "lost": ["t1"], "resend": [], "orphans": []},
    ),
    (
        "process gone: lost",
        [checkpoint()],
        ProcessFacts(BOOT, {}, {"t1"}),
        {"adopt": [], "lost": ["t1"], "resend": [], "orphans": []},
    ),
    (
        "process gone and its memory cgroup counted an OOM kill: lost as OOM",
        [checkpoint()],
        ProcessFacts(BOOT, {}, {"t1"}, {"t1": 1}),
        {"adopt": [], "lost": ["t1 oom"], "resend": [], "orphans": []},
    ),
    (
        "cgroup with no checkpoint: orphan; the checkpointed one beside it is adopted",
        [checkpoint()],
        ProcessFacts(BOOT, {100: 5000}, {"t1", "stray.1"}),
        {"adopt": ["t1"], "lost": [], "resend": [], "orphans": ["stray.1"]},
    ),
    (
        "task ended before the restart, final update unacknowledged: resent",
        [checkpoint(state=TaskState.FAILED, seq=3, unacked=(FINAL,))],
        ProcessFacts(BOOT, {100: 5000}),  # the pid (reused) is not looked at
        {"adopt": [], "lost": [], "resend": ["t1"], "orphans": []},
    ),
    (
        "running task with an unacknowledged RUNNING update: adopted (the update resent)",
        [checkpoint(unacked=(SendStatus("t1", RUNNING, 2),))],
        ProcessFacts(BOOT, {100: 5000}),
        {"adopt": ["t1"], "lost": [], "resend": [], "orphans": []},
    ),
    (
        "task being killed whose process still runs: adopted (the kill resumes)",
        [checkpoint(state=TaskState.KILLING, seq=3)],
        ProcessFacts(BOOT, {100: 5000}),
        {"adopt": ["t1"], "lost": [], "resend": [], "orphans": []},
    ),
    (
        "nothing checkpointed, nothing left: nothing to do",
        [],
        ProcessFacts(BOOT),
        {"adopt": [], "lost": [], "resend": [], "orphans": []},
    ),
]


@pytest.mark.parametrize(
    ("checkpoints", "facts", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_plan_recovery(
    checkpoints: list[Checkpoint], facts: ProcessFacts, expected: dict[str, list[str]]
) -> None:
    assert summary(plan_recovery(checkpoints, facts)) == expected


@pytest.mark.parametrize(
    ("facts", "words"),
    [
        (ProcessFacts(BOOT, {}), "pid 100 ended while the agent was down"),
        (ProcessFacts(BOOT, {100: 1}), "was reused"),
        (ProcessFacts("boot-b", {100: 5000}), "the host rebooted"),
    ],
)
def test_lost_tasks_say_why_and_that_the_exit_status_is_lost(
    facts: ProcessFacts, words: str
) -> None:
    (lost,) = plan_recovery([checkpoint()], facts).lost
    assert words in lost.message
    assert "exit status was lost across the agent restart" in lost.message


def test_an_oom_counted_in_another_boot_is_not_believed() -> None:
    (lost,) = plan_recovery([checkpoint()], ProcessFacts("boot-b", {}, (), {"t1": 3})).lost
    assert not lost.oom
